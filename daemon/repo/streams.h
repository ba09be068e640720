// SQL for streams, comments and style requests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "service/model.h"

namespace mirage::repo {

// Throws db::Error 23505 when the user already has a live stream.
// |media_host| runs its pipeline (null: none named).
service::Stream insert_stream(db::Connection& c, int64_t user_id, const std::string& title,
                              const std::string& secret, const std::optional<std::string>& media_host);
std::optional<service::Stream> live_stream(db::Connection& c, int64_t user_id);
std::vector<std::pair<int64_t, std::string>> live_streams(db::Connection& c);  // id, username
// The ingest secret of |username|'s live stream, if live.
std::optional<std::string> live_secret(db::Connection& c, const std::string& username);
std::vector<service::Stream> streams_of(db::Connection& c, int64_t user_id, int limit);
std::optional<service::Stream> stream_by_id(db::Connection& c, int64_t stream_id);

struct HostedStream {
  int64_t id = 0;
  std::string username, secret;
};
// The live streams |host| runs (or that name no host), for reconciling after
// a restart. Each one's billing point moves to now: the time its pipeline
// was gone with the crashed process is not billed.
std::vector<HostedStream> take_back_streams(db::Connection& c, const std::string& host);

struct MeterResult {
  bool live = false;          // the stream was still live when metered
  int64_t charged = 0;        // seconds added to the ledger now
  bool exhausted = false;     // the balance reached zero and the stream ended
  int64_t user_id = 0;
};
// Bills the stream from billed_until to now (as far as the balance allows)
// in one transaction with the ledger entry; ends it when the balance is
// exhausted or |end_reason| is given. Safe to run concurrently: the stream
// row is locked, so the same seconds are never billed twice.
MeterResult meter_stream(db::Connection& c, int64_t stream_id, int viewers, int unique_viewers,
                         const std::optional<std::string>& end_reason);

int64_t insert_comment(db::Connection& c, int64_t channel_id, int64_t author_id, const std::string& body);
std::vector<service::Comment> comments(db::Connection& c, int64_t channel_id,
                                       std::optional<int64_t> before, int limit);
int64_t comment_count(db::Connection& c, int64_t stream_id);
// Returns false when no such comment on that channel.
bool delete_comment(db::Connection& c, int64_t channel_id, int64_t comment_id);

void enqueue_style(db::Connection& c, int64_t stream_id, const std::string& style, int64_t user_id);
std::vector<service::StyleRequest> style_queue(db::Connection& c, int64_t stream_id);
// Ends the active style if it ran |seconds| (or |force|), activates the
// next queued one. Returns the newly active style, if any.
std::optional<std::string> advance_styles(db::Connection& c, int64_t stream_id, int seconds, bool force);
void clear_styles(db::Connection& c, int64_t stream_id);
int64_t styles_applied(db::Connection& c, int64_t stream_id);

}  // namespace mirage::repo
