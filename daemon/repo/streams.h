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
// |style| and |strength|: the streamer's, applied from the first frame.
// |request_id|: the API request's (log/log.h), kept for the worker's log
// lines about the stream; "" for none.
std::optional<service::Stream> place_stream(db::Connection& c, int64_t user_id, const std::string& title,
                                            const std::string& secret, const std::string& style, double strength,
                                            int worker_timeout_seconds, const std::string& request_id = "");
// The streamer changed their style or strength (unset: unchanged) on live
// stream |stream_id|: the effective style follows unless a viewer's request
// is active; the worker is woken. False when the stream is not live.
bool set_streamer_style(db::Connection& c, int64_t stream_id, const std::optional<std::string>& style,
                        std::optional<double> strength);
// Moves the live stream off |from_worker| to another live worker with room
// (the same locking), if it is still there: same stream, same secret. Wakes
// both workers and tells the channel's watch pages ("moved"). |continuous|:
// billing goes on (a drain: the old worker holds it until the new one is
// ready); else it restarts at the new worker's first processed frame (the
// old worker died: the time between is not billed). Returns the new worker.
std::optional<int64_t> move_stream(db::Connection& c, int64_t stream_id, int64_t from_worker, bool continuous,
                                   int worker_timeout_seconds);
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
// Bills the stream from billed_until up to the earlier of now and its
// worker's last heartbeat (as far as the balance allows) in one transaction
// with the ledger entry; ends it when the balance is exhausted or
// |end_reason| is given, and then tells its worker and the channel's /events
// (outbox). Nothing is billed before the first processed frame (billed_until
// NULL). Safe to run concurrently: the stream row is locked, so the same
// seconds are never billed twice. Viewers are those its worker last
// reported. |held_by|: only if the stream is (still) on that worker.
MeterResult meter_stream(db::Connection& c, int64_t stream_id, const std::optional<std::string>& end_reason,
                         std::optional<int64_t> held_by = std::nullopt);
struct LostStream {
  int64_t id = 0;
  std::optional<int64_t> worker_id;  // its dead worker (none: never placed)
  double silent_seconds = 0;         // since that worker's last heartbeat
  std::string request_id;            // of the request that started it ("" for none)
};
// Live streams whose worker has not heartbeaten for |worker_timeout_seconds|
// (or that have none). Not within that long after PostgreSQL started.
std::vector<LostStream> streams_of_lost_workers(db::Connection& c, int worker_timeout_seconds);
// The user's live stream's time not billed yet (up to the earlier of now
// and its worker's last heartbeat), and whether it is being billed (its
// first frame was processed); {0, false} when not live.
std::pair<int64_t, bool> unbilled_seconds(db::Connection& c, int64_t user_id);
// The live stream's current viewers as its worker last reported them.
int stream_viewers(db::Connection& c, int64_t stream_id);
// Its health object (JSON text), or "null".
std::string stream_health(db::Connection& c, int64_t stream_id);

int64_t insert_comment(db::Connection& c, int64_t channel_id, int64_t author_id, const std::string& body);
struct LiveChannel {
  std::string username, display_name, title;
  int viewers = 0;
  std::string started_at;
  std::optional<std::string> media_url;  // its worker's, while that one is live
};
// The live streams, most viewers first.
std::vector<LiveChannel> live_channels(db::Connection& c, int worker_timeout_seconds, int limit);
int64_t comment_count(db::Connection& c, int64_t stream_id);
// Returns false when no such comment on that channel.
bool delete_comment(db::Connection& c, int64_t channel_id, int64_t comment_id);

// Live streams whose style queue must move: the active request has run
// |seconds|, or requests wait and none is active.
std::vector<int64_t> streams_with_due_styles(db::Connection& c, int seconds);

// The timer lock: a session-level advisory lock; the replica whose
// connection holds it runs metering, the style timer and the reaper.
bool try_timer_lock(db::Connection& c);

// Every change to a stream's queue tells the channel's watch pages
// ({"type":"styles"}: re-read the queue) in its transaction.
// Throws db::Error 23505 when |user_id| already has a request waiting.
void enqueue_style(db::Connection& c, int64_t stream_id, int64_t channel_id, const std::string& style, int64_t user_id);
// The active request first (with ends_at and seconds_left after |seconds|
// of it), then the queued ones in order.
std::vector<service::StyleRequest> style_queue(db::Connection& c, int64_t stream_id, int seconds);
// Ends the active style if it ran |seconds| (or |force|), activates the
// next queued one (else the streamer's style returns) and wakes the
// stream's worker. Returns the newly active style, if any.
std::optional<std::string> advance_styles(db::Connection& c, int64_t stream_id, int seconds, bool force);
void clear_styles(db::Connection& c, int64_t stream_id);
// The streamer rejects queued request |request_id| of stream |stream_id|.
// False when it is not queued there (any more: of two racing rejects, one).
bool reject_style(db::Connection& c, int64_t stream_id, int64_t request_id);
int64_t styles_applied(db::Connection& c, int64_t stream_id);

}  // namespace mirage::repo
