"use client";
// Going live from the browser: the camera (getUserMedia) plays in a <video>,
// a timer draws it on a canvas at the chosen rate and sends each frame as
// one binary JPEG message over the stream's WebSocket ingest
// (docs/media.md). A frame is skipped, not queued, while the previous one is
// still being encoded or the socket has not sent what it holds, so a slow
// uplink lowers the rate instead of adding delay.
import { useCallback, useEffect, useRef, useState } from "react";

export type IngestStats = { sending: boolean; sent: number; skipped: number; error: string };

const kMaxBuffered = 512 * 1024; // bytes waiting in the socket: a few frames
const kMaxWidth = 640; // the media plane scales to its own size anyway

export function useCameraIngest() {
  const video = useRef<HTMLVideoElement>(null);
  const camera = useRef<MediaStream | null>(null);
  const socket = useRef<WebSocket | null>(null);
  const timer = useRef<ReturnType<typeof setInterval> | undefined>(undefined);
  const retry = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const counts = useRef({ sent: 0, skipped: 0 });
  const wanted = useRef(false);
  const [stats, setStats] = useState<IngestStats>({ sending: false, sent: 0, skipped: 0, error: "" });
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

  const stop = useCallback(() => {
    wanted.current = false;
    clearInterval(timer.current);
    clearTimeout(retry.current);
    socket.current?.close();
    socket.current = null;
    camera.current?.getTracks().forEach((t) => t.stop());
    camera.current = null;
    if (video.current) video.current.srcObject = null;
    setHasCamera(false);
    setStats((s) => ({ ...s, sending: false }));
  }, []);

  const start = useCallback((url: string, fps: number, quality = 0.8) => {
    wanted.current = true;
    counts.current = { sent: 0, skipped: 0 };
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d");
    let encoding = false;
    const connect = () => {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      ws.onclose = (event) => {
        if (socket.current !== ws) return;
        socket.current = null;
        // The daemon closes with a reason when it ends the stream (credits
        // exhausted); a dropped connection is retried while still live.
        if (event.reason) setStats((s) => ({ ...s, error: event.reason }));
        if (wanted.current) retry.current = setTimeout(connect, 1000);
      };
      socket.current = ws;
    };
    connect();
    clearInterval(timer.current);
    timer.current = setInterval(() => {
      const ws = socket.current;
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
    setStats({ sending: true, sent: 0, skipped: 0, error: "" });
  }, []);

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
