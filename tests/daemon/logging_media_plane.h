// A MediaPlane for tests without GStreamer: logs each call and remembers
// the state, so that what a worker's reconciler did can be checked. Viewer
// counts can be set through set_viewers().
#pragma once

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "media/media_plane.h"

namespace mirage::media {

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
  void apply_strength(int64_t id, double strength) override {
    log("apply_strength " + std::to_string(id) + " " + std::to_string(strength));
    std::lock_guard<std::mutex> lock(mutex_);
    strengths_[id].push_back(strength);
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
  void secret_changed(int64_t id, const std::string& secret) override {
    std::lock_guard<std::mutex> lock(mutex_);
    secrets_[id] = secret;
  }
  void event(const std::string& username, const std::string& json) override {
    std::lock_guard<std::mutex> lock(mutex_);
    events_[username].push_back(json);
  }
  std::vector<std::string> styles() override { return styles_; }
  // Every stream processes from its start unless set_processing(false):
  // then none has processed a frame yet (billing has not started).
  std::optional<double> processing_seconds(int64_t) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return processing_ ? std::optional<double>(0.0) : std::nullopt;
  }
  void set_processing(bool processing) {
    std::lock_guard<std::mutex> lock(mutex_);
    processing_ = processing;
  }
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
  std::vector<double> strengths(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return strengths_[latest_[username]];
  }
  std::string stop_reason(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_reasons_[latest_[username]];
  }
  // The secret the reconciler passed on last ("" when none since the start).
  std::string secret(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return secrets_[latest_[username]];
  }
  // The outbox messages delivered for |username|'s /events, oldest first.
  std::vector<std::string> events(const std::string& username) {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_[username];
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
  std::map<int64_t, std::vector<double>> strengths_;
  std::map<int64_t, std::string> stop_reasons_;
  std::map<int64_t, std::string> secrets_;
  std::map<std::string, std::vector<std::string>> events_;
  bool processing_ = true;
};

}  // namespace mirage::media
