"use client";
// Going live from the browser: the camera (getUserMedia) plays in a <video>,
// a timer draws it on a canvas at the chosen rate and sends each frame as
// one binary JPEG message over the stream's WebSocket ingest
// (docs/media.md). A frame is skipped, not queued, while the previous one is
// still being encoded or the socket has not sent what it holds, so a slow
// uplink lowers the rate instead of adding delay.
//
// The ingest socket comes back by itself (lib/reconnecting-socket.ts): when
// it drops (the stream's worker died) or is closed 4001 "moved" (the stream
// went to another worker), `resolve` re-reads ingest.websocket from the API
// before each attempt, with backoff. A close 1000 with a reason is the
// stream's end (stopped, credits_exhausted, worker_lost, ...): sending stops
// and `ended` says why; so does an API that says the stream is not live
// (`ended` is then "", the reason being in the stream's history).
import { useCallback, useEffect, useRef, useState } from "react";
import { ReconnectingSocket } from "./reconnecting-socket";

export type IngestStats = {
  sending: boolean;
  sent: number;
  skipped: number;
  /** The socket dropped while the stream is live: a new one is being sought. */
  reconnecting: boolean;
  /** Set once the stream ended under the socket: its reason ("" when only the API said so). */
  ended: string | null;
};

const kMaxBuffered = 512 * 1024; // bytes waiting in the socket: a few frames
const kMaxWidth = 640; // the media plane scales to its own size anyway
const kIdle: IngestStats = { sending: false, sent: 0, skipped: 0, reconnecting: false, ended: null };

export function useCameraIngest() {
  const video = useRef<HTMLVideoElement>(null);
  const camera = useRef<MediaStream | null>(null);
  const socket = useRef<ReconnectingSocket | null>(null);
  const timer = useRef<ReturnType<typeof setInterval> | undefined>(undefined);
  const counts = useRef({ sent: 0, skipped: 0 });
  const wanted = useRef(false);
  const [stats, setStats] = useState<IngestStats>(kIdle);
  const [hasCamera, setHasCamera] = useState(false);

  const openCamera = useCallback(async () => {
    if (camera.current) return;
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    camera.current = stream;
    if (video.current) {
      video.current.srcObject = stream;
      await video.current.play().catch(() => {});
    }
    setHasCamera(true);
  }, []);

  const stopSending = useCallback(() => {
    wanted.current = false;
    clearInterval(timer.current);
    socket.current?.close();
    socket.current = null;
  }, []);

  const stop = useCallback(() => {
    stopSending();
    camera.current?.getTracks().forEach((t) => t.stop());
    camera.current = null;
    if (video.current) video.current.srcObject = null;
    setHasCamera(false);
    setStats((s) => ({ ...s, sending: false, reconnecting: false }));
  }, [stopSending]);

  /** Sends the camera to |url| (ingest.websocket); `resolve` names the URL to use after a drop (null: not live). */
  const start = useCallback(
    (url: string, fps: number, resolve: () => Promise<string | null>, quality = 0.8) => {
      stopSending();
      wanted.current = true;
      counts.current = { sent: 0, skipped: 0 };
      const canvas = document.createElement("canvas");
      const context = canvas.getContext("2d");
      let encoding = false;
      const ended = (reason: string) => {
        stopSending();
        setStats((s) => ({ ...s, ...counts.current, sending: false, reconnecting: false, ended: reason }));
      };
      socket.current = new ReconnectingSocket({
        name: "ingest",
        url,
        resolve,
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
      setStats({ ...kIdle, sending: true });
    },
    [stopSending],
  );

  // Counters reach React once a second, not once a frame.
  useEffect(() => {
    const id = setInterval(() => {
      if (wanted.current) setStats((s) => ({ ...s, ...counts.current }));
    }, 1000);
    return () => clearInterval(id);
  }, []);
  useEffect(() => stop, [stop]);

  return { video, hasCamera, stats, openCamera, start, stop };
}
