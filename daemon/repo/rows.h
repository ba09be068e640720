// Reading records out of query results. The column lists in the repo files
// and these readers go together.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "connection.h"
#include "service/model.h"

namespace mirage::repo {

inline int64_t to_i64(const std::string& s) { return std::stoll(s); }
inline bool to_bool(const std::string& s) { return s == "t"; }
// A double as a query parameter, without std::to_string's rounding to 6 places.
inline std::string to_param(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
inline db::Param optional_param(const std::optional<double>& v) {
  return v ? db::Param(to_param(*v)) : db::Param(std::nullopt);
}

#define MIRAGE_USER_COLUMNS                                                                   \
  "u.id, u.username, u.email, u.display_name, u.bio, u.balance_seconds, u.comments_enabled, " \
  "u.styles_enabled, to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " \
  "u.default_style, u.default_strength"

inline service::User read_user(const db::Result& r, int row, int c = 0) {
  service::User u;
  u.id = to_i64(r.value(row, c));
  u.username = r.value(row, c + 1);
  u.email = r.value(row, c + 2);
  u.display_name = r.value(row, c + 3);
  u.bio = r.value(row, c + 4);
  u.balance_seconds = to_i64(r.value(row, c + 5));
  u.comments_enabled = to_bool(r.value(row, c + 6));
  u.styles_enabled = to_bool(r.value(row, c + 7));
  u.created_at = r.value(row, c + 8);
  u.default_style = r.value(row, c + 9);
  u.default_strength = std::stod(r.value(row, c + 10));
  return u;
}

#define MIRAGE_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define MIRAGE_STREAM_COLUMNS                                                              \
  "s.id, s.user_id, s.title, s.secret, " MIRAGE_TIME("s.started_at") ", s.style, " \
  MIRAGE_TIME("s.ended_at") ", s.end_reason, s.seconds_billed, s.peak_viewers, s.viewer_seconds, s.unique_viewers, " \
  "s.worker_id, s.streamer_style, s.strength"

inline service::Stream read_stream(const db::Result& r, int row, int c = 0) {
  service::Stream s;
  s.id = to_i64(r.value(row, c));
  s.user_id = to_i64(r.value(row, c + 1));
  s.title = r.value(row, c + 2);
  s.secret = r.value(row, c + 3);
  s.started_at = r.value(row, c + 4);
  s.style = r.value(row, c + 5);
  s.ended_at = r.get(row, c + 6);
  s.end_reason = r.get(row, c + 7);
  s.seconds_billed = to_i64(r.value(row, c + 8));
  s.peak_viewers = int(to_i64(r.value(row, c + 9)));
  s.viewer_seconds = to_i64(r.value(row, c + 10));
  s.unique_viewers = int(to_i64(r.value(row, c + 11)));
  if (auto w = r.get(row, c + 12)) s.worker_id = to_i64(*w);
  s.streamer_style = r.value(row, c + 13);
  s.strength = std::stod(r.value(row, c + 14));
  return s;
}

}  // namespace mirage::repo
