#include "viewer_count.h"

#include <algorithm>

namespace mirage::media {

std::string ViewerCount::id_of(const char* raw) {
  if (!raw) return "";
  const std::string id = raw;
  if (id.empty() || id.size() > kMaxIdLength) return "";
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return "";
  return id;
}

ViewerCount::Viewer& ViewerCount::seen(Address& a, const std::string& id, Clock::time_point now) {
  a.last = now;
  Viewer& v = a.ids[id];
  v.last = now;
  if (a.ever.size() < size_t(per_address_)) a.ever.insert(id);
  return v;
}

void ViewerCount::hls_seen(const std::string& address, const std::string& id, Clock::time_point now) {
  Address& a = addresses_[address];
  Viewer& v = seen(a, id, now);
  v.hls = now;
  v.hls_seen = true;
  evict_ids(a);
  evict_addresses();
}

void ViewerCount::joined(const std::string& address, const std::string& id, Clock::time_point now) {
  Address& a = addresses_[address];
  if (id.empty()) {
    a.last = now;
    a.anonymous++;
    a.ever_anonymous++;
  } else {
    seen(a, id, now).connections++;
    evict_ids(a);
  }
  evict_addresses();
}

void ViewerCount::left(const std::string& address, const std::string& id) {
  auto it = addresses_.find(address);
  if (it == addresses_.end()) return;
  Address& a = it->second;
  if (id.empty()) {
    if (a.anonymous > 0) a.anonymous--;
    return;
  }
  auto v = a.ids.find(id);
  if (v != a.ids.end() && v->second.connections > 0) v->second.connections--;
}

int ViewerCount::current(Clock::time_point now) const {
  int total = 0;
  for (const auto& [address, a] : addresses_) {
    int n = a.anonymous;
    for (const auto& [id, v] : a.ids) n += live(v, now);
    total += std::min(n, per_address_);
  }
  return total;
}

int ViewerCount::hls_current(Clock::time_point now) const {
  int total = 0;
  for (const auto& [address, a] : addresses_) {
    int n = 0;
    for (const auto& [id, v] : a.ids) n += v.hls_seen && now - v.hls < kHlsWindow;
    total += std::min(n, per_address_);
  }
  return total;
}

int ViewerCount::unique_of(const Address& a) const {
  return std::min(int(a.ever.size()) + a.ever_anonymous, per_address_);
}

int ViewerCount::unique() const {
  int total = unique_evicted_;
  for (const auto& [address, a] : addresses_) total += unique_of(a);
  return total;
}

bool ViewerCount::connected(const Address& a) {
  if (a.anonymous > 0) return true;
  for (const auto& [id, v] : a.ids)
    if (v.connections > 0) return true;
  return false;
}

// Keep the freshest ids only: an address inventing ids cannot grow this.
// Ids with an open connection stay (their number is capped by the media
// port's connections per address).
void ViewerCount::evict_ids(Address& a) {
  while (a.ids.size() > size_t(2 * per_address_)) {
    auto stalest = a.ids.end();
    for (auto it = a.ids.begin(); it != a.ids.end(); ++it)
      if (it->second.connections == 0 && (stalest == a.ids.end() || it->second.last < stalest->second.last))
        stalest = it;
    if (stalest == a.ids.end()) return;
    a.ids.erase(stalest);
  }
}

void ViewerCount::evict_addresses() {
  while (addresses_.size() > max_addresses_) {
    // The address seen longest ago with nobody connected goes.
    auto stalest = addresses_.end();
    for (auto it = addresses_.begin(); it != addresses_.end(); ++it)
      if (!connected(it->second) && (stalest == addresses_.end() || it->second.last < stalest->second.last))
        stalest = it;
    if (stalest == addresses_.end()) return;
    unique_evicted_ += unique_of(stalest->second);
    addresses_.erase(stalest);
  }
}

}  // namespace mirage::media
