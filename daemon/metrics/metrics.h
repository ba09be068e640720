// Prometheus metrics of miraged (prometheus-cpp; docs/metrics.md lists
// every one). One registry per process, served by prometheus-cpp's exposer
// on --metrics-addr (off unless set; keep it on loopback or a private
// network: it has no authentication). The API side counts as it goes (the
// calls below, cheap and thread-safe); a worker's numbers are read when
// Prometheus scrapes (WorkerSource), from what the worker already keeps.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}

namespace mirage::metrics {

prometheus::Registry& registry();

// Serves registry() (and the worker collector, if any) at http://ADDR/metrics.
// False with *error when ADDR cannot be bound.
bool start_exposer(const std::string& addr, std::string* error);
void stop_exposer();

// --- the API (miraged serve) ---
// |route| is the route's template ("/api/streams/:username"), never a path
// with a username or an id in it.
void http_request(const std::string& route, const std::string& method, int status, double seconds);
void db_query(double seconds);
void db_pool(int in_use, int size);
void login(const std::string& outcome);         // success, invalid_credentials, rate_limited, invalid
void registration(const std::string& outcome);  // created, taken, rate_limited, invalid
void rate_limited(const std::string& route);    // a 429, by route template
void webhook_event(const std::string& type, const std::string& outcome);

// What PostgreSQL holds for every replica alike, read at scrape time: every
// replica reports the same numbers (aggregate with max, not sum).
struct DatabaseSample {
  int64_t streams_live = 0, streams_started = 0;
  std::vector<std::pair<std::string, int64_t>> streams_ended;  // by end reason
  int64_t seconds_billed = 0, seconds_bought = 0;
};
// Called at most every few seconds (the last answer is reused meanwhile);
// nullopt when the database does not answer (those series are left out).
void set_database_source(std::function<std::optional<DatabaseSample>()> source);

// --- a media worker (miraged worker, or serve --model) ---
struct StreamSample {
  int64_t stream_id = 0;
  double ingest_fps = 0, processed_fps = 0, lag_seconds = 0;
  uint64_t frames_received = 0, frames_processed = 0, frames_dropped = 0, ingest_dropped = 0;
  uint64_t pipeline_restarts = 0;
  int viewers = 0;            // one per viewer (tab), whatever the protocol
  int websocket_viewers = 0;  // open WebSocket frame viewers
  int whep_viewers = 0;       // open WHEP sessions
  int hls_viewers = 0;        // viewers with an HLS request in the last 30 s
  // The element's per-frame inference times: upper bounds (seconds, +Inf
  // implied), cumulative counts (one more than the bounds: the +Inf one),
  // the sum. Empty before the first stats message.
  std::vector<double> inference_bounds;
  std::vector<uint64_t> inference_cumulative;
  double inference_sum = 0;
  // Bytes sent to its viewers for its life on this worker, by protocol
  // (the health's sent_bytes: hls, websocket, whep, thumbnail).
  std::vector<std::pair<std::string, uint64_t>> sent_bytes;
};
struct WorkerSample {
  std::string worker;
  int capacity = 0;
  int streams_placed = 0;
  std::optional<double> heartbeat_age_seconds;
  std::vector<StreamSample> streams;
  // The shared model's calls by batch size, [i]: calls that ran i + 1
  // frames (one model per worker, read once, not per stream).
  std::vector<uint64_t> model_batch_sizes;
};
// Called at each scrape (Prometheus's pace), on the exposer's thread; the
// streams' series are those it returns (a stream that left has none).
void set_worker_source(std::function<WorkerSample()> source);

}  // namespace mirage::metrics
