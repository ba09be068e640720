// SQL for media workers: the registry, what each worker must run, what it
// reports back, the channel event outbox and the NOTIFY channels
// (docs/architecture.md).
//
// Channels: mirage_worker_<id> (payload: a stream id, or "" for "look at
// everything"): a stream placed on that worker, ended, restyled or given a
// new secret; mirage_events (payload: a channel_events id): a message for a
// channel's /events sockets. Payloads are ids only, far below PostgreSQL's
// 8000-byte limit: the listener reads the rows.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "service/model.h"

namespace mirage::repo {

// A worker's row as it registers itself.
struct WorkerRegistration {
  std::string name, instance, media_url, srt_url, rtsp_url, srt_passphrase, model, device;
  int capacity = 4;
  std::vector<std::string> styles;
};

struct Registered {
  int64_t id = 0;
  // The row was another (now dead) process's: its live streams are this
  // one's now, billed again from their first processed frame here.
  bool restarted = false;
  int taken_back = 0;
};

// Upserts the worker's row under its name. Refuses (nullopt, with the reason
// in |refusal|) while another process holds that name with a heartbeat
// within |timeout_seconds|.
std::optional<Registered> register_worker(db::Connection& c, const WorkerRegistration& w, int timeout_seconds,
                                          std::string* refusal);
// Bills the live streams of the worker named |name| up to its last
// heartbeat: a restarting worker does this before it registers, since the
// time its predecessor's pipelines were gone is not billed.
void bill_streams_of_worker(db::Connection& c, const std::string& name);
// The worker's row as its process sees it before a heartbeat.
struct WorkerState {
  bool ours = false;       // false: another process took the name
  bool draining = false;   // SIGTERM or `miraged worker drain NAME`
  double silent_seconds = 0;  // since the last heartbeat
};
WorkerState worker_state(db::Connection& c, int64_t worker_id, const std::string& instance);
// Heartbeats. |restart_billing|: the heartbeat had lapsed (the database was
// unreachable longer than the timeout), so its streams' billing restarts
// now; the caller billed them up to the old heartbeat first. False when the
// row is no longer this process's.
bool heartbeat(db::Connection& c, int64_t worker_id, const std::string& instance, bool restart_billing = false);
// `miraged worker drain NAME`: marks the worker draining and wakes it.
// nullopt: no live worker of that name.
std::optional<int64_t> drain_worker(db::Connection& c, const std::string& name, int timeout_seconds);
// Whether stream |stream_id|'s pipeline is built on |worker_id| (it reported
// it ready), or the stream is not live there any more.
bool taken_over(db::Connection& c, int64_t stream_id, int64_t worker_id);
// A worker that stops: takes no new stream, and is not live from now on.
void retire_worker(db::Connection& c, int64_t worker_id, const std::string& instance);
std::optional<service::MediaWorker> worker_by_id(db::Connection& c, int64_t worker_id, int timeout_seconds);
// The live worker with the lowest id (serves /events of channels that are
// offline), if any.
std::optional<service::MediaWorker> any_live_worker(db::Connection& c, int timeout_seconds);

// What a worker must run: its live streams, and of |running| (the streams
// it runs now) those that ended or were placed elsewhere ("moved"), with
// their reason.
struct PlacedStream {
  int64_t id = 0;
  std::string username, secret, style;  // style: the effective one (a viewer's request, else the streamer's)
  double strength = 0.8;                 // the streamer's
  bool live = true;
  std::string end_reason;  // when !live
  std::string request_id;  // of the API request that started it ("" for none)
};
std::vector<PlacedStream> worker_streams(db::Connection& c, int64_t worker_id, const std::vector<int64_t>& running);

// |reports|: a JSON array of {"id", "viewers", "unique_viewers", "ready",
// "processing_seconds", "health"} (health: the media plane's object or
// null; processing_seconds: since the pipeline's first processed frame, or
// null before it), upserted into stream_runtime. A stream's billing starts
// at its first processed frame, but never more than |since_heartbeat|
// seconds ago (the previous heartbeat; 0 after a lapse): time the worker
// could not report is not billed.
void write_runtime(db::Connection& c, int64_t worker_id, const std::string& reports, double since_heartbeat);

struct ChannelEvent {
  int64_t id = 0;
  std::string username, payload;
};
int64_t last_channel_event(db::Connection& c);
// The outbox rows after |after|, oldest first, except those |worker_id|
// sends itself.
std::vector<ChannelEvent> channel_events_after(db::Connection& c, int64_t after, int64_t worker_id, int limit);

// Appends |payload| to |channel_id|'s outbox and notifies mirage_events.
// Last statement of its transaction (it takes the outbox's advisory lock,
// which must not be held while waiting for row locks).
void publish_event(db::Connection& c, int64_t channel_id, const std::string& payload,
                   std::optional<int64_t> sent_by_worker = std::nullopt);
// Wakes worker |worker_id| to re-read its streams.
void notify_worker(db::Connection& c, int64_t worker_id, int64_t stream_id);

}  // namespace mirage::repo
