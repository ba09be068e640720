// LatestSlot<T>: the leaky single-buffer queue at the heart of diffusionfilter.
//
// One producer (the streaming thread) puts items, one consumer (the inference
// worker) takes them. The slot holds at most one item: put() replaces the
// waiting item, which counts as dropped, so the producer never waits and the
// consumer always gets the newest item. This bounds the lag to one model run
// plus the wait for the next item, whatever the producer's rate.
//
// Besides the item, the slot tracks whether the consumer is busy with an item
// it took, so that wait_drained() can tell "nothing waiting and nothing in
// flight" (what EOS needs) apart from "nothing waiting".
//
// Thread safety: every method may be called from any thread. An item that
// leaves the slot without being taken (replaced or discarded) is destroyed
// after the internal lock is released, so T's destructor may take other locks.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

namespace mirage {

template <typename T>
class LatestSlot {
 public:
  enum class PutResult {
    kStored,    // the slot was empty
    kReplaced,  // an older waiting item was dropped
    kRefused,   // the slot is flushing or closed: the new item was dropped
  };

  // Stores |item|, replacing any waiting item.
  PutResult put(T item) {
    std::optional<T> old;
    PutResult result;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (flushing_ || closed_) {
        old.emplace(std::move(item));
        result = PutResult::kRefused;
      } else {
        result = item_ ? PutResult::kReplaced : PutResult::kStored;
        old.swap(item_);
        item_.emplace(std::move(item));
      }
    }
    cond_.notify_all();
    return result;  // |old| (the dropped item, if any) dies here, unlocked.
  }

  // Blocks until an item is waiting or the slot is closed. Returns the item
  // and marks the consumer busy until done(); returns nullopt once closed.
  std::optional<T> take() {
    std::unique_lock<std::mutex> lock(mutex_);
    cond_.wait(lock, [this] { return closed_ || (item_ && !flushing_); });
    if (closed_) return std::nullopt;
    std::optional<T> taken;
    taken.swap(item_);
    busy_ = true;
    return taken;
  }

  // The consumer has finished with the item returned by take().
  void done() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = false;
    }
    cond_.notify_all();
  }

  // Drops the waiting item, if any, and starts a new generation: a consumer
  // holding an item of an older generation should discard its result.
  // Returns true when an item was dropped.
  bool discard() { return drop_waiting([] {}); }

  // While flushing, put() refuses items and wait_drained() returns at once.
  // Entering the flushing state discards the waiting item (see discard()).
  // Returns true when an item was dropped.
  bool set_flushing(bool flushing) {
    if (flushing) return drop_waiting([this] { flushing_ = true; });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      flushing_ = false;
    }
    cond_.notify_all();
    return false;
  }

  // Blocks until no item is waiting and the consumer is idle. Returns false
  // when interrupted by flushing or closing instead.
  bool wait_drained() {
    std::unique_lock<std::mutex> lock(mutex_);
    cond_.wait(lock, [this] { return flushing_ || closed_ || (!item_ && !busy_); });
    return !flushing_ && !closed_;
  }

  // Wakes the consumer for good: take() returns nullopt from now on. The
  // waiting item is dropped; returns true when there was one.
  bool close() { return drop_waiting([this] { closed_ = true; }); }

  // Makes a closed slot usable again (a new PAUSED cycle of the element).
  void reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = false;
    flushing_ = false;
    busy_ = false;
  }

  uint64_t generation() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return generation_;
  }

  bool has_item() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return item_.has_value();
  }

 private:
  // Under the lock: applies |change|, takes the waiting item out and starts
  // a new generation. The item is destroyed after the lock is released.
  template <typename Change>
  bool drop_waiting(Change change) {
    std::optional<T> old;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      change();
      old.swap(item_);
      ++generation_;
    }
    cond_.notify_all();
    return old.has_value();
  }

  // Guards every member below. Never held while calling out of the class.
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::optional<T> item_;
  bool busy_ = false;
  bool flushing_ = false;
  bool closed_ = false;
  uint64_t generation_ = 0;
};

}  // namespace mirage
