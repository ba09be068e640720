// ViewerCount on its own (no GStreamer, no sockets), with a clock the test
// moves: one (address, id) is one viewer whatever it watches with and
// however it switches; without an id the per-connection counting stays;
// the per-address cap and the bounded memory stay.
#include <gtest/gtest.h>

#include "media/viewer_count.h"

namespace mirage::media {
namespace {

using namespace std::chrono_literals;
const auto t0 = ViewerCount::Clock::time_point{} + 1000s;

TEST(ViewerCount, IdsThatAreNoIdsAreIgnored) {
  EXPECT_EQ(ViewerCount::id_of("Tab-3f_9Z"), "Tab-3f_9Z");
  EXPECT_EQ(ViewerCount::id_of(std::string(64, 'a').c_str()), std::string(64, 'a'));
  EXPECT_EQ(ViewerCount::id_of(std::string(65, 'a').c_str()), "");  // not cut into another id
  EXPECT_EQ(ViewerCount::id_of(nullptr), "");
  EXPECT_EQ(ViewerCount::id_of(""), "");
  for (const char* bad : {"a b", "a/b", "a%20b", "tab.1", "tab\n", "ü", "a=b", "<script>"})
    EXPECT_EQ(ViewerCount::id_of(bad), "") << bad;
}

// The issue: one tab switched from HLS to WebSocket counted 2 for ~30 s.
TEST(ViewerCount, OneTabSwitchingModesIsOneViewer) {
  ViewerCount v(8);
  v.hls_seen("10.0.0.1", "tab", t0);
  EXPECT_EQ(v.current(t0), 1);
  v.joined("10.0.0.1", "tab", t0 + 1s);  // to WebSocket, inside the HLS window
  EXPECT_EQ(v.current(t0 + 1s), 1);
  v.joined("10.0.0.1", "tab", t0 + 2s);  // and WHEP, before the WebSocket closed
  EXPECT_EQ(v.current(t0 + 2s), 1);
  v.left("10.0.0.1", "tab");
  EXPECT_EQ(v.current(t0 + 3s), 1);
  v.left("10.0.0.1", "tab");
  EXPECT_EQ(v.current(t0 + 3s), 1);   // its HLS window is still open
  EXPECT_EQ(v.current(t0 + 31s), 0);  // and closes 30 s after its last playlist
  v.hls_seen("10.0.0.1", "tab", t0 + 40s);  // back to HLS
  EXPECT_EQ(v.current(t0 + 40s), 1);
  v.joined("10.0.0.1", "tab", t0 + 41s);
  EXPECT_EQ(v.current(t0 + 100s), 1);  // a connection is live however long ago HLS was
  v.left("10.0.0.1", "tab");
  EXPECT_EQ(v.current(t0 + 100s), 0);
  EXPECT_EQ(v.unique(), 1);
}

// By protocol: HLS viewers are those with an HLS request in the window,
// capped per address like the count.
TEST(ViewerCount, HlsViewersAreThoseWithARecentHlsRequest) {
  ViewerCount v(2);
  v.hls_seen("10.0.0.1", "a", t0);
  v.joined("10.0.0.2", "b", t0);  // a WebSocket only
  EXPECT_EQ(v.current(t0), 2);
  EXPECT_EQ(v.hls_current(t0), 1);
  v.joined("10.0.0.1", "a", t0 + 5s);  // a switches to WebSocket: still HLS until its window closes
  EXPECT_EQ(v.hls_current(t0 + 5s), 1);
  EXPECT_EQ(v.hls_current(t0 + 31s), 0);
  EXPECT_EQ(v.current(t0 + 31s), 2);
  for (const char* id : {"x", "y", "z", "w"}) v.hls_seen("10.0.0.3", id, t0 + 40s);
  EXPECT_EQ(v.hls_current(t0 + 40s), 2);  // one address counts at most its cap
}

TEST(ViewerCount, TheSameIdElsewhereAndOtherIdsAreOtherViewers) {
  ViewerCount v(8);
  v.joined("10.0.0.1", "tab", t0);
  v.joined("10.0.0.2", "tab", t0);  // another machine with the same id
  v.hls_seen("10.0.0.1", "other", t0);
  EXPECT_EQ(v.current(t0), 3);
  EXPECT_EQ(v.unique(), 3);
}

TEST(ViewerCount, WithoutAnIdEachConnectionCountsAndHlsIsOnePerAddress) {
  ViewerCount v(8);
  v.joined("10.0.0.1", "", t0);
  v.joined("10.0.0.1", "", t0);
  v.hls_seen("10.0.0.1", "", t0);
  v.hls_seen("10.0.0.1", "", t0 + 1s);
  EXPECT_EQ(v.current(t0 + 1s), 3);  // two sockets, one anonymous HLS player
  v.left("10.0.0.1", "");
  EXPECT_EQ(v.current(t0 + 1s), 2);
  v.left("10.0.0.1", "");
  v.left("10.0.0.1", "");  // one too many: never below zero
  EXPECT_EQ(v.current(t0 + 2s), 1);
  EXPECT_EQ(v.current(t0 + 40s), 0);
  v.left("10.9.9.9", "ghost");  // never seen
  EXPECT_EQ(v.unique(), 3);
}

TEST(ViewerCount, OneAddressCountsAtMostItsCap) {
  ViewerCount v(8);
  for (int i = 0; i < 3000; ++i) v.hls_seen("10.0.0.1", "fake" + std::to_string(i), t0);
  for (int i = 0; i < 50; ++i) v.joined("10.0.0.1", "socket" + std::to_string(i), t0);
  for (int i = 0; i < 50; ++i) v.joined("10.0.0.1", "", t0);
  v.hls_seen("10.0.0.2", "real", t0);
  EXPECT_EQ(v.current(t0), 8 + 1);
  EXPECT_EQ(v.unique(), 8 + 1);
  // The connections opened with an id are kept however many ids came
  // after them: closing them is counted right.
  for (int i = 0; i < 3000; ++i) v.hls_seen("10.0.0.1", "more" + std::to_string(i), t0 + 40s);
  for (int i = 0; i < 50; ++i) v.left("10.0.0.1", "");
  for (int i = 0; i < 49; ++i) v.left("10.0.0.1", "socket" + std::to_string(i));
  EXPECT_EQ(v.current(t0 + 80s), 1);  // socket49, the HLS ids having gone stale
}

TEST(ViewerCount, AddressesAreBoundedAndTheEvictedStillCountAsUnique) {
  ViewerCount v(8, 100);
  v.joined("watching", "tab", t0);
  for (int i = 0; i < 1000; ++i) v.hls_seen("10.1." + std::to_string(i), "x", t0 + std::chrono::seconds(i));
  EXPECT_EQ(v.unique(), 1001);
  // The connected address was never evicted: it still counts, and leaves.
  EXPECT_EQ(v.current(t0 + 1000s), 1 + 29);  // it, and the addresses seen in the last 30 s
  v.left("watching", "tab");
  EXPECT_EQ(v.current(t0 + 1000s), 29);
}

}  // namespace
}  // namespace mirage::media
