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
  // The streamer's choice for their next stream ('' = no style).
  std::string default_style;
  double default_strength = 0.8;
};

struct LedgerEntry {
  int64_t id = 0;
  int64_t delta_seconds = 0;
  std::string reason, created_at;
};

struct Stream {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string title, secret, started_at;
  std::string style;           // the effective one: the active viewer request's, else streamer_style
  std::string streamer_style;  // the streamer's own ('' = none)
  double strength = 0.8;       // the streamer's (diffusionfilter's `strength`)
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
  std::optional<int64_t> stream_id;  // null for comments older than per-stream chat
};

struct StyleRequest {
  int64_t id = 0;
  std::string style, requested_by, status, created_at;
  std::optional<std::string> activated_at;
  std::optional<std::string> ends_at;  // the active one: when its time is up
  int64_t seconds_left = 0;            // the active one: until ends_at, >= 0
};

// A live stream's style requests (the active one first, then the queue in
// order) and the rules viewers are told.
struct StyleQueue {
  std::vector<StyleRequest> requests;
  int style_seconds = 0;     // how long a request stays applied
  int cooldown_seconds = 0;  // per viewer, between two requests
};

}  // namespace mirage::service
