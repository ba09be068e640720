// A fixed set of connections handed out one caller at a time. Callers that
// find none free wait; a connection that broke is replaced on return.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "connection.h"
#include "metrics/metrics.h"

namespace mirage::db {

class Pool {
 public:
  Pool(std::string conninfo, int size) : conninfo_(std::move(conninfo)), size_(size) {
    for (int i = 0; i < size; ++i) free_.push_back(std::make_unique<Connection>(conninfo_));
    metrics::db_pool(0, size_);
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
    metrics::db_pool(size_ - int(free_.size()), size_);
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
      metrics::db_pool(size_ - int(free_.size()), size_);
    }
    cond_.notify_one();
  }

  const std::string conninfo_;
  const int size_;
  std::mutex mutex_;  // guards free_
  std::condition_variable cond_;
  std::vector<std::unique_ptr<Connection>> free_;
};

}  // namespace mirage::db
