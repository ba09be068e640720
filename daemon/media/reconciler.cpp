#include "reconciler.h"

namespace mirage::media {

void Reconciler::apply(const std::vector<repo::PlacedStream>& rows) {
  std::set<int64_t> seen;
  for (const auto& row : rows) {
    seen.insert(row.id);
    auto it = running_.find(row.id);
    if (!row.live) {
      if (row.end_reason == "moved" && held_.count(row.id)) continue;
      if (it != running_.end()) stop(row.id, row.end_reason.empty() ? "stopped" : row.end_reason);
      continue;
    }
    if (it == running_.end()) {
      media_.stream_started({row.id, row.username, row.secret, row.request_id});
      it = running_.emplace(row.id, Applied{row.secret, "", -1, row.request_id}).first;
    } else if (it->second.secret != row.secret) {
      media_.secret_changed(row.id, row.secret);
      it->second.secret = row.secret;
    }
    if (it->second.style != row.style) {
      media_.apply_style(row.id, row.style);
      it->second.style = row.style;
    }
    if (it->second.strength != row.strength) {
      media_.apply_strength(row.id, row.strength);
      it->second.strength = row.strength;
    }
  }
  // Running here but no longer placed here (the row went or moved).
  for (int64_t id : running())
    if (!seen.count(id)) stop(id, "stopped");
}

std::vector<int64_t> Reconciler::running() const {
  std::vector<int64_t> ids;
  for (const auto& [id, applied] : running_) ids.push_back(id);
  return ids;
}

std::string Reconciler::request_id(int64_t stream_id) const {
  auto it = running_.find(stream_id);
  return it == running_.end() ? "" : it->second.request_id;
}

void Reconciler::stop(int64_t stream_id, const std::string& reason) {
  held_.erase(stream_id);
  if (running_.erase(stream_id)) media_.stream_stopped(stream_id, reason);
}

}  // namespace mirage::media
