// A media worker's link to the control plane: PostgreSQL and nothing else
// (docs/architecture.md).
//
//   registry   its media_workers row (name, public URLs, capacity, model,
//              device, styles), upserted at start, heartbeaten every second
//   reconcile  its streams' rows -> MediaPlane calls (reconciler.h), on every
//              NOTIFY mirage_worker_<id> and every reconcile period
//   events     the channel outbox (channel_events) -> MediaPlane::event(),
//              on NOTIFY mirage_events and every reconcile period
//   reports    viewers and health of each stream it runs -> stream_runtime,
//              every second
//   maintain   streams the media plane must end (ingest silent, pipeline
//              failing) are ended in the database, billed up to now
//   drain      once its row is draining (drain(), or `miraged worker drain
//              NAME` from anywhere): each stream is moved to another worker
//              make-before-break: placed there, held here until the new
//              pipeline is built, then let go (its clients are told "moved"
//              and reconnect); after drain_seconds the rest end
//              "worker_drained"; then drained() is true
//   billing    a stream is billed from its first processed frame here, up to
//              the last heartbeat; a heartbeat that lapsed (the database was
//              unreachable longer than the timeout) restarts its streams'
//              billing at the reconnect, so the outage is not billed
//
// All of it runs on one thread with one connection. When the database goes
// away the pipelines keep running; the thread reconnects every second and
// its first pass catches up on everything it missed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "db/connection.h"
#include "log/log.h"
#include "media/media_plane.h"
#include "media/reconciler.h"
#include "repo/workers.h"

namespace mirage::media {

struct WorkerSettings {
  std::string database_url;
  repo::WorkerRegistration registration;  // instance: chosen by the Worker
  int timeout_seconds = 5;                // the API's worker_timeout_seconds
  int heartbeat_ms = 1000;                // heartbeat, reports and maintain
  int reconcile_ms = 2000;                // a full pass even without NOTIFY
  int drain_seconds = 30;                 // a drain ends the streams not moved by then
  bool quiet = false;                     // no log lines (tests)
};

class Worker {
 public:
  Worker(WorkerSettings settings, MediaPlane& media);
  ~Worker();  // stop("shutdown") unless stopped

  // Registers (waiting out a previous process of the same name that has not
  // timed out yet), takes its streams back after a restart, and starts the
  // thread. Throws std::runtime_error with the reason.
  void start();
  // Ends every stream it runs (billed up to now, with |reason|), retires its
  // row (no new streams, not live) and stops the thread.
  void stop(const std::string& reason);
  int64_t id() const { return id_; }
  const std::string& name() const { return settings_.registration.name; }
  // False once it stopped on its own: another process took its name.
  bool running();
  // Seconds since its last heartbeat reached the database (nullopt: none
  // yet), for /readyz.
  std::optional<double> heartbeat_age_seconds();
  // Starts a drain (returns at once): no new streams, its streams move to
  // other workers. Idempotent.
  void drain();
  // The drain is over: nothing runs here any more.
  bool drained();
  // Runs a whole pass now (reconcile, events, reports) and waits for it; false
  // when it could not within |timeout| (the database is down). Tests.
  bool sync(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  void run();
  void connect();
  void reconcile();
  void pump_events();
  void report();
  void hand_over();
  void wake();
  // A log line with this worker's name (none when settings_.quiet).
  void say(log::Level level, const std::string& line, log::Fields fields = {});

  WorkerSettings settings_;
  MediaPlane& media_;
  Reconciler reconciler_;
  int64_t id_ = 0;
  std::unique_ptr<db::Connection> conn_;  // the thread's
  int64_t last_event_ = -1;               // the outbox cursor (thread)
  std::string last_error_;                // the thread's, logged once per change
  bool draining_ = false;                 // the thread's
  std::chrono::steady_clock::time_point drain_deadline_;
  std::map<int64_t, int64_t> handovers_;  // stream -> the worker it was moved to (thread)
  std::thread thread_;
  int wake_fd_ = -1;  // eventfd: stop() and sync() wake the thread's poll()

  std::mutex mutex_;  // guards the fields below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  bool replaced_ = false;
  bool drain_requested_ = false;
  bool drained_ = false;
  std::chrono::steady_clock::time_point last_heartbeat_;
  uint64_t sync_requested_ = 0, sync_done_ = 0;
};

}  // namespace mirage::media
