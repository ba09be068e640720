// The narrow interface the control plane needs from the media plane (the
// per-stream GStreamer pipelines, a separate issue). The daemon depends on
// this only, so pipelines can later live on separate GPU hosts.
#pragma once

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mirage::media {

class MediaPlane {
 public:
  virtual ~MediaPlane() = default;
  virtual void stream_started(const std::string& username, const std::string& secret) = 0;
  virtual void stream_stopped(const std::string& username, const std::string& reason) = 0;
  virtual void apply_style(const std::string& username, const std::string& style) = 0;
  // The stream's ingest secret was rotated: the old one stops working and
  // a publisher connected with it is disconnected.
  virtual void secret_changed(const std::string& username, const std::string& secret) {
    (void)username;
    (void)secret;
  }
  // Current viewers of a live stream (WebSocket watchers plus HLS viewers).
  virtual int viewers(const std::string& username) = 0;
  // Distinct viewers since the stream started.
  virtual int unique_viewers(const std::string& username) = 0;
  // The styles the stream's model offers.
  virtual std::vector<std::string> styles() = 0;
  // The stream's processing health as a JSON object (the streamer's
  // dashboard), or "null" when there is none.
  virtual std::string health(const std::string& username) {
    (void)username;
    return "null";
  }
  // Housekeeping, called by the daemon's ticker about once a second:
  // restarts failed pipelines (with backoff) and returns the streams that
  // must end, with the reason (ingest silent, pipeline failing).
  virtual std::vector<std::pair<std::string, std::string>> maintain() { return {}; }
  // Streams whose pipelines run here (ended with this host at shutdown).
  virtual std::vector<std::string> local_streams() { return {}; }
  // A JSON event for the stream's /events watchers (comments, for one).
  virtual void event(const std::string& username, const std::string& json) {
    (void)username;
    (void)json;
  }
};

// Until the media plane exists: logs each call and remembers the state, so
// the daemon's behaviour is fully testable. Viewer counts can be set by
// tests through set_viewers().
class LoggingMediaPlane : public MediaPlane {
 public:
  explicit LoggingMediaPlane(std::vector<std::string> styles, bool quiet = false)
      : styles_(std::move(styles)), quiet_(quiet) {}

  void stream_started(const std::string& username, const std::string&) override {
    log("stream_started " + username);
    std::lock_guard<std::mutex> lock(mutex_);
    live_[username] = true;
  }
  void stream_stopped(const std::string& username, const std::string& reason) override {
    log("stream_stopped " + username + " (" + reason + ")");
    std::lock_guard<std::mutex> lock(mutex_);
    live_[username] = false;
    stop_reasons_[username] = reason;
  }
  void apply_style(const std::string& username, const std::string& style) override {
    log("apply_style " + username + " " + style);
    std::lock_guard<std::mutex> lock(mutex_);
    applied_[username].push_back(style);
  }
  int viewers(const std::string& username) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = viewers_.find(username);
    return it == viewers_.end() ? 0 : it->second;
  }
  int unique_viewers(const std::string& username) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = unique_.find(username);
    return it == unique_.end() ? 0 : it->second;
  }
  std::vector<std::string> styles() override { return styles_; }

  void set_viewers(const std::string& username, int now, int unique) {
    std::lock_guard<std::mutex> lock(mutex_);
    viewers_[username] = now;
    unique_[username] = unique;
  }
  std::vector<std::string> applied(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return applied_[username];
  }
  std::string stop_reason(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_reasons_[username];
  }

 private:
  void log(const std::string& line) {
    if (!quiet_) std::fprintf(stderr, "media: %s\n", line.c_str());
  }
  const std::vector<std::string> styles_;
  const bool quiet_;
  std::mutex mutex_;  // guards the maps
  std::map<std::string, bool> live_;
  std::map<std::string, int> viewers_;
  std::map<std::string, int> unique_;
  std::map<std::string, std::vector<std::string>> applied_;
  std::map<std::string, std::string> stop_reasons_;
};

}  // namespace mirage::media
