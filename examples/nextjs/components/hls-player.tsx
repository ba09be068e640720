"use client";
// HLS playback: hls.js where Media Source Extensions exist (every desktop
// browser), the browser's own HLS otherwise (iOS Safari). The playlist
// appears a second or two after a stream starts, so a fatal error (404)
// retries until the component is told the stream is over.
//
// Each retry waits (backoff with jitter, 0.25 s doubling to 5 s, reset once
// playing) and re-reads the playlist URL from the API (`resolve`): when the
// stream's media worker dies, or hands the stream to another, the stream
// goes on at the new worker's URL. "Reconnecting…" shows over the picture
// from the failure after playing until it plays again.
import { useEffect, useRef, useState } from "react";
import { media } from "@/lib/api";
import { resolveAfterBackoff } from "@/lib/backoff";
import { viewerId } from "@/lib/viewer-id";
import type { PlayerStatus } from "./frame-player";

// |url|: the stream's playlist on its media worker (the API's watch.hls),
// fetched cross-origin (the worker allows any origin for HLS).
export function HlsPlayer({
  url,
  active,
  resolve,
  onEnded,
}: {
  url: string | null;
  active: boolean;
  /** The watch.hls the API names now; null when the stream is not live. Without it the same URL is retried. */
  resolve?: () => Promise<string | null>;
  onEnded?: () => void;
}) {
  const video = useRef<HTMLVideoElement>(null);
  const [status, setStatus] = useState<PlayerStatus>("connecting");
  const latest = useRef({ url, resolve, onEnded });
  latest.current = { url, resolve, onEnded };
  // Set by the effect: plays |url| now if it is not the one playing.
  const moveTo = useRef<(url: string) => void>(() => {});
  const hasUrl = url !== null;

  useEffect(() => {
    const element = video.current;
    const first = latest.current.url;
    if (!active || !element || !first) return;
    setStatus("connecting");
    let cancelled = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let destroy = () => {};
    let current = first;
    let attempt = 0;
    let played = false;
    const playing = () => {
      attempt = 0;
      played = true;
      setStatus("playing");
    };
    element.addEventListener("playing", playing);
    // A fatal error: wait, ask the API where the stream is, play that.
    const failed = () => {
      destroy();
      destroy = () => {};
      if (cancelled) return;
      if (played) setStatus("reconnecting");
      const n = ++attempt;
      const r = latest.current.resolve;
      retry = resolveAfterBackoff(n, async () => (r ? r() : latest.current.url), () => !cancelled, {
        ended: () => {
          setStatus("ended");
          latest.current.onEnded?.();
        },
        failed,
        next: (next) => {
          if (played) console.info(`hls: reconnecting to ${next} (attempt ${n})`);
          void start(next);
        },
      });
    };
    const start = async (playlist: string) => {
      current = playlist;
      const source = media.asViewer(playlist, viewerId());
      const { default: Hls } = await import("hls.js");
      if (cancelled) return;
      if (Hls.isSupported()) {
        const hls = new Hls({ liveSyncDurationCount: 2, liveMaxLatencyDurationCount: 5 });
        destroy = () => hls.destroy();
        hls.on(Hls.Events.ERROR, (_event, data) => {
          if (data.fatal) failed();
        });
        hls.on(Hls.Events.MANIFEST_PARSED, () => void element.play().catch(() => {}));
        hls.loadSource(source);
        hls.attachMedia(element);
      } else if (element.canPlayType("application/vnd.apple.mpegurl")) {
        element.src = source;
        element.onerror = failed;
        destroy = () => {
          element.onerror = null;
          element.removeAttribute("src");
          element.load();
        };
        void element.play().catch(() => {});
      }
    };
    moveTo.current = (next) => {
      if (next === current || cancelled) return;
      clearTimeout(retry);
      destroy();
      destroy = () => {};
      attempt = 0;
      void start(next);
    };
    void start(first);
    return () => {
      cancelled = true;
      clearTimeout(retry);
      element.removeEventListener("playing", playing);
      destroy();
      moveTo.current = () => {};
    };
  }, [active, hasUrl]);

  // The page re-read the stream and names another worker: play that now.
  useEffect(() => {
    if (url) moveTo.current(url);
  }, [url]);

  return (
    <div className="player">
      <video ref={video} className="screen" muted playsInline autoPlay controls data-testid="hls-video" data-status={status} />
      {status === "reconnecting" && (
        <div className="player-status" data-testid="reconnecting" role="status">
          Reconnecting…
        </div>
      )}
    </div>
  );
}
