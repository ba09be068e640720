// Counting one stream's viewers so that one tab is one viewer, whatever it
// watches with, and one client cannot inflate the count.
//
// A viewer is seen at a client address (the peer's, or what a trusted proxy
// forwarded for) with an optional id: the ?viewer= a page sends on every
// watch URL (HLS playlist and segments, the /watch WebSocket, WHEP's POST),
// one random id per browser tab. One (address, id) is one viewer however
// many ways it watches and however it switches between them: it is live
// while it has a WebSocket or WHEP connection open, or for 30 s after its
// last HLS request. Without an id each WebSocket watcher and each WHEP
// session is one viewer, and the HLS players of an address that send no id
// are one viewer together (the id "").
//
// Each address counts for at most |per_address| viewers, however many ids
// it invents or sockets it opens: 3,000 playlist requests with distinct ids
// from one machine count as |per_address|, not 3,000. Several tabs or
// people behind one home router still count, up to the cap. Memory is
// bounded too: per address at most 2 x |per_address| ids without an open
// connection are kept (the stalest go first; connections are capped by the
// media port), and |max_addresses| addresses per stream.
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
  static constexpr size_t kMaxIdLength = 64;

  explicit ViewerCount(int per_address, size_t max_addresses = 20000)
      : per_address_(per_address), max_addresses_(max_addresses) {}

  // A ?viewer= value as given: the id if it is one (1 to 64 characters of
  // A-Z a-z 0-9 - _, what a URL carries unescaped), else "" (no id: the
  // value is ignored, never cut or escaped into another one).
  static std::string id_of(const char* raw);

  // An HLS request (playlist, or a segment that names its viewer).
  void hls_seen(const std::string& address, const std::string& id, Clock::time_point now);
  // A WebSocket watcher or WHEP session opened or closed (the streamer's
  // previews are not counted at all). |id| "": counted per connection.
  void joined(const std::string& address, const std::string& id, Clock::time_point now);
  void left(const std::string& address, const std::string& id);

  int current(Clock::time_point now) const;
  // Of those, the ones watching over HLS: an HLS request in the last
  // kHlsWindow (a tab that just switched to a connection still counts here
  // until its window closes), capped per address the same way.
  int hls_current(Clock::time_point now) const;
  // Distinct viewers since the stream started, capped the same way.
  int unique() const;

 private:
  struct Viewer {
    int connections = 0;      // WebSocket and WHEP connections open with this id
    Clock::time_point hls{};  // its last HLS request
    bool hls_seen = false;
    Clock::time_point last{};  // its last sign of life (eviction order)
  };
  struct Address {
    std::map<std::string, Viewer> ids;
    int anonymous = 0;        // connections open without an id
    std::set<std::string> ever;  // ids seen, at most per_address_ kept
    int ever_anonymous = 0;
    Clock::time_point last{};
  };
  static bool live(const Viewer& v, Clock::time_point now) {
    return v.connections > 0 || (v.hls_seen && now - v.hls < kHlsWindow);
  }
  Viewer& seen(Address& a, const std::string& id, Clock::time_point now);
  static bool connected(const Address& a);
  void evict_ids(Address& a);
  void evict_addresses();
  int unique_of(const Address& a) const;

  const int per_address_;
  const size_t max_addresses_;
  std::map<std::string, Address> addresses_;
  // Addresses dropped from addresses_ (oldest first) still count in unique().
  int unique_evicted_ = 0;
};

}  // namespace mirage::media
