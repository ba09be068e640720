// Turns what a worker must run (its rows in PostgreSQL, repo::PlacedStream)
// into MediaPlane calls: start what is new, stop what ended, pass on a new
// secret or style. Each pass compares the rows with what it applied before,
// so it can run as often as wanted (on every NOTIFY, and every few seconds
// in case one was lost) and a pass after a reconnect catches up on
// everything. One thread uses it (the worker's).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "media/media_plane.h"
#include "repo/workers.h"

namespace mirage::media {

class Reconciler {
 public:
  explicit Reconciler(MediaPlane& media) : media_(media) {}

  // |rows|: repo::worker_streams(worker, running()).
  void apply(const std::vector<repo::PlacedStream>& rows);
  // The streams started here and not stopped since.
  std::vector<int64_t> running() const;
  // Stops |stream_id| here now (the worker ended it itself: ingest silent,
  // pipeline failing, shutdown).
  void stop(int64_t stream_id, const std::string& reason);
  // A draining worker keeps running a stream it handed to another worker
  // (its row says "moved") until that one's pipeline is ready; stop() ends
  // the hold.
  void hold(int64_t stream_id) { held_.insert(stream_id); }
  // The id of the API request that started |stream_id| ("" if unknown),
  // for log lines about it.
  std::string request_id(int64_t stream_id) const;

 private:
  struct Applied {
    std::string secret, style;
    double strength = -1;  // none applied yet
    std::string request_id;
  };
  MediaPlane& media_;
  std::map<int64_t, Applied> running_;
  std::set<int64_t> held_;
};

}  // namespace mirage::media
