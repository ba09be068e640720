#include "service/timers.h"

#include <cstdio>

#include "log/log.h"
#include "repo/streams.h"

namespace mirage::service {

Timers::Timers(Streams& streams, TimerSettings settings) : streams_(streams), settings_(std::move(settings)) {}

Timers::~Timers() { stop(); }

void Timers::start() { thread_ = std::thread([this] { run(); }); }

void Timers::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  conn_.reset();  // the lock goes with the session
  leader_ = false;
}

void Timers::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      if (hold_lock()) tick();
    } catch (const std::exception& e) {
      say(log::Level::kWarn, std::string("timers: ") + e.what());
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(settings_.period_ms), [this] { return stopping_; });
  }
}

bool Timers::hold_lock() {
  try {
    if (conn_ && conn_->healthy() && leader_) {
      conn_->exec("SELECT 1");  // still our session, so still our lock
      return true;
    }
    if (!conn_ || !conn_->healthy()) {
      conn_ = std::make_unique<db::Connection>(settings_.database_url);
      // A holder whose host vanished is dropped by the server after about
      // 4 s of silence, not the kernel's two hours.
      conn_->exec("SELECT set_config('application_name', $1, false), set_config('tcp_keepalives_idle', '2', false), "
                  "set_config('tcp_keepalives_interval', '1', false), set_config('tcp_keepalives_count', '2', false)",
                  {"miraged timers " + settings_.name});
    }
    const bool got = repo::try_timer_lock(*conn_);
    if (got) {
      say(log::Level::kInfo, "timers: this replica now runs metering and the style timer");
      last_meter_ = {};  // bill at once: the previous holder may have been gone a while
    }
    leader_ = got;
    return got;
  } catch (const std::exception& e) {
    if (leader_) say(log::Level::kWarn, std::string("timers: lost the timer lock (") + e.what() + ")");
    conn_.reset();
    leader_ = false;
    return false;
  }
}

void Timers::tick() {
  const auto now = std::chrono::steady_clock::now();
  streams_.advance_all_styles();
  streams_.replace_lost_streams();
  if (now - last_meter_ >= std::chrono::seconds(settings_.meter_seconds)) {
    last_meter_ = now;
    streams_.meter_all();
  }
  if (now - last_purge_ >= std::chrono::minutes(1)) {
    last_purge_ = now;
    streams_.purge_expired();
  }
}

void Timers::say(log::Level level, const std::string& line) {
  if (!settings_.quiet) log::write(level, line, {{"replica", settings_.name}});
}

}  // namespace mirage::service
