// api-bench: requests per second and latency of miraged's hottest
// endpoints, measured on loopback against a throwaway PostgreSQL: the
// daemon runs in-process (8 worker threads), the load generator in this
// process too (8 client threads, one TCP connection per request, like
// browsers without keep-alive).
//
//   api-bench [--seconds N]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "db/migrations.h"
#include "db/pool.h"
#include "http/server.h"
#include "log/log.h"
#include "http_client.h"
#include "logging_media_plane.h"
#include "media/worker.h"
#include "pg_cluster.h"
#include "service/accounts.h"
#include "service/payments.h"
#include "service/streams.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  size_t requests = 0, failures = 0;
  double seconds = 0, p50 = 0, p99 = 0;
};

Result load(int clients, double seconds, const std::function<int()>& request, int expected) {
  std::vector<std::vector<double>> latencies{size_t(clients)};
  std::atomic<size_t> failures{0};
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      while (Clock::now() < end) {
        auto t0 = Clock::now();
        int status = request();
        latencies[size_t(i)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (status != expected) failures++;
      }
    });
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.requests = all.size();
  r.failures = failures;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!all.empty()) {
    r.p50 = all[all.size() / 2];
    r.p99 = all[std::min(all.size() - 1, size_t(double(all.size()) * 0.99))];
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);

  mirage::test::PgCluster cluster;
  mirage::Config config;
  config.database_url = cluster.url();
  config.http_addr = "127.0.0.1:0";
  config.workers = 8;
  {
    mirage::db::Connection c(config.database_url);
    mirage::db::migrate(c, mirage::db::load_migrations(MIRAGE_MIGRATIONS_DIR));
  }
  mirage::db::Pool pool(config.database_url, config.workers + 2);
  mirage::media::LoggingMediaPlane media({"toon"}, true);
  mirage::media::WorkerSettings ws;
  ws.database_url = config.database_url;
  ws.quiet = true;
  ws.registration.name = "bench";
  ws.registration.media_url = "http://127.0.0.1:1";
  ws.registration.capacity = 100;
  ws.registration.model = "none";
  ws.registration.device = "cpu";
  mirage::media::Worker worker(ws, media);
  worker.start();
  mirage::service::AccountSettings account_settings;  // production Argon2id parameters
  account_settings.login_failures_per_user = 1 << 30;
  mirage::service::Accounts accounts(pool, account_settings);
  mirage::service::StreamSettings stream_settings;
  stream_settings.comments_per_window = 1 << 30;
  mirage::service::Streams streams(pool, stream_settings);
  mirage::payments::StripeClient stripe({});
  mirage::service::Payments payments(pool, stripe, {});
  mirage::http::ApiServer server(config, accounts, streams, payments);
  {
    mirage::log::Settings s;  // no request lines but in the rows that measure them
    s.level = mirage::log::Level::kWarn;
    mirage::log::configure(s);
  }
  server.start();
  const uint16_t port = server.port();

  accounts.register_user("bench", "bench@example.org", "bench-password", "127.0.0.1");
  accounts.grant("bench", 10, "bench");
  const std::string token = accounts.login("bench", "bench-password", "127.0.0.1").token;
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + token}};
  mirage::test::http(port, "POST", "/api/streams", R"({"title":"bench"})", auth);

  std::printf("\n## miraged API on loopback (%u hardware threads; 8 server workers, 8 clients, %.0f s each)\n\n",
              std::thread::hardware_concurrency(), seconds);
  std::printf("| endpoint | requests | failed | requests/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|\n");
  struct Case {
    const char* name;
    std::function<int()> request;
    int expected;
  };
  std::vector<Case> cases = {
      {"GET /api/streams/{username}", [&] { return mirage::test::http(port, "GET", "/api/streams/bench").status; }, 200},
      {"POST /api/streams/{username}/comments",
       [&] { return mirage::test::http(port, "POST", "/api/streams/bench/comments", R"({"text":"hello"})", auth).status; },
       201},
      {"POST /api/auth/login (Argon2id 19 MiB, t=2)",
       [&] {
         return mirage::test::http(port, "POST", "/api/auth/login",
                                   R"({"username":"bench","password":"bench-password"})").status;
       },
       200},
  };
  // The log's cost per request: the rows above and below run at warn (no
  // request lines); these write a line per request, as `log_level = info`
  // does in production, to a file (stderr stays for the tables).
  const std::string log_file = "/tmp/mirage-api-bench-" + std::to_string(getpid()) + ".log";
  auto quiet = [] {
    mirage::log::Settings s;
    s.level = mirage::log::Level::kWarn;
    mirage::log::configure(s);
  };
  auto logging = [&](mirage::log::Format format) {
    mirage::log::Settings s;
    s.format = format;
    s.copy_to = log_file;
    s.to_stderr = false;
    mirage::log::configure(s);
  };
  quiet();
  for (const Case& c : cases) {
    Result r = load(8, seconds, c.request, c.expected);
    std::printf("| %s | %zu | %zu | %.0f | %.2f | %.2f |\n", c.name, r.requests, r.failures,
                double(r.requests) / r.seconds, r.p50, r.p99);
    std::fflush(stdout);
  }
  for (auto [format, label] : {std::pair{mirage::log::Format::kLogfmt, "logfmt"}, std::pair{mirage::log::Format::kJson, "JSON"}}) {
    logging(format);
    Result r = load(8, seconds, cases[0].request, cases[0].expected);
    quiet();
    std::printf("| %s, a %s log line per request | %zu | %zu | %.0f | %.2f | %.2f |\n", cases[0].name, label, r.requests,
                r.failures, double(r.requests) / r.seconds, r.p50, r.p99);
    std::fflush(stdout);
  }
  unlink(log_file.c_str());

  // Placement: each client its own streamer, going live and stopping in a
  // loop (the worker's row locked, the streams on it counted, the stream
  // inserted, NOTIFY; then the stop's billing), against one worker and then
  // against four (each a Worker thread of this process that reconciles what
  // it is given, as a real worker would). The start alone is timed too.
  std::vector<std::map<std::string, std::string>> streamers;
  for (int i = 0; i < 8; ++i) {
    const std::string name = "streamer" + std::to_string(i);
    accounts.register_user(name, name + "@example.org", "bench-password", "127.0.0.1");
    accounts.grant(name, 1000, "bench");
    streamers.push_back({{"Authorization", "Bearer " + accounts.login(name, "bench-password", "127.0.0.1").token}});
  }
  std::printf("\n## Placement: POST /api/streams then POST /api/streams/current/stop, 8 streamers at once\n\n");
  std::printf("| live workers | cycles | failed | cycles/s | cycle p50 ms | cycle p99 ms | start p50 ms | start p99 ms |\n"
              "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::vector<std::unique_ptr<mirage::media::LoggingMediaPlane>> planes;
  std::vector<std::unique_ptr<mirage::media::Worker>> more;
  for (int workers : {1, 4}) {
    while (int(more.size()) + 1 < workers) {
      planes.push_back(std::make_unique<mirage::media::LoggingMediaPlane>(std::vector<std::string>{"toon"}, true));
      ws.registration.name = "bench" + std::to_string(more.size() + 2);
      more.push_back(std::make_unique<mirage::media::Worker>(ws, *planes.back()));
      more.back()->start();
    }
    for (auto& w : more) w->sync();
    std::atomic<int> next{0};
    std::mutex mutex;
    std::vector<double> starts;
    Result r = load(8, seconds, [&] {
      thread_local int mine = next++;
      const auto& auth = streamers[size_t(mine)];
      const auto t0 = Clock::now();
      const int status = mirage::test::http(port, "POST", "/api/streams", R"({"title":"cycle"})", auth).status;
      {
        std::lock_guard<std::mutex> lock(mutex);
        starts.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      if (status != 201) return 0;
      return mirage::test::http(port, "POST", "/api/streams/current/stop", "", auth).status;
    }, 200);
    std::sort(starts.begin(), starts.end());
    std::printf("| %d | %zu | %zu | %.0f | %.2f | %.2f | %.2f | %.2f |\n", workers, r.requests, r.failures,
                double(r.requests) / r.seconds, r.p50, r.p99, starts[starts.size() / 2],
                starts[std::min(starts.size() - 1, size_t(double(starts.size()) * 0.99))]);
    std::fflush(stdout);
  }
  server.shutdown();
  return 0;
}
