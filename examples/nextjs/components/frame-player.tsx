"use client";
// Low-latency mode: the stream's /watch/{username} WebSocket (on its media
// worker; the URL comes from the API) sends the newest processed frame as
// one JPEG message; each is drawn on a canvas. While a
// frame is being decoded only the newest arrival is kept, so a slow device
// skips frames instead of falling behind.
//
// The socket comes back by itself (lib/reconnecting-socket.ts): when it
// drops (the worker died) or is closed 4001 "moved" (the stream went to
// another worker), `resolve` re-reads the URL from the API before each
// attempt. Meanwhile the last frame stays, under "Reconnecting…", until
// frames come again. Close 1001 "stream ended", or an API that says the
// stream is not live, ends it (`onEnded`).
import { useEffect, useRef, useState } from "react";
import { media } from "@/lib/api";
import { ReconnectingSocket } from "@/lib/reconnecting-socket";
import { viewerId } from "@/lib/viewer-id";

export type PlayerStatus = "connecting" | "playing" | "reconnecting" | "ended";

export function FramePlayer({
  url,
  active,
  testId,
  preview = false,
  resolve,
  onEnded,
}: {
  url: string | null;
  active: boolean;
  testId?: string;
  preview?: boolean; // the streamer's own preview: not counted as a viewer
  /** The watch.websocket the API names now; null when the stream is not live. Without it the same URL is retried. */
  resolve?: () => Promise<string | null>;
  onEnded?: () => void;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const frames = useRef(0); // frames drawn since mounted, across reconnects (data-frames)
  const [status, setStatus] = useState<PlayerStatus>("connecting");
  const latest = useRef({ url, resolve, onEnded });
  latest.current = { url, resolve, onEnded };
  const socket = useRef<ReconnectingSocket | null>(null);
  const hasUrl = url !== null;

  useEffect(() => {
    const first = latest.current.url;
    if (!active || !first) return;
    setStatus("connecting");
    let closed = false;
    let pending: Blob | null = null;
    let drawing = false;
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
            c.dataset.frames = String(++frames.current);
            setStatus("playing");
          }
          bitmap.close();
        } catch {
          // a frame that does not decode: wait for the next
        }
      }
      drawing = false;
    };
    const address = (u: string) => (preview ? media.preview(u) : media.asViewer(u, viewerId()));
    const s = new ReconnectingSocket({
      name: preview ? "preview" : "watch",
      url: address(first),
      resolve: async () => {
        const r = latest.current.resolve;
        const next = r ? await r() : latest.current.url;
        return next && address(next);
      },
      setup: (ws) => {
        ws.binaryType = "blob";
        ws.onmessage = (message) => {
          if (!(message.data instanceof Blob)) return;
          pending = message.data;
          if (!drawing) void draw();
        };
      },
      endOf: (event) => (event.code === 1001 && event.reason === "stream ended" ? event.reason : null),
      onState: (state) => {
        if (state.kind !== "open") console.info(`${preview ? "preview" : "watch"}: ${state.kind}${state.kind === "ended" ? ` (${state.reason ?? "not live"})` : ""}`);
        // Down after it played, or before its first frame came: either way it is trying again.
        if (state.kind === "down") setStatus((s) => (s === "ended" ? s : "reconnecting"));
        else if (state.kind === "ended") {
          setStatus("ended");
          latest.current.onEnded?.();
        }
      },
    });
    socket.current = s;
    return () => {
      closed = true;
      s.close();
      socket.current = null;
    };
  }, [active, preview, hasUrl]);

  // The page re-read the stream and names another worker: go there now.
  useEffect(() => {
    if (url) socket.current?.moveTo(preview ? media.preview(url) : media.asViewer(url, viewerId()));
  }, [url, preview]);

  return (
    <div className="player">
      <canvas ref={canvas} className="screen" width={640} height={480} data-testid={testId} data-status={status} />
      {status === "reconnecting" && (
        <div className="player-status" data-testid="reconnecting" role="status">
          Reconnecting…
        </div>
      )}
    </div>
  );
}
