#include "users.h"

#include "rows.h"

namespace mirage::repo {

namespace {

// bytea parameters travel as hex text.
std::string hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out = "\\x";
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::optional<service::User> one_user(const db::Result& r) {
  if (r.rows() == 0) return std::nullopt;
  return read_user(r, 0);
}

}  // namespace

service::User insert_user(db::Connection& c, const std::string& username, const std::string& email,
                          const std::string& password_hash) {
  return read_user(c.exec("INSERT INTO users AS u (username, email, password_hash) VALUES ($1, $2, $3) "
                          "RETURNING " MIRAGE_USER_COLUMNS,
                          {username, email, password_hash}),
                   0);
}

std::optional<service::User> user_by_name(db::Connection& c, const std::string& username) {
  return one_user(c.exec("SELECT " MIRAGE_USER_COLUMNS " FROM users u WHERE lower(u.username) = lower($1)",
                         {username}));
}

std::optional<service::User> user_by_id(db::Connection& c, int64_t id) {
  return one_user(c.exec("SELECT " MIRAGE_USER_COLUMNS " FROM users u WHERE u.id = $1", {std::to_string(id)}));
}

std::optional<std::string> password_hash_of(db::Connection& c, int64_t user_id) {
  db::Result r = c.exec("SELECT password_hash FROM users WHERE id = $1", {std::to_string(user_id)});
  if (r.rows() == 0) return std::nullopt;
  return r.value(0, 0);
}

void set_password_hash(db::Connection& c, int64_t user_id, const std::string& hash) {
  c.exec("UPDATE users SET password_hash = $2 WHERE id = $1", {std::to_string(user_id), hash});
}

void update_profile(db::Connection& c, int64_t user_id, const std::optional<std::string>& display_name,
                    const std::optional<std::string>& bio) {
  c.exec("UPDATE users SET display_name = coalesce($2, display_name), bio = coalesce($3, bio) WHERE id = $1",
         {std::to_string(user_id), display_name, bio});
}

void update_settings(db::Connection& c, int64_t user_id, std::optional<bool> comments,
                     std::optional<bool> styles, const std::optional<std::string>& default_style,
                     std::optional<double> default_strength) {
  auto b = [](std::optional<bool> v) -> db::Param {
    if (!v) return std::nullopt;
    return std::string(*v ? "true" : "false");
  };
  c.exec("UPDATE users SET comments_enabled = coalesce($2::boolean, comments_enabled), "
         "styles_enabled = coalesce($3::boolean, styles_enabled), default_style = coalesce($4, default_style), "
         "default_strength = coalesce($5::float8, default_strength) WHERE id = $1",
         {std::to_string(user_id), b(comments), b(styles), default_style, optional_param(default_strength)});
}

void insert_session(db::Connection& c, const std::string& token_hash, int64_t user_id, int ttl_seconds) {
  c.exec("INSERT INTO sessions (token_hash, user_id, expires_at) "
         "VALUES ($1::bytea, $2, now() + make_interval(secs => $3))",
         {hex(token_hash), std::to_string(user_id), std::to_string(ttl_seconds)});
}

std::optional<service::User> user_by_session(db::Connection& c, const std::string& token_hash) {
  return one_user(c.exec("SELECT " MIRAGE_USER_COLUMNS " FROM sessions s JOIN users u ON u.id = s.user_id "
                         "WHERE s.token_hash = $1::bytea AND s.expires_at > now()",
                         {hex(token_hash)}));
}

void delete_session(db::Connection& c, const std::string& token_hash) {
  c.exec("DELETE FROM sessions WHERE token_hash = $1::bytea", {hex(token_hash)});
}

void delete_sessions_except(db::Connection& c, int64_t user_id, const std::string& keep_hash) {
  c.exec("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2::bytea",
         {std::to_string(user_id), hex(keep_hash)});
}

int64_t add_ledger_entry(db::Connection& c, int64_t user_id, int64_t delta_seconds, const std::string& reason) {
  c.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) VALUES ($1, $2, $3)",
         {std::to_string(user_id), std::to_string(delta_seconds), reason});
  return to_i64(c.exec("SELECT balance_seconds FROM users WHERE id = $1", {std::to_string(user_id)}).value(0, 0));
}

std::vector<service::LedgerEntry> ledger(db::Connection& c, int64_t user_id, int limit) {
  db::Result r = c.exec("SELECT id, delta_seconds, reason, " MIRAGE_TIME("created_at")
                        " FROM credit_ledger WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                        {std::to_string(user_id), std::to_string(limit)});
  std::vector<service::LedgerEntry> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({to_i64(r.value(i, 0)), to_i64(r.value(i, 1)), r.value(i, 2), r.value(i, 3)});
  return out;
}

std::pair<int, int> rate_limit_hit(db::Connection& c, const std::string& key, int window_seconds) {
  db::Result r = c.exec(
      "INSERT INTO rate_limits AS r (key, window_start, hits) VALUES ($1, now(), 1) "
      "ON CONFLICT (key) DO UPDATE SET "
      "  hits = CASE WHEN r.window_start < now() - make_interval(secs => $2) THEN 1 ELSE r.hits + 1 END, "
      "  window_start = CASE WHEN r.window_start < now() - make_interval(secs => $2) THEN now() "
      "                      ELSE r.window_start END "
      "RETURNING hits, ceil(extract(epoch FROM r.window_start + make_interval(secs => $2) - now()))::int",
      {key, std::to_string(window_seconds)});
  return {int(to_i64(r.value(0, 0))), std::max(1, int(to_i64(r.value(0, 1))))};
}

std::pair<int, int> rate_limit_peek(db::Connection& c, const std::string& key, int window_seconds) {
  db::Result r = c.exec(
      "SELECT hits, ceil(extract(epoch FROM window_start + make_interval(secs => $2) - now()))::int "
      "FROM rate_limits WHERE key = $1 AND window_start >= now() - make_interval(secs => $2)",
      {key, std::to_string(window_seconds)});
  if (r.rows() == 0) return {0, 0};
  return {int(to_i64(r.value(0, 0))), std::max(1, int(to_i64(r.value(0, 1))))};
}

int64_t purge_expired(db::Connection& c, int max_window_seconds) {
  const int64_t sessions = c.exec("DELETE FROM sessions WHERE expires_at < now() RETURNING 1").rows();
  const int64_t limits = c.exec("DELETE FROM rate_limits WHERE window_start < now() - make_interval(secs => $1) RETURNING 1",
                                {std::to_string(max_window_seconds)}).rows();
  // The outbox keeps an hour (a worker reconnecting later starts afresh);
  // runtime reports go with their stream.
  const int64_t events = c.exec("DELETE FROM channel_events WHERE created_at < now() - interval '1 hour' RETURNING 1").rows();
  const int64_t runtime = c.exec("DELETE FROM stream_runtime r USING streams s "
                                 "WHERE s.id = r.stream_id AND s.ended_at IS NOT NULL RETURNING 1").rows();
  return sessions + limits + events + runtime;
}

}  // namespace mirage::repo
