// The narrow interface a media worker's reconciler (reconciler.h) drives:
// the per-stream GStreamer pipelines of one host (MediaServer). The control
// plane never calls it; it writes rows and NOTIFYs (docs/architecture.md).
//
// Streams are named by their id (streams.id): a user's next stream is
// another stream, and nothing said about an ended one can reach it.
// Comment and settings events go to a channel's watch pages, which exist
// whether or not it is live, so event() takes the username.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mirage::media {

struct StreamInfo {
  int64_t id = 0;
  std::string username;
  std::string secret;  // the ingest secret publishers must present
  std::string request_id;  // of the API request that started it (log lines); "" if unknown
};

class MediaPlane {
 public:
  virtual ~MediaPlane() = default;
  // Returns at once; the pipeline is built in the background.
  virtual void stream_started(const StreamInfo& stream) = 0;
  // Returns at once; the pipeline is torn down in the background.
  virtual void stream_stopped(int64_t stream_id, const std::string& reason) = 0;
  virtual void apply_style(int64_t stream_id, const std::string& style) = 0;
  // The streamer's strength (diffusionfilter's `strength`, 0-1).
  virtual void apply_strength(int64_t stream_id, double strength) = 0;
  // The ingest secret was rotated: the old one stops working and a
  // publisher connected with it is disconnected.
  virtual void secret_changed(int64_t stream_id, const std::string& secret) {
    (void)stream_id;
    (void)secret;
  }
  // Current viewers of a live stream (WebSocket watchers plus HLS viewers).
  virtual int viewers(int64_t stream_id) = 0;
  // Distinct viewers since the stream started.
  virtual int unique_viewers(int64_t stream_id) = 0;
  // The styles the stream's model offers.
  virtual std::vector<std::string> styles() = 0;
  // The stream's processing health as a JSON object (the streamer's
  // dashboard), or "null" when there is none.
  virtual std::string health(int64_t stream_id) {
    (void)stream_id;
    return "null";
  }
  // Whether the stream's pipeline is built (a draining worker hands a stream
  // over once the new worker's is).
  virtual bool ready(int64_t stream_id) {
    (void)stream_id;
    return true;
  }
  // Seconds since the stream's pipeline here processed its first frame, or
  // nullopt before that (billing starts there).
  virtual std::optional<double> processing_seconds(int64_t stream_id) {
    (void)stream_id;
    return 0.0;
  }
  // Housekeeping, called by the daemon's ticker about once a second:
  // restarts failed pipelines (with backoff) and returns the streams that
  // must end, with the reason (ingest silent, pipeline failing).
  virtual std::vector<std::pair<int64_t, std::string>> maintain() { return {}; }
  // Streams whose pipelines run here (ended with this host at shutdown).
  virtual std::vector<int64_t> local_streams() { return {}; }
  // A JSON event for |username|'s /events watchers (comments, settings).
  virtual void event(const std::string& username, const std::string& json) {
    (void)username;
    (void)json;
  }
};

}  // namespace mirage::media
