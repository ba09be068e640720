// Why a stream ended (`end_reason` in the API, `reason` of the events
// socket's "offline" and of the publisher's close 1000), in words.
const kReasons: Record<string, string> = {
  stopped: "The streamer ended the stream.",
  credits_exhausted: "The streamer's credits ran out, so the stream ended.",
  ingest_silent: "No video came from the streamer for a while, so the stream ended.",
  pipeline_failed: "The stream's video processing kept failing, so the stream ended.",
  shutdown: "The stream's media server was shut down, so the stream ended.",
  media_worker_lost: "The stream's media server stopped answering, so the stream ended.",
  worker_lost: "The stream's media server failed and no other one had room, so the stream ended.",
  worker_drained:
    "The stream's media server was taken down for maintenance and no other one took the stream in time, so the stream ended.",
};

/** `owner`: said to the streamer (the dashboard), who pressed stop themself. */
export function endReasonText(reason: string | null | undefined, owner = false): string {
  if (!reason) return "The stream ended.";
  if (owner && reason === "stopped") return "You ended the stream.";
  return kReasons[reason] ?? `The stream ended (${reason.replace(/_/g, " ")}).`;
}
