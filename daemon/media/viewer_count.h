// Counting one stream's viewers so that one client cannot inflate it.
//
// A viewer is seen at a client address (the peer's, or what a trusted proxy
// forwarded for) with an id: a WebSocket watcher is one id per connection,
// an HLS player the ?viewer= id its page sends (or none). Each address
// counts for at most |per_address| viewers, however many ids it invents or
// sockets it opens: 3,000 playlist requests with distinct ids from one
// machine count as |per_address|, not 3,000. Several tabs or people behind
// one home router still count, up to the cap. HLS ids are live for 30 s
// after their last playlist request. Memory is bounded too: at most
// 2 x |per_address| ids are kept per address and |max_addresses| addresses
// per stream, the stalest going first.
//
// Not thread-safe: the media server calls it under its lock.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>

namespace mirage::media {

class ViewerCount {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kHlsWindow = std::chrono::seconds(30);

  explicit ViewerCount(int per_address, size_t max_addresses = 20000)
      : per_address_(per_address), max_addresses_(max_addresses) {}

  // A playlist request.
  void hls_seen(const std::string& address, const std::string& id, Clock::time_point now);
  // A WebSocket watcher came or went (previews are not counted at all).
  void watcher_joined(const std::string& address);
  void watcher_left(const std::string& address);

  int current(Clock::time_point now) const;
  // Distinct viewers since the stream started, capped the same way.
  int unique() const;

 private:
  struct Address {
    std::map<std::string, Clock::time_point> hls;  // id -> last playlist request
    int watchers = 0;
    std::set<std::string> ever;                     // ids seen, at most per_address_ kept
    int ever_watchers = 0;
    Clock::time_point last{};
  };
  void evict_addresses();

  const int per_address_;
  const size_t max_addresses_;
  std::map<std::string, Address> addresses_;
  // Addresses dropped from addresses_ (oldest first) still count in unique().
  int unique_evicted_ = 0;
};

}  // namespace mirage::media
