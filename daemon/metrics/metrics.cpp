#include "metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <deque>
#include <iterator>
#include <limits>
#include <mutex>

namespace mirage::metrics {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Latency buckets of requests and queries: 1 ms to 10 s.
const prometheus::Histogram::BucketBoundaries kLatency = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,   0.25,   0.5,   1,    2.5,   5, 10};
// Frames per model call: 1 up to diffusionfilter's largest max-batch (64).
constexpr int kBatchBounds[] = {1, 2, 4, 8, 16, 32, 64};

struct Families {
  prometheus::Family<prometheus::Counter>& http_requests;
  prometheus::Family<prometheus::Histogram>& http_duration;
  prometheus::Histogram& db_query;
  prometheus::Family<prometheus::Gauge>& db_pool;
  prometheus::Family<prometheus::Counter>& logins;
  prometheus::Family<prometheus::Counter>& registrations;
  prometheus::Family<prometheus::Counter>& rate_limited;
  prometheus::Family<prometheus::Counter>& webhooks;
};

Families& families() {
  static Families f{
      BuildCounter().Name("mirage_http_requests_total").Help("REST requests answered, by route template, method and status").Register(registry()),
      BuildHistogram().Name("mirage_http_request_duration_seconds").Help("REST request handling time, by route template and method").Register(registry()),
      BuildHistogram().Name("mirage_db_query_duration_seconds").Help("PostgreSQL statement time, as the client sees it").Register(registry()).Add({}, kLatency),
      BuildGauge().Name("mirage_db_pool_connections").Help("Database connections of the request pool, by state (in_use, idle)").Register(registry()),
      BuildCounter().Name("mirage_logins_total").Help("Login attempts, by outcome").Register(registry()),
      BuildCounter().Name("mirage_registrations_total").Help("Sign-up attempts, by outcome").Register(registry()),
      BuildCounter().Name("mirage_rate_limited_total").Help("Requests refused by a rate limit (429), by route template").Register(registry()),
      BuildCounter().Name("mirage_webhook_events_total").Help("Stripe webhook events, by type and outcome").Register(registry()),
  };
  return f;
}

// A worker's numbers, read at scrape time from what it keeps anyway.
class WorkerCollector : public prometheus::Collectable {
 public:
  void set(std::function<WorkerSample()> source) {
    std::lock_guard<std::mutex> lock(mutex_);
    source_ = std::move(source);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::function<WorkerSample()> source;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      source = source_;
    }
    if (!source) return {};
    const WorkerSample w = source();
    std::deque<prometheus::MetricFamily> out;  // family() hands out references: a deque keeps them valid
    auto family = [&](const char* name, const char* help, prometheus::MetricType type) -> prometheus::MetricFamily& {
      out.push_back({name, help, type, {}});
      return out.back();
    };
    auto gauge = [](prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels, double v) {
      prometheus::ClientMetric m;
      m.label = std::move(labels);
      m.gauge.value = v;
      f.metric.push_back(m);
    };
    auto counter = [](prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels, double v) {
      prometheus::ClientMetric m;
      m.label = std::move(labels);
      m.counter.value = v;
      f.metric.push_back(m);
    };
    const prometheus::ClientMetric::Label worker{"worker", w.worker};
    gauge(family("mirage_worker_capacity", "Live streams this worker accepts", prometheus::MetricType::Gauge), {worker},
          w.capacity);
    gauge(family("mirage_worker_streams", "Streams placed on this worker", prometheus::MetricType::Gauge), {worker},
          w.streams_placed);
    auto& age = family("mirage_worker_heartbeat_age_seconds",
                       "Seconds since this worker's heartbeat last reached PostgreSQL", prometheus::MetricType::Gauge);
    if (w.heartbeat_age_seconds) gauge(age, {worker}, *w.heartbeat_age_seconds);

    auto& ingest_fps = family("mirage_stream_ingest_fps", "Frames per second decoded from the publisher", prometheus::MetricType::Gauge);
    auto& processed_fps = family("mirage_stream_processed_fps", "Frames per second the model processed", prometheus::MetricType::Gauge);
    auto& lag = family("mirage_stream_lag_seconds", "Age of the newest processed frame's input when it left the model", prometheus::MetricType::Gauge);
    auto& received = family("mirage_stream_received_frames_total", "Frames received from the publisher", prometheus::MetricType::Counter);
    auto& processed = family("mirage_stream_processed_frames_total", "Frames the model processed", prometheus::MetricType::Counter);
    auto& dropped = family("mirage_stream_dropped_frames_total", "Frames the leaky slot dropped (a newer one replaced them)", prometheus::MetricType::Counter);
    auto& ingest_dropped = family("mirage_stream_ingest_dropped_frames_total", "Frames dropped by the full ingest queue", prometheus::MetricType::Counter);
    auto& restarts = family("mirage_stream_pipeline_restarts_total", "Times the stream's pipeline was rebuilt after an error", prometheus::MetricType::Counter);
    auto& viewers = family("mirage_stream_viewers", "Viewers of the stream as counted (one per tab, any protocol)", prometheus::MetricType::Gauge);
    auto& connections = family("mirage_stream_viewer_connections", "Open viewer connections of the stream, by protocol (websocket, whep)", prometheus::MetricType::Gauge);
    auto& hls_viewers = family("mirage_stream_hls_viewers", "Viewers of the stream watching over HLS (a request in the last 30 s)", prometheus::MetricType::Gauge);
    auto& inference = family("mirage_stream_inference_seconds", "Model time per processed frame", prometheus::MetricType::Histogram);
    auto& sent = family("mirage_stream_sent_bytes_total", "Bytes sent to the stream's viewers, by protocol (hls, websocket, whep, thumbnail)", prometheus::MetricType::Counter);
    for (const StreamSample& s : w.streams) {
      const prometheus::ClientMetric::Label id{"stream_id", std::to_string(s.stream_id)};
      gauge(ingest_fps, {id}, s.ingest_fps);
      gauge(processed_fps, {id}, s.processed_fps);
      gauge(lag, {id}, s.lag_seconds);
      counter(received, {id}, double(s.frames_received));
      counter(processed, {id}, double(s.frames_processed));
      counter(dropped, {id}, double(s.frames_dropped));
      counter(ingest_dropped, {id}, double(s.ingest_dropped));
      counter(restarts, {id}, double(s.pipeline_restarts));
      gauge(viewers, {id}, s.viewers);
      gauge(connections, {id, {"protocol", "websocket"}}, s.websocket_viewers);
      gauge(connections, {id, {"protocol", "whep"}}, s.whep_viewers);
      gauge(hls_viewers, {id}, s.hls_viewers);
      if (s.inference_cumulative.size() == s.inference_bounds.size() + 1) {
        prometheus::ClientMetric m;
        m.label = {id};
        m.histogram.sample_count = s.inference_cumulative.back();
        m.histogram.sample_sum = s.inference_sum;
        for (size_t i = 0; i < s.inference_bounds.size(); ++i)
          m.histogram.bucket.push_back({s.inference_cumulative[i], s.inference_bounds[i]});
        m.histogram.bucket.push_back({s.inference_cumulative.back(), std::numeric_limits<double>::infinity()});
        inference.metric.push_back(m);
      }
      for (const auto& [protocol, bytes] : s.sent_bytes) counter(sent, {id, {"protocol", protocol}}, double(bytes));
    }
    // One histogram for the worker's one model: each call observed once, as
    // the number of frames it ran.
    {
      const std::vector<uint64_t>& calls = w.model_batch_sizes;  // [i]: calls that ran i + 1 frames
      auto up_to = [&calls](double bound) {
        uint64_t n = 0;
        for (size_t i = 0; i < calls.size() && double(i + 1) <= bound; ++i) n += calls[i];
        return n;
      };
      const double inf = std::numeric_limits<double>::infinity();
      prometheus::ClientMetric m;
      for (int bound : kBatchBounds) m.histogram.bucket.push_back({up_to(bound), double(bound)});
      m.histogram.sample_count = up_to(inf);
      m.histogram.bucket.push_back({m.histogram.sample_count, inf});
      for (size_t i = 0; i < calls.size(); ++i) m.histogram.sample_sum += double(i + 1) * double(calls[i]);
      family("mirage_model_batch_size", "Frames per call of the worker's shared model (one observation per call)",
             prometheus::MetricType::Histogram)
          .metric.push_back(m);
    }
    return {std::make_move_iterator(out.begin()), std::make_move_iterator(out.end())};
  }

 private:
  mutable std::mutex mutex_;
  std::function<WorkerSample()> source_;
};

// The totals PostgreSQL holds, re-read at most every five seconds.
class DatabaseCollector : public prometheus::Collectable {
 public:
  void set(std::function<std::optional<DatabaseSample>()> source) {
    std::lock_guard<std::mutex> lock(mutex_);
    source_ = std::move(source);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!source_) return {};
    const auto now = std::chrono::steady_clock::now();
    if (!last_ || now - read_at_ > std::chrono::seconds(5)) {
      last_ = source_();
      read_at_ = now;
    }
    if (!last_) return {};
    const DatabaseSample& d = *last_;
    auto one = [](const char* name, const char* help, prometheus::MetricType type, double v) {
      prometheus::MetricFamily f{name, help, type, {}};
      prometheus::ClientMetric m;
      (type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value) = v;
      f.metric.push_back(m);
      return f;
    };
    std::vector<prometheus::MetricFamily> out;
    out.push_back(one("mirage_streams_live", "Live streams (PostgreSQL: the same on every replica)",
                      prometheus::MetricType::Gauge, double(d.streams_live)));
    out.push_back(one("mirage_streams_started_total", "Streams ever started (PostgreSQL)", prometheus::MetricType::Counter,
                      double(d.streams_started)));
    prometheus::MetricFamily ended{"mirage_streams_ended_total", "Streams ended, by end reason (PostgreSQL)",
                                   prometheus::MetricType::Counter, {}};
    for (const auto& [reason, n] : d.streams_ended) {
      prometheus::ClientMetric m;
      m.label = {{"reason", reason}};
      m.counter.value = double(n);
      ended.metric.push_back(m);
    }
    out.push_back(ended);
    out.push_back(one("mirage_credits_billed_seconds_total", "Streaming time billed, in seconds (1 credit = 600 s; PostgreSQL)",
                      prometheus::MetricType::Counter, double(d.seconds_billed)));
    out.push_back(one("mirage_credits_bought_seconds_total", "Streaming time bought and credited, in seconds (PostgreSQL)",
                      prometheus::MetricType::Counter, double(d.seconds_bought)));
    return out;
  }

 private:
  mutable std::mutex mutex_;  // one read at a time; guards the fields below
  std::function<std::optional<DatabaseSample>()> source_;
  mutable std::optional<DatabaseSample> last_;
  mutable std::chrono::steady_clock::time_point read_at_;
};

std::shared_ptr<DatabaseCollector>& database_collector() {
  static auto c = std::make_shared<DatabaseCollector>();
  return c;
}

std::shared_ptr<prometheus::Registry>& registry_ptr() {
  static auto r = std::make_shared<prometheus::Registry>();
  return r;
}

std::shared_ptr<WorkerCollector>& worker_collector() {
  static auto c = std::make_shared<WorkerCollector>();
  return c;
}

std::mutex exposer_mutex;
std::unique_ptr<prometheus::Exposer> exposer;

}  // namespace

prometheus::Registry& registry() { return *registry_ptr(); }

bool start_exposer(const std::string& addr, std::string* error) {
  std::lock_guard<std::mutex> lock(exposer_mutex);
  try {
    families();  // every family exists, at zero, from the first scrape
    exposer = std::make_unique<prometheus::Exposer>(addr, 1);
    exposer->RegisterCollectable(registry_ptr());
    exposer->RegisterCollectable(worker_collector());
    exposer->RegisterCollectable(database_collector());
    return true;
  } catch (const std::exception& e) {
    *error = "cannot serve metrics on " + addr + ": " + e.what();
    return false;
  }
}

void stop_exposer() {
  std::lock_guard<std::mutex> lock(exposer_mutex);
  exposer.reset();
}

void http_request(const std::string& route, const std::string& method, int status, double seconds) {
  auto& f = families();
  f.http_requests.Add({{"route", route}, {"method", method}, {"status", std::to_string(status)}}).Increment();
  f.http_duration.Add({{"route", route}, {"method", method}}, kLatency).Observe(seconds);
}

void db_query(double seconds) { families().db_query.Observe(seconds); }

void db_pool(int in_use, int size) {
  families().db_pool.Add({{"state", "in_use"}}).Set(in_use);
  families().db_pool.Add({{"state", "idle"}}).Set(size - in_use);
}

void login(const std::string& outcome) { families().logins.Add({{"outcome", outcome}}).Increment(); }
void registration(const std::string& outcome) { families().registrations.Add({{"outcome", outcome}}).Increment(); }
void rate_limited(const std::string& route) { families().rate_limited.Add({{"route", route}}).Increment(); }
void webhook_event(const std::string& type, const std::string& outcome) {
  families().webhooks.Add({{"type", type}, {"outcome", outcome}}).Increment();
}

void set_worker_source(std::function<WorkerSample()> source) { worker_collector()->set(std::move(source)); }

void set_database_source(std::function<std::optional<DatabaseSample>()> source) {
  database_collector()->set(std::move(source));
}

}  // namespace mirage::metrics
