"use client";
// A channel's /events/{username} WebSocket (|url|, from the API's
// watch.events: the live stream's worker, or any worker while offline):
// live, offline, style, viewers, comment, comment_deleted and settings
// messages. Reconnects while mounted (a worker may restart); a new URL (the
// stream went live on another worker) reconnects there.
import { useEffect, useRef } from "react";
import { type StreamEvent } from "./api";

export function useStreamEvents(url: string | null | undefined, onEvent: (event: StreamEvent) => void) {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (!url) return;
    let socket: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const connect = () => {
      socket = new WebSocket(url);
      socket.onmessage = (message) => {
        if (typeof message.data !== "string") return;
        try {
          handler.current(JSON.parse(message.data) as StreamEvent);
        } catch {
          // not JSON: ignore
        }
      };
      socket.onclose = () => {
        if (!closed) retry = setTimeout(connect, 2000);
      };
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(retry);
      socket?.close();
    };
  }, [url]);
}
