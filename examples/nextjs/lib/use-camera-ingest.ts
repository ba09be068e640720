"use client";
// Going live from the browser. The camera (getUserMedia) plays in a <video>
// of its own, kept out of the page (lib/live.tsx holds this hook above the
// pages, so the camera goes on while the streamer moves between them; the
// dashboard shows `camera` in a <video> of its own), and goes to the
// stream's worker one of two ways:
//
// - WHIP (the default, lib/webrtc.ts): the camera's track in a sendonly
//   RTCPeerConnection, H.264 constrained baseline preferred (VP8 is taken
//   too), the offer POSTed to ingest.whip with the stream secret as the
//   bearer token. The browser's encoder adapts to the uplink by itself.
// - WebSocket JPEG (the fallback, and what a browser without WebRTC or a
//   worker without WHIP gets): a timer draws the camera on a canvas at the
//   chosen rate and sends each frame as one binary JPEG message to
//   ingest.websocket (docs/media.md). A frame is skipped, not queued, while
//   the previous one is still being encoded or the socket has not sent what
//   it holds, so a slow uplink lowers the rate instead of adding delay.
//
// Both come back by themselves when the stream's worker dies or hands the
// stream over: `resolve` re-reads the ingest URLs from the API before each
// attempt, with backoff (lib/reconnecting-socket.ts, lib/webrtc.ts). The
// WebSocket's close 1000 with a reason is the stream's end (stopped,
// credits_exhausted, worker_lost, ...): sending stops and `ended` says why;
// so does an API that says the stream is not live (`ended` is then "", the
// reason being in the stream's history). A WHIP session that fails in a way
// no retry fixes (no RTCPeerConnection, the worker refusing the offer) falls
// back to the WebSocket, and `fallback` says why.
import { useCallback, useEffect, useRef, useState } from "react";
import type { Ingest } from "./api";
import { ReconnectingSocket } from "./reconnecting-socket";
import { applyH264Preference, ReconnectingPeer, webRtcSupported } from "./webrtc";

export type IngestTransport = "whip" | "websocket";

export type IngestStats = {
  sending: boolean;
  /** How the camera goes out now (null: it does not). */
  transport: IngestTransport | null;
  /** Why WHIP was asked for but the WebSocket is used. */
  fallback: string | null;
  /** Frames sent (WHIP: the encoder's count, from getStats). */
  sent: number;
  skipped: number;
  /** The connection dropped while the stream is live: a new one is being sought. */
  reconnecting: boolean;
  /** Set once the stream ended under the connection: its reason ("" when only the API said so). */
  ended: string | null;
};

export type StartOptions = {
  ingest: Ingest;
  fps: number;
  transport: IngestTransport;
  /** The ingest URLs the API names now (null: not live any more); a rejection is retried later. */
  resolve: () => Promise<Ingest | null>;
  quality?: number;
};

const kMaxBuffered = 512 * 1024; // bytes waiting in the socket: a few frames
const kMaxWidth = 640; // the media plane scales to its own size anyway
const kIdle: IngestStats = { sending: false, transport: null, fallback: null, sent: 0, skipped: 0, reconnecting: false, ended: null };

export function useCameraIngest() {
  // The camera's own element, never in the page: the JPEG path draws from it.
  const video = useRef<HTMLVideoElement | null>(null);
  const camera = useRef<MediaStream | null>(null);
  const [stream, setStream] = useState<MediaStream | null>(null);
  const socket = useRef<ReconnectingSocket | null>(null);
  const peer = useRef<ReconnectingPeer | null>(null);
  const timer = useRef<ReturnType<typeof setInterval> | undefined>(undefined);
  const counts = useRef({ sent: 0, skipped: 0 });
  const wanted = useRef(false);
  const [stats, setStats] = useState<IngestStats>(kIdle);

  const openCamera = useCallback(async () => {
    if (camera.current) return;
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    camera.current = stream;
    const element = document.createElement("video");
    element.muted = true;
    element.playsInline = true;
    element.srcObject = stream;
    video.current = element;
    await element.play().catch(() => {});
    setStream(stream);
  }, []);

  const stopSending = useCallback(() => {
    wanted.current = false;
    clearInterval(timer.current);
    socket.current?.close();
    socket.current = null;
    peer.current?.close(); // DELETEs the WHIP session
    peer.current = null;
  }, []);

  const stop = useCallback(() => {
    stopSending();
    camera.current?.getTracks().forEach((t) => t.stop());
    camera.current = null;
    if (video.current) video.current.srcObject = null;
    video.current = null;
    setStream(null);
    setStats((s) => ({ ...s, sending: false, reconnecting: false }));
  }, [stopSending]);

  const ended = useCallback(
    (reason: string) => {
      stopSending();
      setStats((s) => ({ ...s, ...counts.current, sending: false, reconnecting: false, ended: reason }));
    },
    [stopSending],
  );

  /** JPEG frames over ingest.websocket. */
  const startWebSocket = useCallback(
    (url: string, fps: number, resolve: () => Promise<Ingest | null>, quality: number, fallback: string | null) => {
      const canvas = document.createElement("canvas");
      const context = canvas.getContext("2d");
      let encoding = false;
      socket.current = new ReconnectingSocket({
        name: "ingest",
        url,
        resolve: async () => (await resolve())?.websocket ?? null,
        setup: (ws) => {
          ws.binaryType = "arraybuffer";
        },
        // The daemon closes 1000 with the reason when it ends the stream.
        endOf: (event) => (event.code === 1000 && event.reason ? event.reason : null),
        onState: (state) => {
          if (state.kind === "open") setStats((s) => ({ ...s, reconnecting: false }));
          else if (state.kind === "down") setStats((s) => ({ ...s, reconnecting: true }));
          else ended(state.reason ?? "");
        },
      });
      timer.current = setInterval(() => {
        const ws = socket.current?.ws;
        const v = video.current;
        if (!ws || ws.readyState !== WebSocket.OPEN || !v || !context || v.videoWidth === 0) return;
        if (encoding || ws.bufferedAmount > kMaxBuffered) {
          counts.current.skipped++;
          return;
        }
        const scale = Math.min(1, kMaxWidth / v.videoWidth);
        canvas.width = Math.round(v.videoWidth * scale);
        canvas.height = Math.round(v.videoHeight * scale);
        context.drawImage(v, 0, 0, canvas.width, canvas.height);
        encoding = true;
        canvas.toBlob(
          (blob) => {
            encoding = false;
            if (blob && ws.readyState === WebSocket.OPEN) {
              ws.send(blob);
              counts.current.sent++;
            }
          },
          "image/jpeg",
          quality,
        );
      }, 1000 / fps);
      setStats((s) => ({ ...s, sending: true, transport: "websocket", fallback, reconnecting: false }));
    },
    [ended],
  );

  /** Sends the camera to the stream's worker (`ingest`, from POST /api/streams) the way asked, or the WebSocket when WHIP cannot be used. */
  const start = useCallback(
    ({ ingest, fps, transport, resolve, quality = 0.8 }: StartOptions) => {
      stopSending();
      wanted.current = true;
      counts.current = { sent: 0, skipped: 0 };
      setStats({ ...kIdle, sending: true });
      let latest = ingest; // the newest ingest URLs the API named, for a fallback
      const resolveLatest = async () => {
        const next = await resolve();
        if (next) latest = next;
        return next;
      };
      const track = camera.current?.getVideoTracks()[0];
      const whyNot =
        transport !== "whip"
          ? null
          : !ingest.whip
            ? "the media server offers no WHIP"
            : !webRtcSupported()
              ? "this browser has no WebRTC"
              : !track
                ? "no camera track"
                : null;
      if (transport === "websocket" || whyNot || !track || !ingest.whip) {
        startWebSocket(ingest.websocket, fps, resolveLatest, quality, whyNot);
        return;
      }

      // WHIP: the encoder's frame count, summed over the sessions.
      let counted: { pc: RTCPeerConnection | null; frames: number; before: number } = { pc: null, frames: 0, before: 0 };
      const p = new ReconnectingPeer({
        name: "ingest",
        first: { url: ingest.whip, token: ingest.secret },
        resolve: async () => {
          const next = await resolveLatest();
          if (!next) return null;
          if (!next.whip) throw new Error("no WHIP URL now"); // tried again
          return { url: next.whip, token: next.secret };
        },
        setup: (pc) => {
          const transceiver = pc.addTransceiver(track, {
            direction: "sendonly",
            streams: camera.current ? [camera.current] : [],
            sendEncodings: [{ maxFramerate: fps }],
          });
          applyH264Preference(transceiver, "sender");
        },
        onState: (state) => {
          if (state.kind === "open") setStats((s) => ({ ...s, reconnecting: false }));
          else if (state.kind === "down") setStats((s) => ({ ...s, reconnecting: true }));
          else if (state.kind === "ended") ended("");
          else if (state.kind === "fatal") {
            // No retry helps: the JPEG WebSocket instead, on the worker named last.
            console.warn(`ingest: WHIP failed (${state.error.status} ${state.error.code}: ${state.error.message}); sending JPEG over the WebSocket`);
            peer.current = null;
            if (wanted.current) startWebSocket(latest.websocket, fps, resolveLatest, quality, `WHIP failed: ${state.error.message}`);
          }
        },
      });
      peer.current = p;
      setStats((s) => ({ ...s, transport: "whip" }));
      timer.current = setInterval(async () => {
        const pc = p.connection;
        if (pc !== counted.pc) counted = { pc, frames: 0, before: counted.before + counted.frames };
        if (!pc || pc.connectionState !== "connected") return;
        try {
          const report = await pc.getStats();
          report.forEach((entry) => {
            if (entry.type === "outbound-rtp" && entry.kind === "video" && counted.pc === pc) counted.frames = entry.framesSent ?? 0;
          });
          counts.current.sent = counted.before + counted.frames;
        } catch {
          // closed meanwhile
        }
      }, 1000);
    },
    [stopSending, startWebSocket, ended],
  );

  // Counters reach React once a second, not once a frame.
  useEffect(() => {
    const id = setInterval(() => {
      if (wanted.current) setStats((s) => ({ ...s, ...counts.current }));
    }, 1000);
    return () => clearInterval(id);
  }, []);
  useEffect(() => stop, [stop]);

  return { camera: stream, stats, openCamera, start, stop };
}
