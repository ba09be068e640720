// SQL for streams, comments and style requests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "service/model.h"

namespace mirage::repo {

// Creates the user's stream on a live worker (heartbeat within
// |worker_timeout_seconds|, not draining) with room, least loaded first, and
// wakes that worker. Each try locks the worker's row and counts its live
// streams under the lock, so racing starts never exceed its capacity.
// nullopt: no worker has room (nothing was written). Throws db::Error 23505
// when the user already has a live stream.
std::optional<service::Stream> place_stream(db::Connection& c, int64_t user_id, const std::string& title,
                                            const std::string& secret, int worker_timeout_seconds);
std::optional<service::Stream> live_stream(db::Connection& c, int64_t user_id);
std::vector<std::pair<int64_t, std::string>> live_streams(db::Connection& c);  // id, username
std::vector<service::Stream> streams_of(db::Connection& c, int64_t user_id, int limit);
std::optional<service::Stream> stream_by_id(db::Connection& c, int64_t stream_id);

struct MeterResult {
  bool live = false;          // the stream was still live when metered
  int64_t charged = 0;        // seconds added to the ledger now
  bool exhausted = false;     // the balance reached zero and the stream ended
  int64_t user_id = 0;
};
// Bills the stream from billed_until to now (as far as the balance allows)
// in one transaction with the ledger entry; ends it when the balance is
// exhausted or |end_reason| is given, and then tells its worker and the
// channel's /events (outbox). Safe to run concurrently: the stream row is
// locked, so the same seconds are never billed twice. Viewers are those its
// worker last reported. A stream whose worker stopped heartbeating is billed
// only up to its last heartbeat plus |worker_timeout_seconds|.
MeterResult meter_stream(db::Connection& c, int64_t stream_id, const std::optional<std::string>& end_reason,
                         int worker_timeout_seconds);
// Live streams whose worker has not heartbeaten for |lost_seconds| (or that
// have none): id, reason.
std::vector<int64_t> streams_of_lost_workers(db::Connection& c, int lost_seconds);
// The live stream's current viewers as its worker last reported them.
int stream_viewers(db::Connection& c, int64_t stream_id);
// Its health object (JSON text), or "null".
std::string stream_health(db::Connection& c, int64_t stream_id);

int64_t insert_comment(db::Connection& c, int64_t channel_id, int64_t author_id, const std::string& body);
std::vector<service::Comment> comments(db::Connection& c, int64_t channel_id,
                                       std::optional<int64_t> before, int limit);
int64_t comment_count(db::Connection& c, int64_t stream_id);
// Returns false when no such comment on that channel.
bool delete_comment(db::Connection& c, int64_t channel_id, int64_t comment_id);

// Live streams whose style queue must move: the active request has run
// |seconds|, or requests wait and none is active.
std::vector<int64_t> streams_with_due_styles(db::Connection& c, int seconds);

// The timer lock: a session-level advisory lock; the replica whose
// connection holds it runs metering, the style timer and the reaper.
bool try_timer_lock(db::Connection& c);

void enqueue_style(db::Connection& c, int64_t stream_id, const std::string& style, int64_t user_id);
std::vector<service::StyleRequest> style_queue(db::Connection& c, int64_t stream_id);
// Ends the active style if it ran |seconds| (or |force|), activates the
// next queued one and wakes the stream's worker. Returns the newly active
// style, if any.
std::optional<std::string> advance_styles(db::Connection& c, int64_t stream_id, int seconds, bool force);
void clear_styles(db::Connection& c, int64_t stream_id);
int64_t styles_applied(db::Connection& c, int64_t stream_id);

}  // namespace mirage::repo
