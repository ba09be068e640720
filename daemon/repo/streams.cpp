#include "streams.h"

#include "rows.h"

namespace mirage::repo {

service::Stream insert_stream(db::Connection& c, int64_t user_id, const std::string& title,
                              const std::string& secret, const std::optional<std::string>& media_host) {
  return read_stream(c.exec("INSERT INTO streams AS s (user_id, title, secret, media_host) VALUES ($1, $2, $3, $4) "
                            "RETURNING " MIRAGE_STREAM_COLUMNS,
                            {std::to_string(user_id), title, secret, media_host}),
                     0);
}

std::optional<service::Stream> stream_by_id(db::Connection& c, int64_t stream_id) {
  db::Result r = c.exec("SELECT " MIRAGE_STREAM_COLUMNS " FROM streams s WHERE s.id = $1", {std::to_string(stream_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_stream(r, 0);
}

std::vector<HostedStream> take_back_streams(db::Connection& c, const std::string& host) {
  db::Result r = c.exec(
      "UPDATE streams s SET billed_until = greatest(s.billed_until, now()) FROM users u "
      "WHERE u.id = s.user_id AND s.ended_at IS NULL AND (s.media_host = $1 OR s.media_host IS NULL) "
      "RETURNING s.id, u.username, s.secret",
      {host});
  std::vector<HostedStream> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({to_i64(r.value(i, 0)), r.value(i, 1), r.value(i, 2)});
  return out;
}

std::optional<service::Stream> live_stream(db::Connection& c, int64_t user_id) {
  db::Result r = c.exec("SELECT " MIRAGE_STREAM_COLUMNS " FROM streams s WHERE s.user_id = $1 AND s.ended_at IS NULL",
                        {std::to_string(user_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_stream(r, 0);
}

std::vector<std::pair<int64_t, std::string>> live_streams(db::Connection& c) {
  db::Result r = c.exec("SELECT s.id, u.username FROM streams s JOIN users u ON u.id = s.user_id "
                        "WHERE s.ended_at IS NULL ORDER BY s.id");
  std::vector<std::pair<int64_t, std::string>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(to_i64(r.value(i, 0)), r.value(i, 1));
  return out;
}

std::optional<std::string> live_secret(db::Connection& c, const std::string& username) {
  db::Result r = c.exec("SELECT s.secret FROM streams s JOIN users u ON u.id = s.user_id "
                        "WHERE u.username = $1 AND s.ended_at IS NULL",
                        {username});
  if (r.rows() == 0) return std::nullopt;
  return r.value(0, 0);
}

std::vector<service::Stream> streams_of(db::Connection& c, int64_t user_id, int limit) {
  db::Result r = c.exec("SELECT " MIRAGE_STREAM_COLUMNS " FROM streams s WHERE s.user_id = $1 "
                        "ORDER BY s.id DESC LIMIT $2",
                        {std::to_string(user_id), std::to_string(limit)});
  std::vector<service::Stream> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_stream(r, i));
  return out;
}

MeterResult meter_stream(db::Connection& c, int64_t stream_id, int viewers, int unique_viewers,
                         const std::optional<std::string>& end_reason) {
  MeterResult m;
  db::Transaction tx(c);
  db::Result r = c.exec(
      "SELECT s.user_id, s.ended_at IS NULL, "
      "       greatest(0, floor(extract(epoch FROM now() - s.billed_until)))::bigint, u.balance_seconds "
      "FROM streams s JOIN users u ON u.id = s.user_id WHERE s.id = $1 FOR UPDATE OF s, u",
      {std::to_string(stream_id)});
  if (r.rows() == 0 || !to_bool(r.value(0, 1))) return m;
  m.live = true;
  m.user_id = to_i64(r.value(0, 0));
  const int64_t elapsed = to_i64(r.value(0, 2));
  const int64_t balance = to_i64(r.value(0, 3));
  m.charged = std::min(elapsed, balance);
  m.exhausted = elapsed >= balance;
  if (m.charged > 0)
    c.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) VALUES ($1, $2, $3)",
           {std::to_string(m.user_id), std::to_string(-m.charged), "stream " + std::to_string(stream_id)});
  const std::optional<std::string> reason = m.exhausted ? std::optional<std::string>("credits_exhausted") : end_reason;
  c.exec("UPDATE streams SET billed_until = billed_until + make_interval(secs => $2), "
         "  seconds_billed = seconds_billed + $2, peak_viewers = greatest(peak_viewers, $3), "
         "  viewer_seconds = viewer_seconds + $3::bigint * $2, "
         "  unique_viewers = greatest(unique_viewers, $5), "
         "  ended_at = CASE WHEN $4::text IS NULL THEN NULL ELSE now() END, end_reason = $4 "
         "WHERE id = $1",
         {std::to_string(stream_id), std::to_string(m.charged), std::to_string(viewers), reason,
          std::to_string(unique_viewers)});
  tx.commit();
  return m;
}

int64_t insert_comment(db::Connection& c, int64_t channel_id, int64_t author_id, const std::string& body) {
  return to_i64(c.exec("INSERT INTO comments (channel_id, stream_id, author_id, body) "
                       "VALUES ($1, (SELECT id FROM streams WHERE user_id = $1 AND ended_at IS NULL), $2, $3) "
                       "RETURNING id",
                       {std::to_string(channel_id), std::to_string(author_id), body})
                    .value(0, 0));
}

std::vector<service::Comment> comments(db::Connection& c, int64_t channel_id, std::optional<int64_t> before,
                                       int limit) {
  db::Result r = c.exec("SELECT c.id, u.username, c.body, " MIRAGE_TIME("c.created_at")
                        " FROM comments c JOIN users u ON u.id = c.author_id "
                        "WHERE c.channel_id = $1 AND c.deleted_at IS NULL AND ($2::bigint IS NULL OR c.id < $2) "
                        "ORDER BY c.id DESC LIMIT $3",
                        {std::to_string(channel_id),
                         before ? db::Param(std::to_string(*before)) : db::Param(std::nullopt),
                         std::to_string(limit)});
  std::vector<service::Comment> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({to_i64(r.value(i, 0)), r.value(i, 1), r.value(i, 2), r.value(i, 3)});
  return out;
}

int64_t comment_count(db::Connection& c, int64_t stream_id) {
  return to_i64(c.exec("SELECT count(*) FROM comments WHERE stream_id = $1 AND deleted_at IS NULL",
                       {std::to_string(stream_id)}).value(0, 0));
}

bool delete_comment(db::Connection& c, int64_t channel_id, int64_t comment_id) {
  return c.exec("UPDATE comments SET deleted_at = now() WHERE id = $1 AND channel_id = $2 AND deleted_at IS NULL "
                "RETURNING id",
                {std::to_string(comment_id), std::to_string(channel_id)}).rows() == 1;
}

void enqueue_style(db::Connection& c, int64_t stream_id, const std::string& style, int64_t user_id) {
  c.exec("INSERT INTO style_requests (stream_id, style, requested_by) VALUES ($1, $2, $3)",
         {std::to_string(stream_id), style, std::to_string(user_id)});
}

std::vector<service::StyleRequest> style_queue(db::Connection& c, int64_t stream_id) {
  db::Result r = c.exec("SELECT r.id, r.style, u.username, r.status, " MIRAGE_TIME("r.created_at") ", "
                        MIRAGE_TIME("r.activated_at")
                        " FROM style_requests r JOIN users u ON u.id = r.requested_by "
                        "WHERE r.stream_id = $1 AND r.status IN ('queued', 'active') "
                        "ORDER BY (r.status = 'active') DESC, r.id",
                        {std::to_string(stream_id)});
  std::vector<service::StyleRequest> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({to_i64(r.value(i, 0)), r.value(i, 1), r.value(i, 2), r.value(i, 3), r.value(i, 4), r.get(i, 5)});
  return out;
}

std::optional<std::string> advance_styles(db::Connection& c, int64_t stream_id, int seconds, bool force) {
  db::Transaction tx(c);
  // Serialise advances of one stream (replicas, the ticker and a skip).
  c.exec("SELECT id FROM streams WHERE id = $1 FOR UPDATE", {std::to_string(stream_id)});
  db::Result active = c.exec(
      "SELECT id, activated_at <= now() - make_interval(secs => $2) FROM style_requests "
      "WHERE stream_id = $1 AND status = 'active'",
      {std::to_string(stream_id), std::to_string(seconds)});
  if (active.rows() == 1) {
    if (!force && !to_bool(active.value(0, 1))) return std::nullopt;  // still running
    c.exec("UPDATE style_requests SET status = $2 WHERE id = $1",
           {active.value(0, 0), std::string(force ? "skipped" : "done")});
  }
  db::Result next = c.exec(
      "UPDATE style_requests SET status = 'active', activated_at = now() WHERE id = "
      "(SELECT id FROM style_requests WHERE stream_id = $1 AND status = 'queued' ORDER BY id LIMIT 1) "
      "RETURNING style",
      {std::to_string(stream_id)});
  std::optional<std::string> style;
  if (next.rows() == 1) {
    style = next.value(0, 0);
    c.exec("UPDATE streams SET style = $2 WHERE id = $1", {std::to_string(stream_id), *style});
  }
  tx.commit();
  return style;
}

void clear_styles(db::Connection& c, int64_t stream_id) {
  c.exec("UPDATE style_requests SET status = 'skipped' WHERE stream_id = $1 AND status = 'queued'",
         {std::to_string(stream_id)});
}

int64_t styles_applied(db::Connection& c, int64_t stream_id) {
  return to_i64(c.exec("SELECT count(*) FROM style_requests WHERE stream_id = $1 AND activated_at IS NOT NULL",
                       {std::to_string(stream_id)}).value(0, 0));
}

}  // namespace mirage::repo
