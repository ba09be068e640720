// The leaky single-buffer queue on its own, without GStreamer or a model.
#include "latest_slot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace mirage {
namespace {

using Slot = LatestSlot<int>;

TEST(LatestSlot, TakeReturnsWhatWasPut) {
  Slot slot;
  EXPECT_EQ(slot.put(1), Slot::PutResult::kStored);
  auto item = slot.take();
  ASSERT_TRUE(item);
  EXPECT_EQ(*item, 1);
  slot.done();
  EXPECT_FALSE(slot.has_item());
}

TEST(LatestSlot, PutReplacesTheWaitingItem) {
  Slot slot;
  EXPECT_EQ(slot.put(1), Slot::PutResult::kStored);
  EXPECT_EQ(slot.put(2), Slot::PutResult::kReplaced);
  EXPECT_EQ(slot.put(3), Slot::PutResult::kReplaced);
  EXPECT_EQ(*slot.take(), 3);  // the newest, never an older one
}

TEST(LatestSlot, ReplacedItemsAreDestroyedNotLeaked) {
  LatestSlot<std::shared_ptr<int>> slot;
  auto first = std::make_shared<int>(1);
  std::weak_ptr<int> watch = first;
  slot.put(std::move(first));
  slot.put(std::make_shared<int>(2));
  EXPECT_TRUE(watch.expired());
}

TEST(LatestSlot, TakeBlocksUntilAnItemArrives) {
  Slot slot;
  std::atomic<bool> taken{false};
  std::thread consumer([&] {
    auto item = slot.take();
    EXPECT_TRUE(item);
    taken = true;
  });
  // Give the consumer a chance to block; the assertion holds whether or not
  // it got there, because nothing has been put yet.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(taken);
  slot.put(7);
  consumer.join();
  EXPECT_TRUE(taken);
}

TEST(LatestSlot, CloseWakesABlockedConsumer) {
  Slot slot;
  std::thread consumer([&] { EXPECT_FALSE(slot.take()); });
  slot.close();
  consumer.join();
  EXPECT_EQ(slot.put(1), Slot::PutResult::kRefused);
  slot.reopen();
  EXPECT_EQ(slot.put(1), Slot::PutResult::kStored);
}

TEST(LatestSlot, FlushingDiscardsAndRefuses) {
  Slot slot;
  slot.put(1);
  const uint64_t before = slot.generation();
  EXPECT_TRUE(slot.set_flushing(true));  // the waiting item was dropped
  EXPECT_GT(slot.generation(), before);   // in-flight results are now stale
  EXPECT_EQ(slot.put(2), Slot::PutResult::kRefused);
  EXPECT_FALSE(slot.has_item());
  EXPECT_FALSE(slot.wait_drained());  // returns at once while flushing
  slot.set_flushing(false);
  EXPECT_EQ(slot.put(3), Slot::PutResult::kStored);
  EXPECT_EQ(*slot.take(), 3);
}

TEST(LatestSlot, DiscardStartsANewGeneration) {
  Slot slot;
  EXPECT_FALSE(slot.discard());
  slot.put(1);
  const uint64_t before = slot.generation();
  EXPECT_TRUE(slot.discard());
  EXPECT_EQ(slot.generation(), before + 1);
  EXPECT_FALSE(slot.has_item());
}

TEST(LatestSlot, WaitDrainedWaitsForTheItemInFlight) {
  Slot slot;
  slot.put(1);
  std::atomic<bool> finished{false};
  std::thread consumer([&] {
    auto item = slot.take();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
    slot.done();
  });
  EXPECT_TRUE(slot.wait_drained());
  // Drained means the consumer called done(), not merely that it took the item.
  EXPECT_TRUE(finished);
  consumer.join();
}

// A fast producer against a slow consumer: every item is either taken or
// counted as dropped, items are taken in increasing order, the last one put
// is always taken, and the consumer never sees more than one waiting.
TEST(LatestSlot, FastProducerSlowConsumerLosesNothingUncounted) {
  Slot slot;
  constexpr int kItems = 20000;
  std::atomic<int> dropped{0};
  std::vector<int> taken;
  std::thread consumer([&] {
    while (auto item = slot.take()) {
      taken.push_back(*item);
      if (taken.size() % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      slot.done();
    }
  });
  for (int i = 0; i < kItems; ++i) {
    if (slot.put(i) != Slot::PutResult::kStored) ++dropped;
  }
  ASSERT_TRUE(slot.wait_drained());
  slot.close();
  consumer.join();

  EXPECT_EQ(int(taken.size()) + dropped, kItems);
  ASSERT_FALSE(taken.empty());
  EXPECT_EQ(taken.back(), kItems - 1);
  for (size_t i = 1; i < taken.size(); ++i) ASSERT_LT(taken[i - 1], taken[i]);
}

}  // namespace
}  // namespace mirage
