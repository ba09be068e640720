"use client";
// The streamer's page: credits, going live from the camera with the
// processed stream beside it, viewers, comments, the style queue, the
// toggles and the media plane's health. GET /api/me/dashboard is polled every
// 2 s; comments and the live/offline changes arrive at once over /events.
// The camera goes out over WHIP (WebRTC) by default, JPEG over the WebSocket
// when chosen or when WHIP cannot work (lib/use-camera-ingest.ts); for OBS
// the page shows the WHIP URL and its bearer token. The camera's
// connection, the preview and the events socket come back by themselves
// when the stream's media worker dies or hands the stream over, each
// re-reading its URL from the dashboard answer ("Reconnecting…" shows
// meanwhile); how a stream ended is said in words (lib/end-reasons.ts).
import Link from "next/link";
import { useCallback, useEffect, useRef, useState } from "react";
import { CommentList, withComment } from "@/components/comment-list";
import { FramePlayer } from "@/components/frame-player";
import { api, ApiError, formatDuration, type Comment, type Dashboard } from "@/lib/api";
import { endReasonText } from "@/lib/end-reasons";
import { useRequiredUser } from "@/lib/require-user";
import { useCameraIngest, type IngestTransport } from "@/lib/use-camera-ingest";
import { useInterval } from "@/lib/use-interval";
import { useStreamEvents } from "@/lib/use-stream-events";

const message = (err: unknown) => (err instanceof ApiError ? err.message : String(err));

export default function DashboardPage() {
  const user = useRequiredUser();
  const [dash, setDash] = useState<Dashboard | null>(null);
  const [comments, setComments] = useState<Comment[]>([]);
  const [title, setTitle] = useState("");
  const [fps, setFps] = useState(10);
  const [transport, setTransport] = useState<IngestTransport>("whip");
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState(false);
  const ingest = useCameraIngest();

  const refresh = useCallback(async () => {
    try {
      setDash(await api.dashboard());
    } catch (err) {
      setError(message(err));
    }
  }, []);
  useInterval(() => void refresh(), user ? 2000 : null);

  // A socket dropped: the dashboard answer names the stream's worker now
  // (another one once the stream was re-placed). Throws when the API does
  // not answer, so the socket tries again later.
  const resolve = useCallback(async (pick: (d: Dashboard) => string | null | undefined) => {
    const d = await api.dashboard();
    setDash(d);
    return d.live ? (pick(d) ?? null) : null;
  }, []);
  const resolveIngest = useCallback(async () => {
    const d = await api.dashboard();
    setDash(d);
    return d.live ? d.ingest : null;
  }, []);
  const resolvePreview = useCallback(() => resolve((d) => d.watch?.websocket), [resolve]);
  const resolveEvents = useCallback(async () => (await api.dashboard()).watch?.events ?? null, []);

  // Says once how the stream ended, from whichever told first (the ingest's
  // close, the events' "offline", or the stream's history).
  const endedShown = useRef<number | null>(null);
  const showEnded = useCallback(async (reason: string | null) => {
    let why = reason;
    let id: number | null = null;
    try {
      const latest = (await api.streamHistory()).streams[0]?.stream;
      if (latest) {
        id = latest.id;
        why = why || latest.end_reason;
      }
    } catch {
      // the reason we have is enough
    }
    if (id !== null && endedShown.current === id) return;
    endedShown.current = id;
    setNotice(endReasonText(why, true));
  }, []);

  useEffect(() => {
    if (!user) return;
    api.comments(user.username).then((r) => setComments(r.comments.slice().reverse()), () => {});
  }, [user]);

  // The stream's worker while live (another one while offline): the URL
  // changes with the dashboard, and the socket follows it.
  useStreamEvents(dash?.watch?.events, (event) => {
    if (event.type === "comment") setComments((list) => withComment(list, { ...event, created_at: new Date().toISOString() }));
    else if (event.type === "comment_deleted") setComments((list) => list.filter((c) => c.id !== event.id));
    else if (event.type === "viewers") setDash((d) => (d ? { ...d, viewers: event.count } : d));
    else if (event.type === "offline" && event.reason) {
      if (ingest.stats.sending) ingest.stop();
      void showEnded(event.reason);
      void refresh();
    } else if (event.type === "style" || event.type === "moved") void refresh();
  }, resolveEvents);

  // The ingest socket saw the end (close 1000 with the reason, or the API
  // said the stream is over while reconnecting).
  const endedReason = ingest.stats.ended;
  const stopCamera = ingest.stop;
  useEffect(() => {
    if (endedReason === null) return;
    stopCamera();
    void showEnded(endedReason || null);
    void refresh();
  }, [endedReason, stopCamera, showEnded, refresh]);

  const goLive = async () => {
    setBusy(true);
    setError("");
    setNotice("");
    try {
      // The camera first: a refused camera should not start billing.
      await ingest.openCamera();
      const live = await api.goLive(title || "Live from the browser");
      endedShown.current = null;
      ingest.start({ ingest: live.ingest, fps, transport, resolve: resolveIngest }); // on the worker the stream was placed on
      await refresh();
    } catch (err) {
      ingest.stop();
      setError(err instanceof DOMException ? `Camera: ${err.message}` : message(err));
    } finally {
      setBusy(false);
    }
  };
  const stop = async () => {
    setBusy(true);
    ingest.stop();
    endedShown.current = dash?.stream?.id ?? null; // pressed here: nothing to explain
    try {
      await api.stopStream();
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "not_live")) setError(message(err));
    }
    await refresh();
    setBusy(false);
  };
  const act = (fn: () => Promise<unknown>) => async () => {
    setError("");
    try {
      await fn();
    } catch (err) {
      setError(message(err));
    }
    await refresh();
  };

  if (!user) return null;
  const live = dash?.live ?? false;
  const health = dash?.processing;
  return (
    <>
      <h1>
        Dashboard {live && <span className="badge" data-testid="live-badge">LIVE</span>}
      </h1>
      {error && <p className="error" data-testid="error">{error}</p>}
      {notice && <p className="card">{notice}</p>}
      <section className="card stats">
        <div>
          <b data-testid="credits">{dash ? dash.credits.toFixed(1) : "…"}</b> credits ·{" "}
          <Link href="/dashboard/credits">buy</Link>
        </div>
        <div>
          <b>{dash ? formatDuration(dash.seconds_remaining) : "…"}</b> left
        </div>
        <div>
          <b data-testid="viewers">{dash?.viewers ?? 0}</b> watching
        </div>
        <div>
          <b>{dash?.comment_count ?? 0}</b> comments
        </div>
      </section>

      <section className="card">
        <h2>Go live</h2>
        {live ? (
          <div className="row">
            <span>
              {dash?.stream?.title} · <Link href={`/${user.username}`}>your watch page</Link>
              {!ingest.stats.sending && health?.publisher && ` · sent by ${health.publisher}`}
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
        ) : (
          <div className="row">
            <input placeholder="title" value={title} onChange={(e) => setTitle(e.target.value)} aria-label="Title" />
            <label>
              camera over{" "}
              <select
                value={transport}
                onChange={(e) => setTransport(e.target.value as IngestTransport)}
                aria-label="Camera transport"
                data-testid="ingest-transport"
              >
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
            <button className="primary" onClick={goLive} disabled={busy || !dash} data-testid="go-live">
              Go live
            </button>
            <span className="muted">needs more than 1 credit</span>
          </div>
        )}
        <div className="grid" style={{ marginTop: "1rem" }}>
          <div>
            <p className="muted">Camera</p>
            <video ref={ingest.video} className="screen" muted playsInline data-testid="camera" />
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

      {live && dash?.ingest?.whip && <ObsSettings url={dash.ingest.whip} token={dash.ingest.secret} />}

      <div className="grid">
        <section className="card">
          <h2>Comments</h2>
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
            onDelete={(id) =>
              void act(async () => {
                await api.deleteComment(user.username, id);
                setComments((list) => list.filter((c) => c.id !== id));
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
          <p>
            Now: <b data-testid="active-style">{dash?.styles.active?.style ?? "none"}</b>
            {dash?.styles.active && <span className="muted"> (asked by {dash.styles.active.requested_by})</span>}
          </p>
          {dash && dash.styles.queue.length > 0 && (
            <ol>
              {dash.styles.queue.map((q) => (
                <li key={q.id}>
                  {q.style} <span className="muted">({q.requested_by})</span>
                </li>
              ))}
            </ol>
          )}
          <div className="row">
            <button onClick={act(api.skipStyle)} disabled={!live || !dash?.styles.active}>
              Skip
            </button>
            <button onClick={act(api.clearStyles)} disabled={!live || !dash?.styles.queue.length}>
              Clear queue
            </button>
          </div>
        </section>

        <section className="card">
          <h2>Health</h2>
          {health ? (
            <table data-testid="health">
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
            </table>
          ) : (
            <p className="muted">Shown while live.</p>
          )}
        </section>
      </div>
    </>
  );
}

/** Copies |text|; the clipboard API needs a secure context, so a plain-HTTP page falls back to a selection. */
async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

function CopyField({ label, value, secret = false, testId }: { label: string; value: string; secret?: boolean; testId: string }) {
  const [copied, setCopied] = useState(false);
  const [shown, setShown] = useState(!secret);
  return (
    <label className="row">
      <span style={{ minWidth: "7rem" }}>{label}</span>
      <input
        readOnly
        type={shown ? "text" : "password"}
        value={value}
        onFocus={(e) => e.target.select()}
        style={{ flex: 1, minWidth: "16rem", fontFamily: "monospace" }}
        data-testid={testId}
      />
      {secret && (
        <button type="button" onClick={() => setShown((s) => !s)}>
          {shown ? "Hide" : "Show"}
        </button>
      )}
      <button
        type="button"
        onClick={async () => {
          setCopied(await copy(value));
          setTimeout(() => setCopied(false), 1500);
        }}
        data-testid={`${testId}-copy`}
      >
        {copied ? "Copied" : "Copy"}
      </button>
    </label>
  );
}

/** Streaming from OBS 30+ instead of the camera: Settings → Stream, Service "WHIP". */
function ObsSettings({ url, token }: { url: string; token: string }) {
  return (
    <section className="card" data-testid="obs-settings">
      <h2>Stream from OBS</h2>
      <p className="muted">
        OBS 30 or newer: Settings → Stream → Service <b>WHIP</b>, then paste these. Stop the camera here first: a stream takes
        one publisher at a time. The token is your stream secret: keep it off screen.
      </p>
      <div style={{ display: "grid", gap: "0.4rem" }}>
        <CopyField label="Server" value={url} testId="whip-url" />
        <CopyField label="Bearer Token" value={token} secret testId="whip-token" />
      </div>
    </section>
  );
}
