"use client";
// A channel's /events/{username} WebSocket (|url|, from the API's
// watch.events: the live stream's worker, or any worker while offline):
// live, offline, style, viewers, comment, comment_deleted, settings and
// moved messages. Reconnects while mounted (lib/reconnecting-socket.ts):
// after a drop (the worker died) or a {"type":"moved"} (the stream went to
// another worker) it re-reads the URL through `resolve` before each attempt;
// a new |url| (the page re-read the channel) is followed at once.
import { useEffect, useRef } from "react";
import { type StreamEvent } from "./api";
import { ReconnectingSocket } from "./reconnecting-socket";

export function useStreamEvents(
  url: string | null | undefined,
  onEvent: (event: StreamEvent) => void,
  /** The watch.events the API names now (null: no worker is live; tried again). Without it the same URL is retried. */
  resolve?: () => Promise<string | null>,
) {
  const latest = useRef({ url, onEvent, resolve });
  latest.current = { url, onEvent, resolve };
  const socket = useRef<ReconnectingSocket | null>(null);
  const hasUrl = !!url;
  useEffect(() => {
    const first = latest.current.url;
    if (!first) return;
    const s = new ReconnectingSocket({
      name: "events",
      url: first,
      resolve: async () => {
        const r = latest.current.resolve;
        const next = r ? await r() : latest.current.url;
        // Events are wanted while the page is open, live or not: no URL
        // now (no worker is live) is one more failed attempt.
        if (!next) throw new Error("no events URL");
        return next;
      },
      setup: (ws) => {
        ws.onmessage = (message) => {
          if (typeof message.data !== "string") return;
          let event: StreamEvent;
          try {
            event = JSON.parse(message.data) as StreamEvent;
          } catch {
            return; // not JSON: ignore
          }
          latest.current.onEvent(event);
          // The stream left this worker: this socket's channel lives elsewhere now.
          if (event.type === "moved") s.reconnect();
        };
      },
    });
    socket.current = s;
    return () => {
      s.close();
      socket.current = null;
    };
  }, [hasUrl]);

  useEffect(() => {
    if (url) socket.current?.moveTo(url);
  }, [url]);
}
