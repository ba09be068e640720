"use client";
// The streamer's page: credits and the time they leave (counting down while
// billed, warnings at 5 and 1 minutes), going live from the camera or from
// OBS, the style and strength the stream starts with and shows, every ingest
// URL with the stream key, viewers and uptime, the chat (delete, time out,
// ban, lift), the style queue (skip, clear, reject one) and the media
// plane's health. The camera ingest and the dashboard answer live in
// lib/live.tsx above the pages, so leaving this page keeps the stream going;
// comments and live/offline changes arrive at once over /events. How a
// stream ended is said in words (lib/end-reasons.ts).
import Link from "next/link";
import { useCallback, useEffect, useState } from "react";
import { CameraView } from "@/components/camera-view";
import { CommentList, withComment } from "@/components/comment-list";
import { BanList } from "@/components/dashboard/ban-list";
import { IngestUrls } from "@/components/dashboard/ingest-urls";
import { StyleSettings, type Look } from "@/components/dashboard/style-settings";
import { FramePlayer } from "@/components/frame-player";
import { api, ApiError, formatClock, formatDuration, secondsSince, type ChatBan, type Comment, type Dashboard } from "@/lib/api";
import { endReasonText } from "@/lib/end-reasons";
import { kMinSecondsToGoLive, useLive } from "@/lib/live";
import { useRequiredUser } from "@/lib/require-user";
import { type IngestTransport } from "@/lib/use-camera-ingest";
import { useNow } from "@/lib/use-now";
import { useStreamEvents } from "@/lib/use-stream-events";

const message = (err: unknown) => (err instanceof ApiError ? err.message : String(err));

export default function DashboardPage() {
  const user = useRequiredUser();
  const { dash, refresh, update, ingest, secondsLeft, ended, clearEnded, resolveIngest } = useLive();
  const [comments, setComments] = useState<Comment[]>([]);
  const [bans, setBans] = useState<ChatBan[]>([]);
  const [title, setTitle] = useState("");
  const [fps, setFps] = useState(10);
  const [transport, setTransport] = useState<IngestTransport>("whip");
  const [look, setLook] = useState<Look | null>(null); // the go-live form's choice (null: the user's defaults)
  const [liveStyles, setLiveStyles] = useState<string[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const live = dash?.live ?? false;
  const now = useNow(live ? 1000 : null);

  // A socket dropped: the dashboard answer names the stream's worker now.
  const resolvePreview = useCallback(async () => {
    const d = await api.dashboard();
    return d.live ? (d.watch?.websocket ?? null) : null;
  }, []);
  const resolveEvents = useCallback(async () => (await api.dashboard()).watch?.events ?? null, []);

  const streamId = dash?.live ? (dash.stream?.id ?? null) : null;
  const loadComments = useCallback(() => {
    if (user) api.comments(user.username).then((r) => setComments(r.comments.slice().reverse()), () => {});
  }, [user]);
  const loadBans = useCallback(() => {
    api.bans().then((r) => setBans(r.bans), () => {});
  }, []);
  // The chat is the live stream's (offline: the latest stream's): a new stream starts an empty one.
  useEffect(() => loadComments(), [loadComments, streamId]);
  useEffect(() => {
    if (user) loadBans();
  }, [user, loadBans]);
  // The styles a stream offers: the API's list, else (an older API) the live stream's.
  useEffect(() => {
    if (!user || streamId === null) return;
    api.streamInfo(user.username).then((i) => setLiveStyles(i.styles), () => {});
  }, [user, streamId]);

  useStreamEvents(dash?.watch?.events, (event) => {
    if (event.type === "comment") setComments((list) => withComment(list, { ...event, created_at: new Date().toISOString() }));
    else if (event.type === "comment_deleted") setComments((list) => list.filter((c) => c.id !== event.id));
    else if (event.type === "viewers") update((d) => ({ ...d, viewers: d.live ? event.count : 0 }));
    else if (event.type === "chat_ban") loadBans();
    else if (event.type === "offline" || event.type === "style" || event.type === "styles" || event.type === "moved" || event.type === "live")
      void refresh();
  }, resolveEvents);

  const act = (fn: () => Promise<unknown>) => async () => {
    setError("");
    try {
      await fn();
    } catch (err) {
      setError(message(err));
    }
    await refresh();
  };

  const defaults: Look = { style: dash?.settings.style ?? "", strength: dash?.settings.strength ?? 1 };
  const chosen = look ?? defaults;
  const start = async (withCamera: boolean) => {
    setBusy(true);
    setError("");
    clearEnded();
    try {
      // The camera first: a refused camera should not start billing.
      if (withCamera) await ingest.openCamera();
      const stream = await api.goLive({ title: title || (withCamera ? "Live from the browser" : "Live"), style: chosen.style, strength: chosen.strength });
      if (withCamera) ingest.start({ ingest: stream.ingest, fps, transport, resolve: resolveIngest }); // on the worker the stream was placed on
      await refresh();
    } catch (err) {
      if (withCamera) ingest.stop();
      setError(err instanceof DOMException ? `Camera: ${err.message}` : message(err));
    } finally {
      setBusy(false);
    }
  };
  const stop = async () => {
    setBusy(true);
    ingest.stop();
    try {
      await api.stopStream();
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "not_live")) setError(message(err));
    }
    await refresh();
    setBusy(false);
  };
  const applyLook = (next: Look) =>
    void act(async () => {
      const patch: { style?: string; strength?: number } = {};
      if (next.style !== dash?.settings.style) patch.style = next.style;
      if (next.strength !== dash?.settings.strength) patch.strength = next.strength;
      if (Object.keys(patch).length) await api.updateSettings(patch);
    })();

  if (!user) return null;
  const health = dash?.processing;
  const styles = dash?.available_styles ?? (live ? liveStyles : []);
  const tooPoor = dash !== null && dash.seconds_remaining <= kMinSecondsToGoLive;
  const active = dash?.styles.active ?? null;
  const effective = live ? (active?.style ?? dash?.settings.style ?? dash?.stream?.style ?? "") : "";
  return (
    <>
      <h1>
        Dashboard {live && <span className="badge" data-testid="live-badge">LIVE</span>}
      </h1>
      {error && <p className="error" data-testid="error">{error}</p>}
      {!live && ended && (
        <p className="card" data-testid="end-notice" data-reason={ended.reason ?? ""}>
          {endReasonText(ended.reason, true)}
        </p>
      )}
      <section className="card stats">
        <div>
          <b data-testid="credits">{dash ? dash.credits.toFixed(1) : "…"}</b> credits · <Link href="/dashboard/credits">buy</Link>
        </div>
        <div>
          <b data-testid="time-left" data-seconds={secondsLeft === null ? "" : Math.floor(secondsLeft)} data-counting={dash?.counting_down ? "1" : "0"}>
            {secondsLeft === null ? "…" : formatDuration(secondsLeft)}
          </b>{" "}
          left
        </div>
        <div>
          <b data-testid="viewers">{live ? (dash?.viewers ?? 0) : 0}</b> watching
        </div>
        <div>
          <b data-testid="uptime">{live && dash?.stream ? formatClock(secondsSince(dash.stream.started_at, now)) : "–"}</b> live
        </div>
        <div>
          <b>{dash?.comment_count ?? 0}</b> comments
        </div>
      </section>

      <section className="card">
        <h2>Go live</h2>
        {live ? (
          <>
            <div className="row">
              <span className="wrap-anywhere">
                {dash?.stream?.title} · <Link href={`/${user.username}`}>your watch page</Link>
                {!ingest.stats.sending && health?.publisher && ` · sent by ${health.publisher}`}
                {!ingest.stats.sending && !health?.publisher && " · waiting for OBS or another publisher (nothing is billed until the first frame)"}
              </span>
              {ingest.stats.sending && (
                <button onClick={ingest.stop} disabled={busy} data-testid="stop-camera" title="The stream stays live for another publisher (OBS)">
                  Stop camera
                </button>
              )}
              <button onClick={stop} disabled={busy} data-testid="stop">
                Stop stream
              </button>
            </div>
            <StyleSettings styles={styles} value={defaults} onChange={applyLook} disabled={!dash} />
            <p>
              Showing <b data-testid="effective-style">{effective || "no style"}</b>
              {active && (
                <span className="muted">
                  {" "}
                  (asked by {active.requested_by}; yours comes back after it)
                </span>
              )}
            </p>
          </>
        ) : (
          <>
            <div className="row">
              <input placeholder="title" value={title} onChange={(e) => setTitle(e.target.value)} aria-label="Title" />
              <label>
                camera over{" "}
                <select value={transport} onChange={(e) => setTransport(e.target.value as IngestTransport)} aria-label="Camera transport" data-testid="ingest-transport">
                  <option value="whip">WebRTC (WHIP)</option>
                  <option value="websocket">WebSocket (JPEG)</option>
                </select>
              </label>
              <label>
                rate{" "}
                <select value={fps} onChange={(e) => setFps(Number(e.target.value))} aria-label="Frames per second">
                  {[2, 5, 10, 15].map((n) => (
                    <option key={n} value={n}>
                      {n} fps
                    </option>
                  ))}
                </select>
              </label>
            </div>
            <StyleSettings styles={styles} value={chosen} onChange={setLook} />
            <div className="row">
              <button className="primary" onClick={() => start(true)} disabled={busy || !dash || tooPoor} data-testid="go-live">
                Go live
              </button>
              <button onClick={() => start(false)} disabled={busy || !dash || tooPoor} data-testid="start-obs" title="Creates the stream without the camera and shows the URLs for OBS or gst-launch">
                Start stream (OBS)
              </button>
              {tooPoor && (
                <span data-testid="low-credits">
                  Going live needs more than 1 credit (10 minutes). <Link href="/dashboard/credits">Buy credits</Link>
                </span>
              )}
            </div>
          </>
        )}
        <div className="grid" style={{ marginTop: "1rem" }}>
          <div>
            <p className="muted">Camera</p>
            <CameraView stream={ingest.camera} />
            {ingest.stats.sending && (
              <p className="muted" data-testid="ingest-stats" data-sent={ingest.stats.sent} data-transport={ingest.stats.transport ?? ""}>
                {ingest.stats.transport === "whip"
                  ? `${ingest.stats.sent} frames sent over WebRTC (WHIP), up to ${fps} fps`
                  : `${ingest.stats.sent} JPEG frames sent over the WebSocket, ${ingest.stats.skipped} skipped at ${fps} fps`}
                {dash?.ingest?.worker && ` · media server ${dash.ingest.worker}`}
              </p>
            )}
            {ingest.stats.sending && ingest.stats.fallback && (
              <p className="muted" data-testid="ingest-fallback">
                Not WebRTC: {ingest.stats.fallback}.
              </p>
            )}
            {ingest.stats.reconnecting && (
              <p className="error" data-testid="ingest-reconnecting" role="status">
                Reconnecting…
              </p>
            )}
          </div>
          <div>
            <p className="muted">What viewers see</p>
            <FramePlayer url={dash?.watch?.websocket ?? null} active={live} testId="processed" preview resolve={resolvePreview} />
          </div>
        </div>
      </section>

      {live && dash?.ingest && <IngestUrls ingest={dash.ingest} busy={busy} onRotate={act(api.rotateSecret)} />}

      <div className="grid">
        <section className="card">
          <h2>Chat</h2>
          <label className="row">
            <input
              type="checkbox"
              checked={dash?.settings.comments_enabled ?? true}
              disabled={!dash}
              onChange={act(() => api.updateSettings({ comments_enabled: !dash?.settings.comments_enabled }))}
              data-testid="toggle-comments"
            />
            viewers may comment
          </label>
          <CommentList
            comments={comments}
            moderation={{
              self: user.username,
              onDelete: (id) =>
                void act(async () => {
                  await api.deleteComment(user.username, id);
                  setComments((list) => list.filter((c) => c.id !== id));
                })(),
              onBan: (username, seconds) =>
                void act(async () => {
                  await api.ban(username, seconds);
                  loadBans();
                })(),
            }}
          />
          <BanList
            bans={bans}
            onLift={(username) =>
              void act(async () => {
                await api.unban(username);
                loadBans();
              })()
            }
          />
        </section>

        <section className="card">
          <h2>Styles</h2>
          <label className="row">
            <input
              type="checkbox"
              checked={dash?.settings.styles_enabled ?? true}
              disabled={!dash}
              onChange={act(() => api.updateSettings({ styles_enabled: !dash?.settings.styles_enabled }))}
              data-testid="toggle-styles"
            />
            viewers may request styles
          </label>
          <StyleQueueView dash={dash} live={live} act={act} />
        </section>

        <section className="card">
          <h2>Health</h2>
          {health ? (
            <div className="scroll-x"><table data-testid="health">
              <tbody>
                <tr><td>ingest</td><td>{health.ingest} via {health.publisher || "nobody yet"}</td></tr>
                <tr><td>frames in</td><td>{health.frames_received} received, {health.frames_decoded} decoded, {health.frames_refused} refused</td></tr>
                <tr><td>rates</td><td>{health.ingest_fps.toFixed(1)} fps in, {health.processed_fps.toFixed(1)} fps processed</td></tr>
                <tr><td>model</td><td>{health.inference_ms.toFixed(0)} ms a frame, {health.frames_dropped} dropped</td></tr>
                <tr><td>lag</td><td>{health.lag_ms.toFixed(0)} ms</td></tr>
                <tr><td>restarts</td><td>{health.restarts_last_minute} in the last minute</td></tr>
                {(health.last_error || health.previous_error) && (
                  <tr><td>error</td><td className="error">{health.last_error ?? health.previous_error}</td></tr>
                )}
              </tbody>
            </table></div>
          ) : (
            <p className="muted">Shown while live.</p>
          )}
        </section>
      </div>
    </>
  );
}

/** The viewers' requests: the one applied now (time left), the waiting ones with a reject button each. */
function StyleQueueView({ dash, live, act }: { dash: Dashboard | null; live: boolean; act: (fn: () => Promise<unknown>) => () => Promise<void> }) {
  const active = dash?.styles.active ?? null;
  const now = useNow(active ? 1000 : null);
  const left = active?.ends_at ? Math.max(0, (Date.parse(active.ends_at) - now) / 1000) : null;
  return (
    <>
      <p>
        Requested now: <b data-testid="active-style">{active?.style ?? "none"}</b>
        {active && (
          <span className="muted">
            {" "}
            (asked by {active.requested_by}
            {left !== null && `, ${Math.ceil(left)} s left`})
          </span>
        )}
      </p>
      {dash && dash.styles.queue.length > 0 && (
        <ol data-testid="style-queue">
          {dash.styles.queue.map((q) => (
            <li key={q.id} data-testid="queued-style" data-id={q.id}>
              {q.style} <span className="muted">({q.requested_by})</span>{" "}
              <button className="link" onClick={act(() => api.rejectStyle(q.id))} data-testid="reject-style" aria-label={`Reject ${q.style} from ${q.requested_by}`}>
                reject
              </button>
            </li>
          ))}
        </ol>
      )}
      <div className="row">
        <button onClick={act(api.skipStyle)} disabled={!live || !active}>
          Skip
        </button>
        <button onClick={act(api.clearStyles)} disabled={!live || !dash?.styles.queue.length}>
          Clear queue
        </button>
      </div>
    </>
  );
}
