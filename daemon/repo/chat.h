// SQL for a channel's chat: comments by stream, the channel's earlier
// streams, and bans and time-outs (chat_bans, migration 008).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "service/model.h"

namespace mirage::repo {

// Comments of stream |stream_id| (of channel |channel_id|), newest first.
std::vector<service::Comment> stream_comments(db::Connection& c, int64_t channel_id, int64_t stream_id,
                                              std::optional<int64_t> before, int limit);
// The comment |comment_id| of the channel.
std::optional<service::Comment> comment_by_id(db::Connection& c, int64_t channel_id, int64_t comment_id);

struct PastStream {
  int64_t id = 0;
  std::string title, started_at;
  std::optional<std::string> ended_at;  // null: live
  int64_t comment_count = 0;
};
// The channel's streams, newest first.
std::vector<PastStream> past_streams(db::Connection& c, int64_t channel_id, int limit);

struct Ban {
  std::string username;
  std::optional<std::string> until;  // null: until lifted
  int64_t seconds_left = 0;          // a time-out's, rounded up
};
// Bans |user_id| from |channel_id|'s chat (replacing an earlier ban or
// time-out); |seconds|: a time-out of that long.
Ban ban(db::Connection& c, int64_t channel_id, int64_t user_id, std::optional<int64_t> seconds);
// False when |user_id| was neither banned nor timed out there.
bool lift_ban(db::Connection& c, int64_t channel_id, int64_t user_id);
// The bans and time-outs in force, newest first.
std::vector<Ban> bans(db::Connection& c, int64_t channel_id);
// |user_id|'s ban or time-out in force on |channel_id|, if any.
std::optional<Ban> ban_of(db::Connection& c, int64_t channel_id, int64_t user_id);

}  // namespace mirage::repo
