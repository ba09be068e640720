// A fixed set of connections handed out one caller at a time. Callers that
// find none free wait; a connection that broke is replaced on return.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "connection.h"

namespace mirage::db {

class Pool {
 public:
  Pool(std::string conninfo, int size) : conninfo_(std::move(conninfo)) {
    for (int i = 0; i < size; ++i) free_.push_back(std::make_unique<Connection>(conninfo_));
  }

  // A borrowed connection, returned to the pool when it goes out of scope.
  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    ~Lease() { pool_.give_back(std::move(conn_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    Pool& pool_;
    std::unique_ptr<Connection> conn_;
  };

  Lease acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    cond_.wait(lock, [this] { return !free_.empty(); });
    auto conn = std::move(free_.back());
    free_.pop_back();
    return Lease(*this, std::move(conn));
  }

 private:
  void give_back(std::unique_ptr<Connection> conn) {
    if (!conn->healthy()) {
      try {
        conn = std::make_unique<Connection>(conninfo_);
      } catch (const Error&) {
        // The database is down: keep the broken one; the next use fails
        // with a clear error and is retried on return.
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      free_.push_back(std::move(conn));
    }
    cond_.notify_one();
  }

  const std::string conninfo_;
  std::mutex mutex_;  // guards free_
  std::condition_variable cond_;
  std::vector<std::unique_ptr<Connection>> free_;
};

}  // namespace mirage::db
