"use client";
// Low-latency mode: the stream's /watch/{username} WebSocket (on its media
// worker; the URL comes from the API) sends the newest processed frame as
// one JPEG message; each is drawn on a canvas. While a
// frame is being decoded only the newest arrival is kept, so a slow device
// skips frames instead of falling behind.
import { useEffect, useRef } from "react";
import { media } from "@/lib/api";

export function FramePlayer({
  url,
  active,
  testId,
  preview = false,
}: {
  url: string | null;
  active: boolean;
  testId?: string;
  preview?: boolean; // the streamer's own preview: not counted as a viewer
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!active || !url) return;
    let socket: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    let pending: Blob | null = null;
    let drawing = false;
    let frames = 0;
    const draw = async () => {
      drawing = true;
      while (pending && !closed) {
        const blob = pending;
        pending = null;
        try {
          const bitmap = await createImageBitmap(blob);
          const c = canvas.current;
          if (c && !closed) {
            if (c.width !== bitmap.width || c.height !== bitmap.height) {
              c.width = bitmap.width;
              c.height = bitmap.height;
            }
            c.getContext("2d")?.drawImage(bitmap, 0, 0);
            c.dataset.frames = String(++frames);
          }
          bitmap.close();
        } catch {
          // a frame that does not decode: wait for the next
        }
      }
      drawing = false;
    };
    const connect = () => {
      socket = new WebSocket(preview ? media.preview(url) : url);
      socket.binaryType = "blob";
      socket.onmessage = (message) => {
        if (!(message.data instanceof Blob)) return;
        pending = message.data;
        if (!drawing) void draw();
      };
      // "not live" yet, or the connection dropped: try again while wanted.
      socket.onclose = () => {
        if (!closed) retry = setTimeout(connect, 1000);
      };
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(retry);
      socket?.close();
    };
  }, [url, active, preview]);
  return <canvas ref={canvas} className="screen" width={640} height={480} data-testid={testId} />;
}
