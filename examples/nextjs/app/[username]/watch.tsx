"use client";
// A channel's watch page, for everyone: WebRTC (WHEP, the default where the
// API offers watch.whep and the browser has RTCPeerConnection), HLS (a few
// seconds behind; the default otherwise, and the fallback when WHEP fails
// in a way no retry fixes) or the WebSocket JPEG frames; live comments, and
// the style request box while the streamer allows them. Logging in is
// needed only to comment or request a style.
//
// When the stream's media worker dies or hands the stream over, the players
// and the events socket come back by themselves, each re-reading its URL
// from GET /api/streams/{username} before each attempt; the player shows
// "Reconnecting…" until frames come again. How the stream ended is said in
// words (lib/end-reasons.ts).
//
// Chat is the live stream's (offline: the latest stream's); `pastStream`
// (?stream=ID) shows an earlier stream's, read-only. Every line has its
// time; deletions vanish as they happen; a banned or timed-out viewer is
// told so. On narrow screens the video is on top at full width, the chat
// below (globals.css, .watch-layout).
import Link from "next/link";
import { useCallback, useEffect, useRef, useState } from "react";
import { CommentList, withComment } from "@/components/comment-list";
import { FramePlayer } from "@/components/frame-player";
import { HlsPlayer } from "@/components/hls-player";
import { loginLinks, StyleRequest, type QueueRead } from "@/components/style-request";
import { WhepPlayer } from "@/components/whep-player";
import {
  api,
  ApiError,
  formatClock,
  formatDuration,
  secondsSince,
  secondsUntil,
  type Comment,
  type PastStream,
  type StreamInfo,
  type Watch as WatchUrls,
} from "@/lib/api";
import { endReasonText } from "@/lib/end-reasons";
import { useSession } from "@/lib/session";
import { useInterval } from "@/lib/use-interval";
import { useNow } from "@/lib/use-now";
import { useStreamEvents } from "@/lib/use-stream-events";
import { webRtcSupported, type WebRtcError } from "@/lib/webrtc";

type Mode = "whep" | "hls" | "websocket";

/** Why this viewer may not write: a ban, or a time-out until `until` (ms). */
type Muted = { kind: "banned" } | { kind: "timed_out"; until: number };

export function Watch({ username, initial = null, pastStream = null }: { username: string; initial?: StreamInfo | null; pastStream?: number | null }) {
  const { user } = useSession();
  const [info, setInfo] = useState<StreamInfo | null>(initial);
  const [missing, setMissing] = useState(false);
  const [ended, setEnded] = useState(false);
  const [endReason, setEndReason] = useState<string | null>(null);
  const [chosen, setChosen] = useState<Mode | null>(null); // null: the best the stream and browser allow
  const [whepFailed, setWhepFailed] = useState<string | null>(null);
  const [viewers, setViewers] = useState<number | null>(null);
  const [comments, setComments] = useState<Comment[]>([]);
  const [queue, setQueue] = useState<QueueRead | null>(null);
  const [past, setPast] = useState<PastStream[]>([]);
  const [muted, setMuted] = useState<Muted | null>(null);
  const [text, setText] = useState("");
  const [error, setError] = useState("");
  const now = useNow(info?.live || muted?.kind === "timed_out" ? 1000 : null);
  const [mounted, setMounted] = useState(false);
  useEffect(() => setMounted(true), []);

  // The channel's details; the settings (comments, styles) arrive as
  // events, and a slow poll catches anything missed while reconnecting.
  const wasLive = useRef(false);
  wasLive.current = info?.live ?? false;
  const loadInfo = useCallback(async () => {
    try {
      const next = await api.streamInfo(username);
      if (next.live) setEnded(false);
      else if (wasLive.current) {
        // It ended while this page was open; the reason, also when the
        // events socket that says it was down then (its worker died).
        setEnded(true);
        if (next.end_reason) setEndReason(next.end_reason);
      }
      setInfo(next);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) setMissing(true);
    }
  }, [username]);
  // Slowly while the events socket tells of changes; every 5 s without one
  // (no worker is live to serve it).
  useInterval(() => void loadInfo(), info?.watch.events ? 30000 : 5000);

  // A socket dropped: where is the stream now? (null: not live any more;
  // a failed request throws, and the socket tries again later.)
  const resolve = useCallback(
    async (pick: (w: WatchUrls) => string | null) => {
      const next = await api.streamInfo(username);
      if (!next.live) void loadInfo(); // ended: the page shows it
      return next.live ? pick(next.watch) : null;
    },
    [username, loadInfo],
  );
  const resolveFrames = useCallback(() => resolve((w) => w.websocket), [resolve]);
  const resolveHls = useCallback(() => resolve((w) => w.hls), [resolve]);
  // Live but no WHEP URL now (an API without it after a failover): try again later, not "ended".
  const resolveWhep = useCallback(
    () =>
      resolve((w) => {
        if (!w.whep) throw new Error("no WHEP URL now");
        return w.whep;
      }),
    [resolve],
  );
  const whepFatal = useCallback((err: WebRtcError) => {
    console.warn(`whep: ${err.status} ${err.code}: ${err.message}; playing HLS instead`);
    setWhepFailed(err.message);
    setChosen((c) => (c === "whep" || c === null ? "hls" : c));
  }, []);
  const resolveEvents = useCallback(async () => (await api.streamInfo(username)).watch.events, [username]);
  const playerEnded = useCallback(() => void loadInfo(), [loadInfo]);

  const loadQueue = useCallback(() => {
    api.styleQueue(username).then((queue) => setQueue({ queue, at: Date.now() }), () => setQueue(null));
  }, [username]);
  // The chat of the stream shown: the live one (a new stream starts an empty chat), or the earlier one asked for.
  const liveSince = info?.live ? info.started_at : null;
  const loadComments = useCallback(() => {
    api.comments(username, pastStream).then((r) => setComments(r.comments.slice().reverse()), () => setComments([]));
  }, [username, pastStream]);
  useEffect(() => loadComments(), [loadComments, liveSince]);
  useEffect(() => loadQueue(), [loadQueue, liveSince]);
  useEffect(() => {
    api.pastStreams(username).then((r) => setPast(r.streams.filter((s) => s.ended_at)), () => setPast([]));
  }, [username, liveSince]);

  // On the live stream's worker, or any worker while offline; "live" reloads
  // the channel, and with it the URL: the socket moves to the stream's worker.
  useStreamEvents(info?.watch.events, (event) => {
    switch (event.type) {
      case "live":
        setEndReason(null);
        void loadInfo();
        break;
      case "moved": // the stream went to another worker: its URLs changed
        void loadInfo();
        break;
      case "offline":
        if (info?.live) setEnded(true);
        setEndReason(event.reason ?? null);
        setInfo((i) => (i ? { ...i, live: false } : i));
        break;
      case "style":
        setInfo((i) => (i ? { ...i, style: event.style } : i));
        loadQueue();
        break;
      case "styles":
        loadQueue();
        break;
      case "viewers":
        setViewers(event.count);
        break;
      case "comment":
        if (pastStream === null) setComments((list) => withComment(list, { ...event, created_at: new Date().toISOString() }));
        break;
      case "chat_unban":
        if (user && event.username === user.username) setMuted(null);
        break;
      case "chat_ban":
        if (user && event.username === user.username)
          setMuted(event.until ? { kind: "timed_out", until: Date.parse(event.until) } : event.until === null ? { kind: "banned" } : null);
        break;
      case "comment_deleted":
        setComments((list) => list.filter((c) => c.id !== event.id));
        break;
      case "settings":
        setInfo((i) => (i ? { ...i, comments_enabled: event.comments_enabled, styles_enabled: event.styles_enabled } : i));
        break;
    }
  }, resolveEvents);

  // The first time the stream is seen live the automatic mode is decided
  // and kept: WHEP where the API offers it and the browser can, else HLS.
  useEffect(() => {
    if (chosen === null && info?.live) setChosen(info.watch.whep && webRtcSupported() && whepFailed === null ? "whep" : "hls");
  }, [info, chosen, whepFailed]);

  const send = async (action: () => Promise<unknown>) => {
    setError("");
    try {
      await action();
    } catch (err) {
      if (err instanceof ApiError && err.code === "banned") setMuted({ kind: "banned" });
      else if (err instanceof ApiError && err.code === "timed_out") setMuted({ kind: "timed_out", until: Date.now() + (err.retryAfter ?? 600) * 1000 });
      else setError(err instanceof ApiError ? err.message : String(err));
      if (err instanceof ApiError && err.status === 403) void loadInfo();
    }
  };
  const comment = (e: React.FormEvent) => {
    e.preventDefault();
    if (!text.trim()) return;
    void send(async () => {
      const posted = await api.postComment(username, text.trim());
      setMuted(null); // lifted meanwhile
      setText("");
      setComments((list) => withComment(list, posted));
    });
  };

  if (missing) return <h1 data-testid="not-found">No channel called {username}</h1>;
  if (!info) return <p className="muted">Loading…</p>;
  // What this browser can (WebRTC) is known only once mounted: the server's
  // render, and the first one in the browser that hydrates it, show no player.
  const whepUsable = mounted && webRtcSupported() && whepFailed === null;
  const whepOffered = !!info.watch.whep && whepUsable;
  // The automatic choice sticks (see the effect above): a moment without
  // watch.whep while the stream moves must not swap the player.
  const mode: Mode = chosen === "whep" && !whepUsable ? "hls" : (chosen ?? (whepOffered ? "whep" : "hls"));
  const loginLink = loginLinks(username);
  const timedOutFor = muted?.kind === "timed_out" ? secondsUntil(new Date(muted.until).toISOString(), now) : 0;
  const mutedNow = muted?.kind === "banned" || timedOutFor > 0;
  const shownPast = pastStream === null ? null : (past.find((p) => p.id === pastStream) ?? null);
  return (
    <>
      <header className="channel-head">
        <h1>
          {info.display_name || info.username} {info.live && <span className="badge">LIVE</span>}
        </h1>
        {info.bio && (
          <p className="wrap-anywhere" data-testid="bio">
            {info.bio}
          </p>
        )}
        <p className="muted" data-testid="channel-stats">
          <span data-testid="viewer-count">{info.live ? (viewers ?? info.viewers) : 0}</span> watching
          {info.live ? (
            <>
              {" "}
              · live for <span data-testid="uptime">{formatClock(secondsSince(info.started_at, now))}</span>
            </>
          ) : (
            <span data-testid="last-live">
              {" "}
              {/* The browser's time zone and language: written once mounted, not on the server. */}
              · {info.last_live_at ? `last live ${now ? new Date(info.last_live_at).toLocaleString() : ""}` : "never live yet"}
            </span>
          )}
        </p>
      </header>
      <div className="watch-layout">
        <section className="watch-video">
          {info.live ? (
            <>
              <p className="wrap-anywhere">
                {info.title}
                {info.style && (
                  <>
                    {" "}
                    · style <b data-testid="current-style">{info.style}</b>
                  </>
                )}
              </p>
              {!mounted ? (
                <div className="screen" />
              ) : mode === "whep" ? (
                <WhepPlayer url={info.watch.whep ?? null} active resolve={resolveWhep} onEnded={playerEnded} onFatal={whepFatal} />
              ) : mode === "hls" ? (
                <HlsPlayer url={info.watch.hls} active resolve={resolveHls} onEnded={playerEnded} />
              ) : (
                <FramePlayer url={info.watch.websocket} active testId="watch-frames" resolve={resolveFrames} onEnded={playerEnded} />
              )}
              {mounted && (
              <div className="row" style={{ marginTop: "0.5rem" }} data-testid="watch-mode" data-mode={mode}>
                <label title={whepOffered ? undefined : (whepFailed ?? "not offered by this stream or browser")}>
                  <input type="radio" checked={mode === "whep"} disabled={!whepOffered && mode !== "whep"} onChange={() => setChosen("whep")} data-testid="mode-whep" />{" "}
                  WebRTC (lowest latency)
                </label>
                <label>
                  <input type="radio" checked={mode === "hls"} onChange={() => setChosen("hls")} data-testid="mode-hls" /> HLS
                </label>
                <label>
                  <input type="radio" checked={mode === "websocket"} onChange={() => setChosen("websocket")} data-testid="mode-websocket" />{" "}
                  WebSocket (JPEG frames)
                </label>
              </div>
              )}
              {whepFailed && (
                <p className="muted" data-testid="whep-fallback">
                  WebRTC did not work here ({whepFailed}); playing HLS.
                </p>
              )}
            </>
          ) : (
            <div className="screen" style={{ display: "grid", placeItems: "center", alignContent: "center", color: "white", textAlign: "center", padding: "1rem" }} data-testid="offline">
              <div>{ended ? "Stream ended" : "Offline"}</div>
              {ended && endReason && (
                <div className="muted" data-testid="end-reason">
                  {endReasonText(endReason)}
                </div>
              )}
            </div>
          )}
          {info.live && info.styles_enabled && (
            <StyleRequest
              username={username}
              styles={info.styles}
              user={user}
              read={queue}
              onQueue={(q) => setQueue({ queue: q, at: Date.now() })}
              loginLink={loginLink}
            />
          )}
          {past.length > 0 && (
            <section className="card" style={{ marginTop: "1rem" }} data-testid="past-streams">
              <h2>Earlier streams</h2>
              <ul className="plain">
                {past.map((p) => (
                  <li key={p.id}>
                    <Link href={`/${username}?stream=${p.id}`} data-testid="past-stream" data-id={p.id}>
                      {p.title || "Untitled"}
                    </Link>{" "}
                    <span className="muted">
                      {new Date(p.started_at).toLocaleString()}
                      {p.ended_at && `, ${formatDuration(secondsSince(p.started_at, Date.parse(p.ended_at)))}`} · {p.comment_count} comments
                    </span>
                  </li>
                ))}
              </ul>
            </section>
          )}
        </section>
        <section className="card watch-chat">
          <h2>{pastStream === null ? "Chat" : `Chat of ${shownPast ? `“${shownPast.title || "Untitled"}”` : "an earlier stream"}`}</h2>
          {pastStream !== null && (
            <p data-testid="past-chat">
              <Link href={`/${username}`}>Back to the current chat</Link>
            </p>
          )}
          <CommentList comments={comments} />
          {pastStream === null && mutedNow && (
            <p className="error" data-testid="chat-banned" role="status">
              {muted?.kind === "banned"
                ? "The streamer has banned you from this chat."
                : `The streamer has timed you out: you can write again in ${formatDuration(timedOutFor)}.`}
            </p>
          )}
          {pastStream !== null ? null : info.comments_enabled ? (
            user ? (
              <form className="row" onSubmit={comment} data-testid="comment-form">
                <input value={text} onChange={(e) => setText(e.target.value)} maxLength={500} placeholder="Say something" aria-label="Comment" style={{ flex: 1 }} />
                <button type="submit">Send</button>
              </form>
            ) : (
              <p>{loginLink} to comment.</p>
            )
          ) : (
            <p className="muted" data-testid="comments-off">
              Comments are turned off.
            </p>
          )}
          {error && <p className="error">{error}</p>}
        </section>
      </div>
    </>
  );
}
