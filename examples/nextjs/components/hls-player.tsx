"use client";
// HLS playback: hls.js where Media Source Extensions exist (every desktop
// browser), the browser's own HLS otherwise (iOS Safari). The playlist
// appears a second or two after a stream starts, so a fatal error (404)
// retries until the component is told the stream is over.
import { useEffect, useRef } from "react";
import { media } from "@/lib/api";

function viewerId(): string {
  // Tells the media server this tab is one viewer (docs/media.md, `?viewer=`).
  let id = sessionStorage.getItem("mirage-viewer");
  if (!id) {
    id = Math.random().toString(36).slice(2) + Date.now().toString(36);
    sessionStorage.setItem("mirage-viewer", id);
  }
  return id;
}

// |url|: the stream's playlist on its media worker (the API's watch.hls),
// fetched cross-origin (the worker allows any origin for HLS).
export function HlsPlayer({ url, active }: { url: string | null; active: boolean }) {
  const video = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const element = video.current;
    if (!active || !element || !url) return;
    const source = media.hlsPlaylist(url, viewerId());
    let cancelled = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let destroy = () => {};
    const start = async () => {
      const { default: Hls } = await import("hls.js");
      if (cancelled) return;
      if (Hls.isSupported()) {
        const hls = new Hls({ liveSyncDurationCount: 2, liveMaxLatencyDurationCount: 5 });
        destroy = () => hls.destroy();
        hls.on(Hls.Events.ERROR, (_event, data) => {
          if (!data.fatal) return;
          hls.destroy();
          if (!cancelled) retry = setTimeout(start, 2000);
        });
        hls.on(Hls.Events.MANIFEST_PARSED, () => void element.play().catch(() => {}));
        hls.loadSource(source);
        hls.attachMedia(element);
      } else if (element.canPlayType("application/vnd.apple.mpegurl")) {
        element.src = source;
        element.onerror = () => {
          if (!cancelled) retry = setTimeout(() => element.load(), 2000);
        };
        destroy = () => {
          element.onerror = null;
          element.removeAttribute("src");
          element.load();
        };
        void element.play().catch(() => {});
      }
    };
    void start();
    return () => {
      cancelled = true;
      clearTimeout(retry);
      destroy();
    };
  }, [url, active]);
  return <video ref={video} className="screen" muted playsInline autoPlay controls data-testid="hls-video" />;
}
