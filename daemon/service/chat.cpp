// The chat half of Streams: comments per stream, earlier streams, and the
// streamer's bans and time-outs.
#include <cstdio>

#include "json_text.h"
#include "repo/chat.h"
#include "repo/streams.h"
#include "repo/users.h"
#include "repo/workers.h"
#include "service/error.h"
#include "service/streams.h"
#include "service/validation.h"

namespace mirage::service {

namespace {

constexpr int kPastStreams = 20;
constexpr int64_t kLongestTimeout = 366LL * 86400;  // longer is a ban

}  // namespace

std::vector<Comment> Streams::comments(const std::string& username, std::optional<int64_t> stream_id,
                                       std::optional<int64_t> before, int limit) {
  if (limit < 1 || limit > 100) throw invalid_field("limit", "'limit' must be 1 to 100");
  User owner = channel(username);
  auto c = pool_.acquire();
  if (!stream_id) {
    // The live stream is the newest one; offline, the latest.
    auto latest = repo::streams_of(*c, owner.id, 1);
    if (latest.empty()) return {};
    stream_id = latest.front().id;
  } else {
    auto stream = repo::stream_by_id(*c, *stream_id);
    if (!stream || stream->user_id != owner.id)
      throw Error(ErrorKind::kNotFound, "not_found", "no such stream on this channel");
  }
  return repo::stream_comments(*c, owner.id, *stream_id, before, limit);
}

Comment Streams::post_comment(const User& author, const std::string& username, const std::string& text) {
  const size_t length = utf8_length(text);
  if (length < 1 || length > 500) throw invalid_field("text", "'text' must be 1 to 500 characters long");
  User owner = channel(username);
  if (!owner.comments_enabled) throw Error(ErrorKind::kForbidden, "comments_disabled", "comments are turned off");
  auto c = pool_.acquire();
  if (auto ban = repo::ban_of(*c, owner.id, author.id)) {
    if (!ban->until) throw Error(ErrorKind::kForbidden, "banned", "the streamer banned you from this chat");
    throw Error(ErrorKind::kForbidden, "timed_out",
                "the streamer timed you out; you may write again in " + std::to_string(ban->seconds_left) + " s",
                int(std::max<int64_t>(1, ban->seconds_left)));
  }
  if (!repo::live_stream(*c, owner.id)) throw Error(ErrorKind::kConflict, "not_live", "the stream is not live");
  auto [hits, retry_after] = repo::rate_limit_hit(*c, "comment:" + std::to_string(author.id),
                                                  settings_.comment_window_seconds);
  if (hits > settings_.comments_per_window)
    throw Error(ErrorKind::kRateLimited, "rate_limited", "too many comments; slow down", retry_after);
  try {
    db::Transaction tx(*c);
    const int64_t id = repo::insert_comment(*c, owner.id, author.id, text);
    Comment comment = *repo::comment_by_id(*c, owner.id, id);
    // The stream ended between the check and the insert: no stream to
    // belong to, and nothing is written.
    if (!comment.stream_id) throw Error(ErrorKind::kConflict, "not_live", "the stream is not live");
    repo::publish_event(*c, owner.id, "{\"type\":\"comment\",\"id\":" + std::to_string(comment.id) +
                                          ",\"author\":" + json_quote(comment.author) + ",\"text\":" +
                                          json_quote(comment.body) + ",\"created_at\":" + json_quote(comment.created_at) +
                                          ",\"stream_id\":" + std::to_string(*comment.stream_id) + "}");
    tx.commit();
    return comment;
  } catch (const db::Error& e) {
    if (e.sqlstate() == "23514") throw invalid_field("text", "'text' must be 1 to 500 characters long");
    throw;
  }
}

void Streams::delete_comment(const User& user, const std::string& username, int64_t id) {
  User owner = channel(username);
  if (owner.id != user.id) throw Error(ErrorKind::kForbidden, "forbidden", "only the streamer may delete comments");
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  if (!repo::delete_comment(*c, owner.id, id)) throw Error(ErrorKind::kNotFound, "not_found", "no such comment");
  // Watch pages take it off the list.
  repo::publish_event(*c, owner.id, "{\"type\":\"comment_deleted\",\"id\":" + std::to_string(id) + "}");
  tx.commit();
}

std::vector<PastStream> Streams::past_streams(const std::string& username) {
  User owner = channel(username);
  auto c = pool_.acquire();
  std::vector<PastStream> out;
  for (const auto& s : repo::past_streams(*c, owner.id, kPastStreams))
    out.push_back({s.id, s.title, s.started_at, s.ended_at, s.comment_count});
  return out;
}

ChatBan Streams::ban(const User& streamer, const std::string& username, std::optional<int64_t> seconds) {
  if (seconds && (*seconds < 1 || *seconds > kLongestTimeout))
    throw invalid_field("duration_seconds", "'duration_seconds' must be 1 to " + std::to_string(kLongestTimeout) +
                                                " (or null: a ban until lifted)");
  if (check_username(username)) throw Error(ErrorKind::kNotFound, "not_found", "no user '" + username + "'");
  auto c = pool_.acquire();
  auto target = repo::user_by_name(*c, username);
  if (!target) throw Error(ErrorKind::kNotFound, "not_found", "no user '" + username + "'");
  if (target->id == streamer.id) throw invalid_field("username", "you cannot ban yourself from your own chat");
  db::Transaction tx(*c);
  const repo::Ban ban = repo::ban(*c, streamer.id, target->id, seconds);
  // The banned user's page says so at once.
  repo::publish_event(*c, streamer.id, "{\"type\":\"chat_ban\",\"username\":" + json_quote(ban.username) +
                                           ",\"until\":" + (ban.until ? json_quote(*ban.until) : "null") + "}");
  tx.commit();
  return {ban.username, ban.until};
}

void Streams::lift_ban(const User& streamer, const std::string& username) {
  auto c = pool_.acquire();
  auto target = repo::user_by_name(*c, username);
  db::Transaction tx(*c);
  if (!target || !repo::lift_ban(*c, streamer.id, target->id))
    throw Error(ErrorKind::kNotFound, "not_found", "'" + username + "' is not banned from your chat");
  repo::publish_event(*c, streamer.id, "{\"type\":\"chat_unban\",\"username\":" + json_quote(target->username) + "}");
  tx.commit();
}

std::vector<ChatBan> Streams::bans(const User& streamer) {
  auto c = pool_.acquire();
  std::vector<ChatBan> out;
  for (const auto& b : repo::bans(*c, streamer.id)) out.push_back({b.username, b.until});
  return out;
}

}  // namespace mirage::service
