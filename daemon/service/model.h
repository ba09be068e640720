// The daemon's records, as the services hand them to the HTTP layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mirage::service {

constexpr int64_t kSecondsPerCredit = 600;

struct User {
  int64_t id = 0;
  std::string username, email, display_name, bio, created_at;
  int64_t balance_seconds = 0;
  bool comments_enabled = true;
  bool styles_enabled = true;
};

struct LedgerEntry {
  int64_t id = 0;
  int64_t delta_seconds = 0;
  std::string reason, created_at;
};

struct Stream {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string title, secret, started_at, style;
  std::optional<std::string> ended_at, end_reason;
  int64_t seconds_billed = 0;
  int peak_viewers = 0;
  int64_t viewer_seconds = 0;
  int unique_viewers = 0;
  std::optional<int64_t> worker_id;  // the media worker it runs on
};

// A media worker (`miraged worker`) as clients reach it.
struct MediaWorker {
  int64_t id = 0;
  std::string name;
  std::string media_url;  // http(s) base: WebSocket ingest, watch and events (ws), HLS
  std::string srt_url, rtsp_url;  // srt://host:port, rtsp://host:port; '' when it has none
  std::string srt_passphrase;
  std::vector<std::string> styles;  // what its model offers
  bool live = false;  // heartbeat within the timeout and not draining
};

struct Comment {
  int64_t id = 0;
  std::string author, body, created_at;
};

struct StyleRequest {
  int64_t id = 0;
  std::string style, requested_by, status, created_at;
  std::optional<std::string> activated_at;
};

}  // namespace mirage::service
