#include "worker.h"

#include <poll.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "auth/token.h"
#include "repo/streams.h"

namespace mirage::media {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kEventsPerRead = 500;

}  // namespace

Worker::Worker(WorkerSettings settings, MediaPlane& media)
    : settings_(std::move(settings)), media_(media), reconciler_(media) {
  auto instance = auth::new_token();
  if (!instance) throw std::runtime_error("no randomness for the worker's instance id");
  settings_.registration.instance = *instance;
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
}

Worker::~Worker() {
  stop("shutdown");
  close(wake_fd_);
}

void Worker::say(log::Level level, const std::string& line, log::Fields fields) {
  if (settings_.quiet) return;
  std::vector<log::Field> all{{"worker", name()}};
  all.insert(all.end(), fields.begin(), fields.end());
  log::write(level, line, all);
}

void Worker::start() {
  db::Connection c(settings_.database_url);
  // A previous process of this name that died (kill -9) still looks live
  // until its heartbeat times out: wait that long, not more.
  const auto deadline = Clock::now() + std::chrono::seconds(settings_.timeout_seconds + 1);
  std::optional<repo::Registered> registered;
  for (bool told = false;;) {
    // A predecessor's streams are billed up to its last heartbeat; their
    // billing restarts at their first frame processed here.
    repo::bill_streams_of_worker(c, settings_.registration.name);
    std::string refusal;
    registered = repo::register_worker(c, settings_.registration, settings_.timeout_seconds, &refusal);
    if (registered) break;
    if (Clock::now() >= deadline) throw std::runtime_error(refusal);
    if (!told) say(log::Level::kInfo, "waiting for the previous process of this name to time out (" + refusal + ")");
    told = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  id_ = registered->id;
  if (registered->taken_back)
    say(log::Level::kInfo, std::to_string(registered->taken_back) + " live stream(s) taken back after a restart");
  say(log::Level::kInfo, "registered as worker " + std::to_string(id_) + " (capacity " + std::to_string(settings_.registration.capacity) +
      ", " + settings_.registration.media_url + ")");
  thread_ = std::thread([this] { run(); });
}

std::optional<double> Worker::heartbeat_age_seconds() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (last_heartbeat_ == std::chrono::steady_clock::time_point{}) return std::nullopt;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - last_heartbeat_).count();
}

bool Worker::running() {
  std::lock_guard<std::mutex> lock(mutex_);
  return thread_.joinable() && !replaced_ && !stopped_;
}

void Worker::drain() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    drain_requested_ = true;
  }
  wake();
}

bool Worker::drained() {
  std::lock_guard<std::mutex> lock(mutex_);
  return drained_;
}

void Worker::wake() {
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) {
    // The counter is full: the thread is awake already.
  }
}

bool Worker::sync(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t ticket = ++sync_requested_;
  wake();
  return cv_.wait_for(lock, timeout, [&] { return sync_done_ >= ticket || stopping_ || replaced_; }) &&
         sync_done_ >= ticket;
}

void Worker::stop(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_ || !thread_.joinable()) {
      stopped_ = true;
      return;
    }
    stopping_ = true;
  }
  wake();
  thread_.join();
  // Billing ends with the streams; if the database is unreachable they stay
  // live there and come back when this worker restarts (or the API's timers
  // move them once its heartbeat is old).
  try {
    if (!conn_) conn_ = std::make_unique<db::Connection>(settings_.database_url);
    for (int64_t id : reconciler_.running()) {
      // One handed over meanwhile is the other worker's: not ended, not billed here.
      const bool here = repo::meter_stream(*conn_, id, reason, id_).live;
      reconciler_.stop(id, here ? reason : "moved");
    }
    repo::retire_worker(*conn_, id_, settings_.registration.instance);
  } catch (const std::exception& e) {
    say(log::Level::kError, std::string("could not end its streams in the database: ") + e.what());
  }
  for (int64_t id : reconciler_.running()) reconciler_.stop(id, reason);
  conn_.reset();
  std::lock_guard<std::mutex> lock(mutex_);
  stopped_ = true;
}

void Worker::connect() {
  conn_ = std::make_unique<db::Connection>(settings_.database_url);
  conn_->exec("LISTEN mirage_worker_" + std::to_string(id_));  // an integer: no quoting needed
  conn_->exec("LISTEN mirage_events");
  // The first connection starts at the outbox's end (older messages are
  // history); a reconnect goes on where it left off, so nothing is lost.
  if (last_event_ < 0) last_event_ = repo::last_channel_event(*conn_);
  if (!last_error_.empty()) say(log::Level::kInfo, "database reachable again");
  last_error_.clear();
}

void Worker::reconcile() { reconciler_.apply(repo::worker_streams(*conn_, id_, reconciler_.running())); }

void Worker::pump_events() {
  for (;;) {
    auto events = repo::channel_events_after(*conn_, last_event_, id_, kEventsPerRead);
    for (const auto& e : events) {
      if (!e.payload.empty()) media_.event(e.username, e.payload);
      last_event_ = e.id;
    }
    if (events.size() < size_t(kEventsPerRead)) return;
  }
}

void Worker::report() {
  const repo::WorkerState state = repo::worker_state(*conn_, id_, settings_.registration.instance);
  // A lapsed heartbeat (the database was unreachable): its streams are billed
  // up to the old heartbeat, and from now on.
  const bool lapsed = state.ours && state.silent_seconds > settings_.timeout_seconds;
  if (lapsed) {
    say(log::Level::kWarn, "heartbeat lapsed for " + std::to_string(int(state.silent_seconds)) + " s; that time is not billed");
    for (int64_t id : reconciler_.running()) repo::meter_stream(*conn_, id, std::nullopt, id_);
  }
  if (!state.ours || !repo::heartbeat(*conn_, id_, settings_.registration.instance, lapsed)) {
    // Another process registered this name (this one looked dead to it):
    // the streams are its now. Stop them here without billing.
    say(log::Level::kWarn, "another process took over the name '" + name() + "'; stopping this worker's pipelines");
    for (int64_t id : reconciler_.running()) reconciler_.stop(id, "worker_replaced");
    std::lock_guard<std::mutex> lock(mutex_);
    replaced_ = true;
    cv_.notify_all();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    last_heartbeat_ = std::chrono::steady_clock::now();
  }
  const auto running = reconciler_.running();
  if (!running.empty()) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartArray();
    for (int64_t id : running) {
      const std::string health = media_.health(id);
      w.StartObject();
      w.Key("id");
      w.Int64(id);
      w.Key("viewers");
      w.Int(media_.viewers(id));
      w.Key("unique_viewers");
      w.Int(media_.unique_viewers(id));
      w.Key("ready");
      w.Bool(media_.ready(id));
      w.Key("processing_seconds");
      if (auto s = media_.processing_seconds(id)) w.Double(*s);
      else w.Null();
      w.Key("health");
      w.RawValue(health.c_str(), health.size(), rapidjson::kObjectType);
      w.EndObject();
    }
    w.EndArray();
    // A first frame seen while the heartbeat lapsed starts the billing now.
    repo::write_runtime(*conn_, id_, buffer.GetString(), lapsed ? 0.0 : state.silent_seconds);
  }
  // Streams the media plane gave up on end here, billed up to now.
  for (const auto& [id, reason] : media_.maintain()) {
    repo::meter_stream(*conn_, id, reason, id_);
    reconciler_.stop(id, reason);
  }
  bool requested;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requested = drain_requested_;
  }
  if (!draining_ && (state.draining || requested)) {
    if (!state.draining) repo::drain_worker(*conn_, name(), settings_.timeout_seconds);
    draining_ = true;
    drain_deadline_ = Clock::now() + std::chrono::seconds(settings_.drain_seconds);
    say(log::Level::kInfo, "draining: moving " + std::to_string(reconciler_.running().size()) + " stream(s) to other workers (at most " +
        std::to_string(settings_.drain_seconds) + " s)");
  }
  if (draining_) hand_over();
}

void Worker::hand_over() {
  const bool late = Clock::now() >= drain_deadline_;
  for (int64_t id : reconciler_.running()) {
    auto it = handovers_.find(id);
    if (it != handovers_.end()) {
      // Make-before-break: let go once the new worker's pipeline is built
      // (or the stream ended or moved on meanwhile).
      if (late || repo::taken_over(*conn_, id, it->second)) {
        say(log::Level::kInfo, "stream handed over to another worker",
            {{"stream_id", id}, {"request_id", reconciler_.request_id(id)}, {"to_worker", it->second}});
        reconciler_.stop(id, "moved");
        handovers_.erase(it);
      }
      continue;
    }
    if (late) {
      repo::meter_stream(*conn_, id, "worker_drained", id_);
      say(log::Level::kWarn, "stream ended: no other worker took it within the drain",
          {{"stream_id", id}, {"request_id", reconciler_.request_id(id)}, {"reason", "worker_drained"}});
      reconciler_.stop(id, "worker_drained");
      continue;
    }
    if (auto to = repo::move_stream(*conn_, id, id_, true, settings_.timeout_seconds)) {
      handovers_[id] = *to;
      reconciler_.hold(id);
    }
  }
  if (reconciler_.running().empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!drained_) say(log::Level::kInfo, "drained");
    drained_ = true;
    cv_.notify_all();
  }
}

void Worker::run() {
  auto next_report = Clock::now();
  auto next_pass = Clock::now();
  bool need_reconcile = true, need_events = true;
  for (;;) {
    uint64_t ticket;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || replaced_) return;
      ticket = sync_requested_;
      if (drain_requested_ && !draining_) next_report = Clock::now();  // start it now
    }
    try {
      if (!conn_) {
        connect();
        need_reconcile = need_events = true;
      }
      const bool sync = ticket > sync_done_;
      auto now = Clock::now();
      if (sync || now >= next_pass) {
        need_reconcile = need_events = true;
        next_pass = now + std::chrono::milliseconds(settings_.reconcile_ms);
      }
      if (need_reconcile) reconcile();
      need_reconcile = false;
      if (need_events) pump_events();
      need_events = false;
      if (sync || now >= next_report) {
        report();
        next_report = now + std::chrono::milliseconds(settings_.heartbeat_ms);
      }
      if (sync) {
        std::lock_guard<std::mutex> lock(mutex_);
        sync_done_ = ticket;
        cv_.notify_all();
      }
      now = Clock::now();
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(std::min(next_report, next_pass) - now);
      pollfd fds[2] = {{conn_->socket(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      poll(fds, 2, int(std::max<int64_t>(0, wait.count())));
      uint64_t drained;
      if (fds[1].revents & POLLIN) (void)!read(wake_fd_, &drained, sizeof drained);
      for (const auto& n : conn_->notifications()) {
        if (n.channel == "mirage_events") need_events = true;
        else if (n.payload == "drain") next_report = Clock::now();  // reads the row now
        else need_reconcile = true;
      }
    } catch (const std::exception& e) {
      if (e.what() != last_error_) say(log::Level::kWarn, std::string("database: ") + e.what() + "; pipelines keep running, retrying");
      last_error_ = e.what();
      conn_.reset();
      pollfd fd = {wake_fd_, POLLIN, 0};
      poll(&fd, 1, 1000);
      uint64_t drained;
      if (fd.revents & POLLIN) (void)!read(wake_fd_, &drained, sizeof drained);
    }
  }
}

}  // namespace mirage::media
