"use client";
// Publishing without the web app's camera: every ingest URL of the live
// stream (each carries the stream key, docs/api.md), copy buttons, the key
// itself, rotating it, and a short recipe for OBS and gst-launch.
import { CopyField } from "@/components/copy-field";
import type { Ingest } from "@/lib/api";

export function IngestUrls({ ingest, onRotate, busy }: { ingest: Ingest; onRotate: () => void; busy: boolean }) {
  const srt = ingest.srt ?? null;
  return (
    <section className="card" data-testid="obs-settings">
      <h2>Stream from OBS or gst-launch</h2>
      <p className="muted">
        Every URL below carries your stream key: anyone who has one can publish on your channel. Keep them off screen, and
        rotate the key if one leaks (whoever publishes with the old key is disconnected; this page&apos;s camera reconnects
        by itself).
      </p>
      <div className="stack-wide">
        <CopyField label="Stream key" value={ingest.secret} secret testId="ingest-key" />
        {ingest.whip && <CopyField label="WHIP URL" value={ingest.whip} testId="whip-url" />}
        {ingest.whip && <CopyField label="Bearer Token" value={ingest.secret} secret testId="whip-token" />}
        {srt && <CopyField label="SRT" value={srt} secret testId="ingest-srt" />}
        {ingest.rtsp && <CopyField label="RTSP" value={ingest.rtsp} secret testId="ingest-rtsp" />}
        <CopyField label="WebSocket (JPEG)" value={ingest.websocket} secret testId="ingest-websocket" />
      </div>
      <p>
        <button onClick={onRotate} disabled={busy} data-testid="rotate-key">
          Rotate key
        </button>
      </p>
      <details open>
        <summary>How to set up OBS</summary>
        <ol>
          <li>
            OBS 30 or newer: Settings → Stream → Service <b>WHIP</b>; Server = the WHIP URL, Bearer Token = the stream key.
          </li>
          <li>Settings → Output: x264 or any H.264 encoder, keyframe interval 1–2 s, no B-frames (profile baseline).</li>
          <li>
            Start Streaming in OBS. Stop this page&apos;s camera first if it is on: a stream takes one publisher at a time.
          </li>
          {srt && <li>Or over SRT (OBS: Service Custom, Server = the SRT URL, no key).</li>}
        </ol>
      </details>
      {srt && (
        <details>
          <summary>With gst-launch</summary>
          <pre className="code" data-testid="gst-recipe">
            {`gst-launch-1.0 -e videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=15/1 \\
  ! x264enc tune=zerolatency key-int-max=15 ! mpegtsmux ! srtsink uri="${srt}"`}
          </pre>
        </details>
      )}
    </section>
  );
}
