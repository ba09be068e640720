// Test clients of a live stream that behave as the web app and
// examples/python do (cluster tests and failover-bench).
#pragma once

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process_cluster.h"

namespace mirage::test {

using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A publisher and a viewer of |user|'s stream that behave as the web app
// and examples/python do: when a socket drops or is closed "moved" (4001)
// they re-read their URL from the API (either replica: one may be down) and
// reconnect, with backoff (0.25 s doubling, at most 2 s). pump() runs them
// for a while: the publisher sends a frame every 66 ms; each processed frame
// the viewer gets is stamped with its arrival.
class LiveClients {
 public:
  LiveClients(ProcessCluster& cluster, std::string user, std::string token)
      : cluster_(cluster), user_(std::move(user)), token_(std::move(token)), frames_(jpeg_frames(10, "ball", 160, 120)) {}

  void pump(int ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < end) {
      const auto now = Clock::now();
      if (ingest_ && ingest_->open()) {
        ingest_->send(frames_[sent_++ % frames_.size()]);
      } else if (now >= ingest_retry_) {
        if (ingest_) note_close("publisher", *ingest_);
        ingest_.reset();
        const std::string url = url_of("/api/me/dashboard", "ingest", "websocket");
        if (!url.empty()) ingest_ = std::make_unique<WsClient>(url);
        ingest_backoff_ = ingest_ && ingest_->open() ? 0.25 : std::min(2.0, ingest_backoff_ * 2);
        if (ingest_ && ingest_->open()) ingest_url_ = url, ++ingest_connects_;
        ingest_retry_ = now + std::chrono::milliseconds(int(ingest_backoff_ * 1000));
      }
      if (viewer_ && viewer_->open()) {
        for (size_t n = viewer_->binary().size(); seen_ < n; ++seen_) arrivals_.push_back({Clock::now(), viewer_connects_});
      } else if (now >= viewer_retry_) {
        if (viewer_) note_close("viewer", *viewer_);
        viewer_.reset();
        seen_ = 0;
        const std::string url = url_of("/api/streams/" + user_, "watch", "websocket");
        if (!url.empty()) viewer_ = std::make_unique<WsClient>(url);
        viewer_backoff_ = viewer_ && viewer_->open() ? 0.25 : std::min(2.0, viewer_backoff_ * 2);
        if (viewer_ && viewer_->open()) viewer_url_ = url, ++viewer_connects_;
        viewer_retry_ = now + std::chrono::milliseconds(int(viewer_backoff_ * 1000));
      }
      WsClient::spin([] { return false; }, 66);
    }
  }
  // Pumps until |done| or |ms|.
  bool pump_until(const std::function<bool()>& done, int ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (!done() && Clock::now() < end) pump(100);
    return done();
  }
  size_t frames() const { return arrivals_.size(); }
  // Frames that arrived after |t|.
  size_t frames_after(Clock::time_point t) const {
    return size_t(std::count_if(arrivals_.begin(), arrivals_.end(), [&](const Arrival& a) { return a.at > t; }));
  }
  // Frames the viewer got on its |connection|th connection or a later one,
  // and the first of them.
  size_t frames_on(int connection) const {
    return size_t(std::count_if(arrivals_.begin(), arrivals_.end(), [&](const Arrival& a) { return a.connection >= connection; }));
  }
  std::optional<Clock::time_point> first_frame_on(int connection) const {
    for (const auto& a : arrivals_)
      if (a.connection >= connection) return a.at;
    return std::nullopt;
  }
  // The longest wait between two frames the viewer got after |t|.
  double longest_gap_after(Clock::time_point t) const {
    double gap = 0;
    for (size_t i = 1; i < arrivals_.size(); ++i)
      if (arrivals_[i].at > t) gap = std::max(gap, std::chrono::duration<double>(arrivals_[i].at - arrivals_[i - 1].at).count());
    return gap;
  }
  const std::string& viewer_url() const { return viewer_url_; }
  const std::string& ingest_url() const { return ingest_url_; }
  int viewer_connects() const { return viewer_connects_; }
  int ingest_connects() const { return ingest_connects_; }
  const std::vector<std::string>& closes() const { return closes_; }

 private:
  std::string url_of(const std::string& path, const char* object, const char* field) {
    for (int replica = 0; replica < cluster_.replicas(); ++replica) {
      auto r = cluster_.call(replica, "GET", path, "", token_);
      if (r.status != 200) continue;
      rapidjson::Document d;
      d.Parse(r.body.c_str());
      if (d.HasMember(object) && d[object].IsObject() && d[object].HasMember(field) && d[object][field].IsString())
        return d[object][field].GetString();
      return "";
    }
    return "";
  }
  void note_close(const char* who, const WsClient& ws) {
    closes_.push_back(std::string(who) + " " + std::to_string(ws.close_code()) + " " + ws.close_data());
  }

  ProcessCluster& cluster_;
  const std::string user_, token_;
  const std::vector<std::string> frames_;
  std::unique_ptr<WsClient> ingest_, viewer_;
  size_t sent_ = 0, seen_ = 0;
  double ingest_backoff_ = 0.125, viewer_backoff_ = 0.125;
  Clock::time_point ingest_retry_{}, viewer_retry_{};
  std::string ingest_url_, viewer_url_;
  int ingest_connects_ = 0, viewer_connects_ = 0;
  struct Arrival {
    Clock::time_point at;
    int connection;  // the viewer's connection it came on, from 1
  };
  std::vector<Arrival> arrivals_;
  std::vector<std::string> closes_;
};

}  // namespace mirage::test
