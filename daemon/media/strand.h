// Serial queues on a shared pool of threads: the jobs of one Strand run one
// at a time, in the order they were posted, never two at once; the jobs of
// different strands run in parallel on the pool. The media server gives
// each stream a strand for the slow, blocking parts of its lifecycle
// (building a pipeline, which may load a model; tearing one down, which
// waits for EOS), so that start, stop and restart of one stream are
// serialised and none of it runs on a request thread or the main loop.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mirage::media {

class StrandPool {
 public:
  explicit StrandPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  // Runs every job posted so far (and those they post), then joins.
  ~StrandPool() {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      idle_.wait(lock, [this] { return ready_.empty() && busy_ == 0; });
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  class Strand {
   public:
    void post(std::function<void()> job) {
      bool schedule;
      {
        std::lock_guard<std::mutex> lock(pool_.mutex_);
        jobs_.push_back(std::move(job));
        schedule = !scheduled_;
        scheduled_ = true;
      }
      if (schedule) pool_.schedule(shared_from_this_());
    }

   private:
    friend class StrandPool;
    explicit Strand(StrandPool& pool) : pool_(pool) {}
    std::shared_ptr<Strand> shared_from_this_() { return self_.lock(); }
    StrandPool& pool_;
    std::weak_ptr<Strand> self_;
    std::deque<std::function<void()>> jobs_;  // guarded by pool_.mutex_
    bool scheduled_ = false;                  // in the pool's ready queue or running; guarded likewise
  };

  std::shared_ptr<Strand> strand() {
    std::shared_ptr<Strand> s(new Strand(*this));
    s->self_ = s;
    return s;
  }

 private:
  void schedule(std::shared_ptr<Strand> strand) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(strand));
    }
    wake_.notify_one();
  }

  // A thread takes a ready strand and runs its jobs until none is left.
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
      if (ready_.empty()) return;
      auto strand = std::move(ready_.front());
      ready_.pop_front();
      ++busy_;
      while (!strand->jobs_.empty()) {
        auto job = std::move(strand->jobs_.front());
        strand->jobs_.pop_front();
        lock.unlock();
        job();
        lock.lock();
      }
      strand->scheduled_ = false;
      --busy_;
      if (ready_.empty() && busy_ == 0) idle_.notify_all();
    }
  }

  std::mutex mutex_;  // guards ready_, busy_, stopping_ and every strand's jobs_ and scheduled_
  std::condition_variable wake_, idle_;
  std::deque<std::shared_ptr<Strand>> ready_;
  int busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mirage::media
