#include "viewer_count.h"

#include <algorithm>

namespace mirage::media {

void ViewerCount::hls_seen(const std::string& address, const std::string& id, Clock::time_point now) {
  Address& a = addresses_[address];
  a.last = now;
  a.hls[id] = now;
  // Keep the freshest ids only: an address inventing ids cannot grow this.
  while (a.hls.size() > size_t(2 * per_address_)) {
    auto stalest = std::min_element(a.hls.begin(), a.hls.end(),
                                    [](const auto& x, const auto& y) { return x.second < y.second; });
    a.hls.erase(stalest);
  }
  if (a.ever.size() < size_t(per_address_)) a.ever.insert(id);
  evict_addresses();
}

void ViewerCount::watcher_joined(const std::string& address) {
  Address& a = addresses_[address];
  a.last = Clock::now();
  a.watchers++;
  a.ever_watchers++;
  evict_addresses();
}

void ViewerCount::watcher_left(const std::string& address) {
  auto it = addresses_.find(address);
  if (it != addresses_.end() && it->second.watchers > 0) it->second.watchers--;
}

int ViewerCount::current(Clock::time_point now) const {
  int total = 0;
  for (const auto& [address, a] : addresses_) {
    int live = a.watchers;
    for (const auto& [id, seen] : a.hls) live += now - seen < kHlsWindow;
    total += std::min(live, per_address_);
  }
  return total;
}

int ViewerCount::unique() const {
  int total = unique_evicted_;
  for (const auto& [address, a] : addresses_)
    total += std::min(int(a.ever.size()) + a.ever_watchers, per_address_);
  return total;
}

void ViewerCount::evict_addresses() {
  while (addresses_.size() > max_addresses_) {
    // The address seen longest ago with nobody watching goes.
    auto stalest = addresses_.end();
    for (auto it = addresses_.begin(); it != addresses_.end(); ++it)
      if (it->second.watchers == 0 && (stalest == addresses_.end() || it->second.last < stalest->second.last))
        stalest = it;
    if (stalest == addresses_.end()) return;
    unique_evicted_ += std::min(int(stalest->second.ever.size()) + stalest->second.ever_watchers, per_address_);
    addresses_.erase(stalest);
  }
}

}  // namespace mirage::media
