"use client";
import { useEffect, useRef } from "react";

/** Shows the camera (a MediaStream the live state holds) in a muted <video>; black without one. */
export function CameraView({ stream }: { stream: MediaStream | null }) {
  const video = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const v = video.current;
    if (!v) return;
    v.srcObject = stream;
    if (stream) void v.play().catch(() => {});
  }, [stream]);
  return <video ref={video} className="screen" muted playsInline data-testid="camera" />;
}
