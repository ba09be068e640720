#include "chat.h"

#include "rows.h"

namespace mirage::repo {

namespace {

#define MIRAGE_COMMENT_COLUMNS "c.id, u.username, c.body, " MIRAGE_TIME("c.created_at") ", c.stream_id"

std::vector<service::Comment> read_comments(const db::Result& r) {
  std::vector<service::Comment> out;
  for (int i = 0; i < r.rows(); ++i) {
    service::Comment comment{to_i64(r.value(i, 0)), r.value(i, 1), r.value(i, 2), r.value(i, 3), std::nullopt};
    if (auto s = r.get(i, 4)) comment.stream_id = to_i64(*s);
    out.push_back(std::move(comment));
  }
  return out;
}

// A ban row still in force: until lifted, or a time-out not over yet.
#define MIRAGE_BAN_IN_FORCE "(b.until IS NULL OR b.until > now())"
#define MIRAGE_BAN_COLUMNS \
  "u.username, " MIRAGE_TIME("b.until") ", coalesce(ceil(extract(epoch FROM b.until - now())), 0)::bigint"

std::vector<Ban> read_bans(const db::Result& r) {
  std::vector<Ban> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.value(i, 0), r.get(i, 1), to_i64(r.value(i, 2))});
  return out;
}

}  // namespace

std::vector<service::Comment> stream_comments(db::Connection& c, int64_t channel_id, int64_t stream_id,
                                              std::optional<int64_t> before, int limit) {
  return read_comments(c.exec("SELECT " MIRAGE_COMMENT_COLUMNS " FROM comments c JOIN users u ON u.id = c.author_id "
                              "WHERE c.channel_id = $1 AND c.stream_id = $2 AND c.deleted_at IS NULL "
                              "  AND ($3::bigint IS NULL OR c.id < $3) ORDER BY c.id DESC LIMIT $4",
                              {std::to_string(channel_id), std::to_string(stream_id),
                               before ? db::Param(std::to_string(*before)) : db::Param(std::nullopt),
                               std::to_string(limit)}));
}

std::optional<service::Comment> comment_by_id(db::Connection& c, int64_t channel_id, int64_t comment_id) {
  auto list = read_comments(c.exec("SELECT " MIRAGE_COMMENT_COLUMNS " FROM comments c JOIN users u ON u.id = c.author_id "
                                   "WHERE c.channel_id = $1 AND c.id = $2",
                                   {std::to_string(channel_id), std::to_string(comment_id)}));
  if (list.empty()) return std::nullopt;
  return list.front();
}

std::vector<PastStream> past_streams(db::Connection& c, int64_t channel_id, int limit) {
  db::Result r = c.exec("SELECT s.id, s.title, " MIRAGE_TIME("s.started_at") ", " MIRAGE_TIME("s.ended_at") ", "
                        "  (SELECT count(*) FROM comments c WHERE c.stream_id = s.id AND c.deleted_at IS NULL) "
                        "FROM streams s WHERE s.user_id = $1 ORDER BY s.id DESC LIMIT $2",
                        {std::to_string(channel_id), std::to_string(limit)});
  std::vector<PastStream> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({to_i64(r.value(i, 0)), r.value(i, 1), r.value(i, 2), r.get(i, 3), to_i64(r.value(i, 4))});
  return out;
}

Ban ban(db::Connection& c, int64_t channel_id, int64_t user_id, std::optional<int64_t> seconds) {
  return read_bans(c.exec(
      "WITH b AS (INSERT INTO chat_bans AS b (channel_id, user_id, until) "
      "  VALUES ($1, $2, now() + make_interval(secs => $3::bigint)) "
      "  ON CONFLICT (channel_id, user_id) DO UPDATE SET until = EXCLUDED.until, created_at = now() "
      "  RETURNING b.user_id, b.until) "
      "SELECT " MIRAGE_BAN_COLUMNS " FROM b JOIN users u ON u.id = b.user_id",
      {std::to_string(channel_id), std::to_string(user_id),
       seconds ? db::Param(std::to_string(*seconds)) : db::Param(std::nullopt)}))
      .front();
}

bool lift_ban(db::Connection& c, int64_t channel_id, int64_t user_id) {
  return c.exec("DELETE FROM chat_bans b WHERE b.channel_id = $1 AND b.user_id = $2 AND " MIRAGE_BAN_IN_FORCE
                " RETURNING 1",
                {std::to_string(channel_id), std::to_string(user_id)})
             .rows() == 1;
}

std::vector<Ban> bans(db::Connection& c, int64_t channel_id) {
  return read_bans(c.exec("SELECT " MIRAGE_BAN_COLUMNS " FROM chat_bans b JOIN users u ON u.id = b.user_id "
                          "WHERE b.channel_id = $1 AND " MIRAGE_BAN_IN_FORCE " ORDER BY b.created_at DESC, u.username",
                          {std::to_string(channel_id)}));
}

std::optional<Ban> ban_of(db::Connection& c, int64_t channel_id, int64_t user_id) {
  auto list = read_bans(c.exec("SELECT " MIRAGE_BAN_COLUMNS " FROM chat_bans b JOIN users u ON u.id = b.user_id "
                               "WHERE b.channel_id = $1 AND b.user_id = $2 AND " MIRAGE_BAN_IN_FORCE,
                               {std::to_string(channel_id), std::to_string(user_id)}));
  if (list.empty()) return std::nullopt;
  return list.front();
}

}  // namespace mirage::repo
