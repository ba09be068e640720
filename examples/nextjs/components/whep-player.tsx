"use client";
// WebRTC playback (WHEP, lib/webrtc.ts): a recvonly RTCPeerConnection whose
// offer goes to the stream's watch.whep; the worker answers with the
// processed stream in H.264, played by a <video> (muted, autoplay,
// playsInline). The lowest latency of the three modes, with the browser's
// own jitter buffer and decoder.
//
// The connection comes back by itself: when it fails (the worker died, or
// handed the stream to another worker) `resolve` re-reads watch.whep from
// the API before each attempt, with the sockets' backoff. Meanwhile the last
// picture stays under "Reconnecting…" until frames come again. An API that
// says the stream is not live ends it (`onEnded`); a failure no retry fixes
// (no WebRTC here, an offer the worker refuses) is `onFatal`: the page falls
// back to HLS.
import { useEffect, useRef, useState } from "react";
import { applyH264Preference, ReconnectingPeer, type WebRtcError } from "@/lib/webrtc";
import { media } from "@/lib/api";
import { viewerId } from "@/lib/viewer-id";
import type { PlayerStatus } from "./frame-player";

export function WhepPlayer({
  url,
  active,
  resolve,
  onEnded,
  onFatal,
}: {
  url: string | null;
  active: boolean;
  /** The watch.whep the API names now; null when the stream is not live. Without it the same URL is retried. */
  resolve?: () => Promise<string | null>;
  onEnded?: () => void;
  onFatal?: (error: WebRtcError) => void;
}) {
  const video = useRef<HTMLVideoElement>(null);
  const [status, setStatus] = useState<PlayerStatus>("connecting");
  const latest = useRef({ url, resolve, onEnded, onFatal });
  latest.current = { url, resolve, onEnded, onFatal };
  const peer = useRef<ReconnectingPeer | null>(null);
  // Started once there is a URL; a null one later (the API names no worker
  // for a moment while the stream moves) does not tear the player down: the
  // peer keeps trying through `resolve`, under "Reconnecting…".
  const startedOnce = useRef(false);
  if (url !== null) startedOnce.current = true;
  const ready = startedOnce.current;

  useEffect(() => {
    const element = video.current;
    const first = latest.current.url;
    if (!active || !element || !first) return;
    let closed = false;
    let now: PlayerStatus = "connecting";
    const show = (next: PlayerStatus) => {
      if (next !== now) setStatus((now = next));
    };
    setStatus("connecting");

    // Frames presented, across reconnects (data-frames): each one means the
    // picture moves, so "Reconnecting…" goes once frames come again.
    let frames = 0;
    let watching = false;
    // False from a drop until the next connection's track: a last frame (or
    // "playing") of the dead one must not hide "Reconnecting…".
    let fresh = true;
    const presented = () => {
      if (closed) return;
      element.dataset.frames = String(++frames);
      if (fresh && now !== "ended") show("playing");
      element.requestVideoFrameCallback(presented);
    };
    const onPlaying = () => {
      if (fresh && now !== "ended") show("playing");
    };
    element.addEventListener("playing", onPlaying);

    const p = new ReconnectingPeer({
      name: "whep",
      first: { url: media.asViewer(first, viewerId()), token: null },
      resolve: async () => {
        const r = latest.current.resolve;
        const next = r ? await r() : latest.current.url;
        return next === null ? null : { url: media.asViewer(next, viewerId()), token: null };
      },
      setup: (pc) => {
        applyH264Preference(pc.addTransceiver("video", { direction: "recvonly" }), "receiver");
        pc.ontrack = (event) => {
          if (closed) return;
          fresh = true;
          element.srcObject = event.streams[0] ?? new MediaStream([event.track]);
          void element.play().catch(() => {});
          if (!watching && typeof element.requestVideoFrameCallback === "function") {
            watching = true;
            element.requestVideoFrameCallback(presented);
          }
        };
      },
      onState: (state) => {
        if (state.kind === "down") {
          fresh = false;
          // After it played, or in a peer connection started again meanwhile
          // (the effect re-ran): either way it is trying again.
          if (now !== "ended") show("reconnecting");
          // A new connection's first frame must count as "again": the
          // presented callback is what clears the overlay.
        } else if (state.kind === "ended") {
          show("ended");
          latest.current.onEnded?.();
        } else if (state.kind === "fatal") {
          show("ended");
          latest.current.onFatal?.(state.error);
        }
      },
    });
    peer.current = p;
    return () => {
      closed = true;
      element.removeEventListener("playing", onPlaying);
      p.close(); // DELETEs the session
      peer.current = null;
      element.srcObject = null;
    };
  }, [active, ready]);

  // The page re-read the stream and names another worker: go there now.
  useEffect(() => {
    if (url) peer.current?.moveTo({ url: media.asViewer(url, viewerId()), token: null });
  }, [url]);

  return (
    <div className="player">
      <video ref={video} className="screen" muted playsInline autoPlay data-testid="whep-video" data-status={status} />
      {status === "reconnecting" && (
        <div className="player-status" data-testid="reconnecting" role="status">
          Reconnecting…
        </div>
      )}
    </div>
  );
}
