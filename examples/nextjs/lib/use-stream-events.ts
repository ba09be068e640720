"use client";
// The /events/{username} WebSocket: live, offline, style, viewers and
// comment messages. Reconnects while mounted (the daemon may restart).
import { useEffect, useRef } from "react";
import { media, type StreamEvent } from "./api";

export function useStreamEvents(username: string | undefined, onEvent: (event: StreamEvent) => void) {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (!username) return;
    let socket: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const connect = () => {
      socket = new WebSocket(media.eventsSocket(username));
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
  }, [username]);
}
