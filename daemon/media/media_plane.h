// The narrow interface the control plane needs from the media plane (the
// per-stream GStreamer pipelines). The daemon depends on this only, so
// pipelines can later live on separate GPU hosts.
//
// Streams are named by their id (streams.id): a user's next stream is
// another stream, and nothing said about an ended one can reach it.
// Comment and settings events go to a channel's watch pages, which exist
// whether or not it is live, so event() takes the username.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mirage::media {

struct StreamInfo {
  int64_t id = 0;
  std::string username;
  std::string secret;  // the ingest secret publishers must present
};

class MediaPlane {
 public:
  virtual ~MediaPlane() = default;
  // Returns at once; the pipeline is built in the background.
  virtual void stream_started(const StreamInfo& stream) = 0;
  // Returns at once; the pipeline is torn down in the background.
  virtual void stream_stopped(int64_t stream_id, const std::string& reason) = 0;
  virtual void apply_style(int64_t stream_id, const std::string& style) = 0;
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

// Without a model (API only, and the API tests): logs each call and
// remembers the state, so the daemon's behaviour is fully testable. Viewer
// counts can be set by tests through set_viewers().
class LoggingMediaPlane : public MediaPlane {
 public:
  explicit LoggingMediaPlane(std::vector<std::string> styles, bool quiet = false)
      : styles_(std::move(styles)), quiet_(quiet) {}

  void stream_started(const StreamInfo& s) override {
    log("stream_started " + s.username + " (stream " + std::to_string(s.id) + ")");
    std::lock_guard<std::mutex> lock(mutex_);
    users_[s.id] = s.username;
    latest_[s.username] = s.id;
    live_[s.id] = true;
  }
  void stream_stopped(int64_t id, const std::string& reason) override {
    log("stream_stopped " + std::to_string(id) + " (" + reason + ")");
    std::lock_guard<std::mutex> lock(mutex_);
    live_[id] = false;
    stop_reasons_[id] = reason;
  }
  void apply_style(int64_t id, const std::string& style) override {
    log("apply_style " + std::to_string(id) + " " + style);
    std::lock_guard<std::mutex> lock(mutex_);
    applied_[id].push_back(style);
  }
  int viewers(int64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = viewers_.find(id);
    return it == viewers_.end() ? 0 : it->second;
  }
  int unique_viewers(int64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = unique_.find(id);
    return it == unique_.end() ? 0 : it->second;
  }
  std::vector<std::string> styles() override { return styles_; }
  std::vector<int64_t> local_streams() override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<int64_t> ids;
    for (const auto& [id, live] : live_)
      if (live) ids.push_back(id);
    return ids;
  }

  // Tests name streams by their user: the user's latest stream.
  void set_viewers(const std::string& username, int now, int unique) {
    std::lock_guard<std::mutex> lock(mutex_);
    viewers_[latest_[username]] = now;
    unique_[latest_[username]] = unique;
  }
  std::vector<std::string> applied(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return applied_[latest_[username]];
  }
  std::string stop_reason(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_reasons_[latest_[username]];
  }
  bool live(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_[latest_[username]];
  }

 private:
  void log(const std::string& line) {
    if (!quiet_) std::fprintf(stderr, "media: %s\n", line.c_str());
  }
  const std::vector<std::string> styles_;
  const bool quiet_;
  std::mutex mutex_;  // guards the maps
  std::map<int64_t, std::string> users_;
  std::map<std::string, int64_t> latest_;
  std::map<int64_t, bool> live_;
  std::map<int64_t, int> viewers_;
  std::map<int64_t, int> unique_;
  std::map<int64_t, std::vector<std::string>> applied_;
  std::map<int64_t, std::string> stop_reasons_;
};

}  // namespace mirage::media
