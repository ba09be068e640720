// The control plane's timers: metering (every meter_seconds), the style
// timer and the reaper of lost workers' streams (every second), purging
// (every minute). They run on one replica at a time: the one whose own
// connection holds a session-level advisory lock (repo::try_timer_lock).
// Every replica tries each second; when the holder dies its session ends
// (kill -9 closes the socket; a vanished host is found by the keepalives
// set on that session, about 4 s) and another replica takes over at its
// next try. The work itself stays safe under two holders (row locks,
// billed_until), so a brief overlap can never bill twice.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "db/connection.h"
#include "log/log.h"
#include "service/streams.h"

namespace mirage::service {

struct TimerSettings {
  std::string database_url;
  std::string name;        // shown as the lock session's application_name ("miraged timers NAME")
  int meter_seconds = 30;
  int period_ms = 1000;    // how often the lock is tried and the timers run
  bool quiet = false;
};

class Timers {
 public:
  Timers(Streams& streams, TimerSettings settings);
  ~Timers();
  Timers(const Timers&) = delete;
  Timers& operator=(const Timers&) = delete;

  void start();
  void stop();
  // Whether this replica holds the timer lock now.
  bool leader() const { return leader_; }

 private:
  void run();
  bool hold_lock();  // connects and tries when needed; false: not the leader
  void tick();
  void say(log::Level level, const std::string& line);

  Streams& streams_;
  const TimerSettings settings_;
  std::unique_ptr<db::Connection> conn_;  // the lock's session, nothing else
  std::atomic<bool> leader_{false};
  std::chrono::steady_clock::time_point last_meter_{}, last_purge_{};
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mirage::service
