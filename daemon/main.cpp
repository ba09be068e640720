// miraged: the Mirage daemon.
//
//   miraged serve [settings]                 REST API; migrates first. With
//                                            --model, a media worker inside it
//   miraged worker --model M [settings]      a media worker only (one per GPU)
//   miraged migrate [settings]               apply pending SQL migrations
//   miraged credits grant USERNAME N --reason TEXT [settings]
//
// Settings come from flags, then the environment, then a config file; see
// `miraged --help` (config.cpp).
#include <gst/gst.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include <rapidjson/document.h>

#include "config.h"
#include "db/connection.h"
#include "db/migrations.h"
#include "db/pool.h"
#include "http/server.h"
#include "log/log.h"
#include "media/log_bridge.h"
#include "media/media_server.h"
#include "media/worker.h"
#include "metrics/metrics.h"
#include "repo/totals.h"
#include "service/accounts.h"
#include "service/error.h"
#include "service/payments.h"
#include "service/readiness.h"
#include "service/streams.h"
#include "service/timers.h"

namespace {

// What the daemon reads besides its settings (migrations, pipeline
// templates, the plugin) is found next to the executable when it runs from
// an installed tree (`meson install`, also under --destdir or a moved
// prefix): MIRAGE_INSTALLED_* are paths relative to the binary's folder
// (absolute when bindir or datadir is). Else, for the binary in build/, the
// source tree it was built from.
std::string installed_or(const char* installed, const char* fallback) {
  std::string candidate = installed;
  if (candidate.empty() || candidate.front() != '/') {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return fallback;
    std::string path(exe, size_t(n));
    candidate = path.substr(0, path.rfind('/')) + "/" + candidate;
  }
  char resolved[PATH_MAX];
  struct stat st{};
  if (!realpath(candidate.c_str(), resolved) || stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) return fallback;
  return resolved;
}

// The installed plugin is registered by hand: GStreamer scans its own
// system folder and GST_PLUGIN_PATH, not our prefix (/usr/local/lib/...).
void register_installed_plugin() {
  std::string dir = installed_or(MIRAGE_INSTALLED_PLUGINDIR, "");
  if (dir.empty()) return;
  gst_registry_scan_path(gst_registry_get(), dir.c_str());
  mirage::log::info("plugins from the installed plugin folder " + dir, {{"dir", dir}});
}

int usage(FILE* out) {
  std::fprintf(out,
               "usage: miraged serve [settings]              the REST API (and a media worker with --model)\n"
               "       miraged worker --model M [settings]   a media worker\n"
               "       miraged worker drain NAME [settings]  moves worker NAME's streams away; it then exits\n"
               "       miraged migrate [settings]\n"
               "       miraged credits grant USERNAME N --reason TEXT [settings]\n"
               "\n"
               "settings (flag, environment variable; flags win, then the environment, then --config):\n%s",
               mirage::config_help().c_str());
  return out == stdout ? 0 : 2;
}

// SIGINT/SIGTERM received so far (a worker drains on the first and stops at
// once on the second).
std::atomic<int> g_signals{0};
void on_signal(int) { g_signals.fetch_add(1); }

// `miraged migrate` says what it did on stdout; serve and worker log it.
void run_migrations(const mirage::Config& config, bool to_log) {
  mirage::db::Connection connection(config.database_url);
  auto applied = mirage::db::migrate(connection, mirage::db::load_migrations(config.migrations_dir));
  if (to_log) {
    for (const auto& name : applied) mirage::log::info("migration applied", {{"migration", name}});
    mirage::log::info("database is up to date (migrations in " + config.migrations_dir + ")",
                      {{"applied", applied.size()}, {"dir", config.migrations_dir}});
    return;
  }
  for (const auto& name : applied) std::printf("applied %s\n", name.c_str());
  std::printf("database is up to date (%zu applied now; migrations in %s)\n", applied.size(),
              config.migrations_dir.c_str());
  std::fflush(stdout);
}

// glibc's allocator, tuned for a long-lived daemon with many threads: at
// most 4 arenas (not 8 per core), and allocations from 128 KiB up always
// mmap()ed and so returned to the system when freed. glibc otherwise raises
// that threshold after the first large free, and bursts of large requests
// then fragment the heap for good (the abuse benchmark measured RSS 270 MiB
// at rest with the defaults, 195 MiB with these, and less growth under load).
void tune_malloc() {
  mallopt(M_ARENA_MAX, 4);
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024);
}

std::string machine_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

// What clients are told: the setting, or scheme://host:port of the address
// it listens on (the machine's name for a wildcard address); "" when that
// listener is off.
std::string public_url(const std::string& setting, const std::string& scheme, const std::string& addr, unsigned port) {
  if (!setting.empty()) return setting;
  if (addr.empty() || port == 0) return "";
  std::string host = addr.substr(0, addr.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") host = machine_name();
  return scheme + "://" + host + ":" + std::to_string(port);
}

// The worker's numbers for Prometheus, read at each scrape from what it
// reports anyway (each stream's health JSON, its viewer count).
void set_worker_metrics(mirage::media::MediaServer& server, mirage::media::Worker& worker, const std::string& name,
                        int capacity) {
  mirage::metrics::set_worker_source([&server, &worker, name, capacity] {
    mirage::metrics::WorkerSample w;
    w.worker = name;
    w.capacity = capacity;
    w.heartbeat_age_seconds = worker.heartbeat_age_seconds();
    const auto ids = server.local_streams();
    w.streams_placed = int(ids.size());
    for (int64_t id : ids) {
      rapidjson::Document h;
      const std::string json = server.health(id);
      h.Parse(json.c_str(), json.size());
      if (h.HasParseError() || !h.IsObject()) continue;
      auto num = [&h](const char* key) { return h.HasMember(key) && h[key].IsNumber() ? h[key].GetDouble() : 0.0; };
      mirage::metrics::StreamSample s;
      s.stream_id = id;
      s.ingest_fps = num("ingest_fps");
      s.processed_fps = num("processed_fps");
      s.lag_seconds = num("lag_ms") / 1000;
      s.frames_received = uint64_t(num("frames_received"));
      s.frames_processed = uint64_t(num("frames_processed"));
      s.frames_dropped = uint64_t(num("frames_dropped"));
      s.ingest_dropped = uint64_t(num("ingest_dropped"));
      s.pipeline_restarts = uint64_t(num("restarts_total"));
      s.viewers = server.viewers(id);
      s.websocket_viewers = int(num("websocket_viewers"));
      s.whep_viewers = int(num("whep_viewers"));
      s.hls_viewers = int(num("hls_viewers"));
      if (h.HasMember("inference_histogram") && h["inference_histogram"].IsObject()) {
        const auto& hist = h["inference_histogram"];
        if (hist.HasMember("le_ms") && hist["le_ms"].IsArray() && hist.HasMember("counts") && hist["counts"].IsArray()) {
          uint64_t cumulative = 0;
          for (const auto& b : hist["le_ms"].GetArray()) s.inference_bounds.push_back(b.GetDouble() / 1000);
          for (const auto& c : hist["counts"].GetArray()) s.inference_cumulative.push_back(cumulative += c.GetUint64());
          if (hist.HasMember("sum_ms") && hist["sum_ms"].IsNumber()) s.inference_sum = hist["sum_ms"].GetDouble() / 1000;
        }
      }
      for (const char* protocol : {"hls", "websocket", "whep", "thumbnail"})
        if (h.HasMember("sent_bytes") && h["sent_bytes"].IsObject() && h["sent_bytes"].HasMember(protocol) &&
            h["sent_bytes"][protocol].IsUint64())
          s.sent_bytes.emplace_back(protocol, h["sent_bytes"][protocol].GetUint64());
      w.streams.push_back(std::move(s));
    }
    // Read after the streams: the model counts a call before the streams
    // count its frames, so its frames never trail theirs in one scrape.
    w.model_batch_sizes = server.model_batch_sizes();
    return w;
  });
}

// A media worker: the media server (protocol servers, pipelines, the model)
// and its link to the control plane through PostgreSQL.
struct MediaProcess {
  std::unique_ptr<mirage::media::MediaServer> server;
  std::unique_ptr<mirage::media::Worker> worker;
};

std::optional<MediaProcess> start_media_worker(const mirage::Config& config) {
  gst_init(nullptr, nullptr);
  mirage::media::route_library_logs();
  register_installed_plugin();
  mirage::media::MediaSettings m;
  m.addr = config.media_addr;
  m.srt_addr = config.srt_addr;
  m.rtsp_addr = config.rtsp_addr;
  m.srt_passphrase = config.srt_passphrase;
  m.templates_dir = config.pipelines_dir.empty() ? installed_or(MIRAGE_INSTALLED_PIPELINES, MIRAGE_PIPELINES_DIR)
                                                 : config.pipelines_dir;
  mirage::log::info("pipeline templates in " + m.templates_dir, {{"dir", m.templates_dir}});
  m.hls_root = config.hls_dir;
  m.model = config.model;
  m.device = config.device;
  m.width = config.media_width;
  m.height = config.media_height;
  m.fps = config.media_fps;
  m.silence_seconds = config.ingest_silence_seconds;
  m.max_ingest_width = config.max_ingest_width;
  m.max_ingest_height = config.max_ingest_height;
  m.connections_per_address = config.media_connections_per_address;
  m.max_connections = config.max_connections;
  m.idle_timeout_seconds = config.media_idle_timeout_seconds;
  m.hls_viewers_per_address = config.hls_viewers_per_address;
  m.trusted_proxies = config.trusted_proxies;
  // WebRTC gathers candidates on the media port's address only (loopback in
  // tests and ./dev run), unless told otherwise; never on every interface.
  std::string ice_addresses = config.ice_addresses;
  if (ice_addresses.empty()) {
    std::string host = config.media_addr.substr(0, config.media_addr.rfind(':'));
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const bool wildcard = host.empty() || host == "0.0.0.0" || host == "::";
    if (wildcard) mirage::log::warn("media_addr is a wildcard: WebRTC uses 127.0.0.1 until --ice-addresses is set");
    ice_addresses = wildcard ? "127.0.0.1" : host;
  }
  std::string ice_error;
  if (!mirage::media::parse_ice_settings(ice_addresses, config.ice_servers, config.ice_port_range, config.ice_public_ip,
                                         &m.ice, &ice_error)) {
    mirage::log::error(ice_error);
    return std::nullopt;
  }
  MediaProcess w;
  w.server = std::make_unique<mirage::media::MediaServer>(m);
  std::string error;
  if (!w.server->start(&error)) {
    mirage::log::error(error);
    return std::nullopt;
  }
  mirage::media::WorkerSettings ws;
  ws.database_url = config.database_url;
  ws.timeout_seconds = config.worker_timeout_seconds;
  ws.drain_seconds = config.drain_seconds;
  auto& r = ws.registration;
  r.name = config.worker_name.empty() ? machine_name() : config.worker_name;
  r.media_url = public_url(config.public_media_url, "http", config.media_addr, w.server->port());
  w.server->set_public_url(r.media_url);
  r.srt_url = public_url(config.public_srt_url, "srt", config.srt_addr, w.server->srt_port());
  r.rtsp_url = public_url(config.public_rtsp_url, "rtsp", config.rtsp_addr, w.server->rtsp_port());
  r.srt_passphrase = config.srt_passphrase;
  r.capacity = config.capacity;
  r.model = config.model;
  r.device = config.device;
  r.styles = w.server->styles();
  std::string styles;
  for (const auto& s : r.styles) styles += (styles.empty() ? "" : ", ") + s;
  w.worker = std::make_unique<mirage::media::Worker>(ws, *w.server);
  try {
    w.worker->start();
  } catch (const std::exception& e) {
    mirage::log::error(std::string("worker: ") + e.what());
    return std::nullopt;
  }
  // The media port's /readyz, answered on its loop without database I/O:
  // the model loaded (start() read its styles, or failed), and the last
  // heartbeat reached PostgreSQL within the timeout (so the database
  // answers, and the API counts this worker as live).
  {
    auto* worker = w.worker.get();
    const int timeout = config.worker_timeout_seconds;
    const std::string model = "loaded " + r.model + " on " + r.device + " (" + std::to_string(r.styles.size()) + " styles)";
    const int migration = mirage::service::newest_migration(config.migrations_dir);
    w.server->set_readiness([worker, timeout, model, migration] {
      std::vector<mirage::service::Check> checks{{"model", true, model}};
      const auto age = worker->heartbeat_age_seconds();
      char detail[96];
      if (!age) std::snprintf(detail, sizeof detail, "no heartbeat yet");
      else std::snprintf(detail, sizeof detail, "the last heartbeat reached PostgreSQL %.1f s ago (timeout %d s)", *age, timeout);
      checks.push_back({"heartbeat", age && *age < timeout, detail});
      checks.push_back({"migrations", true, "applied up to " + std::to_string(migration) + " at start"});
      bool ready = false;
      std::string body = mirage::service::readiness_json(checks, &ready);
      return std::make_pair(ready, body);
    });
  }
  set_worker_metrics(*w.server, *w.worker, r.name, r.capacity);
  mirage::log::info("media worker '" + r.name + "' on " + config.media_addr,
                    {{"worker", r.name}, {"media_port", w.server->port()}, {"media_url", r.media_url},
                     {"srt_port", w.server->srt_port()}, {"rtsp_port", w.server->rtsp_port()},
                     {"capacity", r.capacity}, {"model", r.model}, {"device", r.device},
                     {"styles", styles.empty() ? "none" : styles}});
  return w;
}

// `miraged worker`: the media plane alone, until it is drained (SIGTERM or
// `miraged worker drain NAME`: its streams move to other workers, those
// left after --drain-seconds end) or another process takes its name. A
// second SIGTERM stops it at once (its streams end, billed up to then).
int work(const mirage::Config& config) {
  tune_malloc();
  if (config.model.empty()) {
    mirage::log::error("a worker needs --model (or MIRAGE_MODEL)");
    return 2;
  }
  run_migrations(config, true);
  auto media = start_media_worker(config);
  if (!media) return 1;
  const auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); };
  while (!g_signals && media->worker->running() && !media->worker->drained()) pause();
  const bool replaced = !media->worker->running();
  if (!replaced && !media->worker->drained()) {
    mirage::log::info("draining (again to stop at once)");
    const int signals = g_signals;
    media->worker->drain();
    // The worker ends what it could not move after --drain-seconds; this
    // bound is for a drain that cannot even start (the database is down).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config.drain_seconds + 10);
    while (g_signals == signals && media->worker->running() && !media->worker->drained() &&
           std::chrono::steady_clock::now() < deadline)
      pause();
  }
  mirage::log::info("worker stopping");
  media->worker->stop("shutdown");
  // No scrape reads the server from here on (set() waits for one under way).
  mirage::metrics::set_worker_source(nullptr);
  media->server.reset();  // pipelines down
  return replaced ? 1 : 0;
}

// `miraged worker drain NAME`: marks the worker draining (it moves its
// streams and exits) and waits until it has, printing what is left.
int drain(const mirage::Config& config, const std::string& name) {
  mirage::db::Connection c(config.database_url);
  auto id = mirage::repo::drain_worker(c, name, config.worker_timeout_seconds);
  if (!id) {
    std::fprintf(stderr, "miraged: no live worker named '%s'\n", name.c_str());
    return 1;
  }
  std::printf("miraged: worker '%s' is draining\n", name.c_str());
  std::fflush(stdout);
  // Its own --drain-seconds bounds it; this waits that long and a margin.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::seconds(config.drain_seconds + config.worker_timeout_seconds + 10);
  long long last = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.exec("SELECT w.heartbeat_at > now() - make_interval(secs => $2), "
                    "  (SELECT count(*) FROM streams s WHERE s.worker_id = w.id AND s.ended_at IS NULL) "
                    "FROM media_workers w WHERE w.id = $1",
                    {std::to_string(*id), std::to_string(config.worker_timeout_seconds)});
    if (r.rows() != 1 || r.value(0, 0) != "t") {
      std::printf("miraged: worker '%s' drained and stopped\n", name.c_str());
      return 0;
    }
    const long long left = std::stoll(r.value(0, 1));
    if (left != last) std::printf("miraged: %lld stream(s) still on '%s'\n", left, name.c_str());
    std::fflush(stdout);
    last = left;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::fprintf(stderr, "miraged: worker '%s' has not stopped yet (it is still draining or hangs)\n", name.c_str());
  return 1;
}

mirage::service::AccountSettings account_settings(const mirage::Config& c) {
  mirage::service::AccountSettings s;
  s.argon2.memory_kib = uint32_t(c.argon2_memory_kib);
  s.argon2.iterations = uint32_t(c.argon2_iterations);
  s.session_ttl_seconds = c.session_ttl_seconds;
  s.login_failures_per_user = c.login_failures_per_user;
  s.login_failures_per_address = c.login_failures_per_address;
  s.login_window_seconds = c.login_window_seconds;
  s.registrations_per_address = c.registrations_per_address;
  s.registration_window_seconds = c.registration_window_seconds;
  return s;
}

int serve(const mirage::Config& config) {
  tune_malloc();
  run_migrations(config, true);
  // Request workers, Argon2 workers, the ticker and one spare.
  mirage::db::Pool pool(config.database_url, config.workers + config.argon2_threads + 2);
  // The service-wide totals for Prometheus, on a connection of their own
  // (the collector reads at most every five seconds, one read at a time).
  mirage::metrics::set_database_source([url = config.database_url,
                                        conn = std::shared_ptr<mirage::db::Connection>()]() mutable
                                           -> std::optional<mirage::metrics::DatabaseSample> {
    try {
      if (!conn || !conn->healthy()) conn = std::make_shared<mirage::db::Connection>(url);
      return mirage::repo::totals(*conn);
    } catch (const std::exception& e) {
      conn.reset();
      return std::nullopt;
    }
  });
  // With a model, a media worker runs inside this process; it talks to the
  // API only through PostgreSQL, exactly as a separate `miraged worker`.
  std::optional<MediaProcess> media;
  if (config.model.empty()) {
    mirage::log::info("no --model: API only (streams go to `miraged worker` processes)");
  } else {
    media = start_media_worker(config);
    if (!media) return 1;
  }
  mirage::service::Accounts accounts(pool, account_settings(config));
  mirage::service::StreamSettings stream_settings;
  stream_settings.style_seconds = config.style_seconds;
  stream_settings.comments_per_window = config.comments_per_window;
  stream_settings.comment_window_seconds = config.comment_window_seconds;
  stream_settings.style_cooldown_seconds = config.style_cooldown_seconds;
  stream_settings.worker_timeout_seconds = config.worker_timeout_seconds;
  stream_settings.replace_grace_seconds = config.replace_grace_seconds;
  mirage::service::Streams streams(pool, stream_settings);
  mirage::payments::StripeSettings stripe_settings;
  stripe_settings.secret_key = config.stripe_secret_key;
  stripe_settings.api_base = config.stripe_api_base;
  stripe_settings.timeout_ms = config.stripe_timeout_ms;
  mirage::payments::StripeClient stripe(stripe_settings);
  mirage::service::PaymentSettings payment_settings;
  std::string packs_error;
  auto packs = mirage::service::parse_packs(config.credit_packs, &packs_error);
  if (!packs) {
    mirage::log::error(packs_error);
    return 2;
  }
  payment_settings.packs = *packs;
  payment_settings.success_url = config.checkout_success_url;
  payment_settings.cancel_url = config.checkout_cancel_url;
  payment_settings.webhook_secret = config.stripe_webhook_secret;
  mirage::service::Payments payments(pool, stripe, payment_settings);
  if (!stripe.configured()) mirage::log::warn("no Stripe key: checkout answers 503 payments_not_configured");
  mirage::http::ApiServer server(config, accounts, streams, payments);
  server.start();
  mirage::log::info("listening on http://" + config.http_addr, {{"addr", config.http_addr}, {"port", server.port()}});

  // Metering, the style timer, the reaper and purging: on one replica at a
  // time (service/timers.h).
  mirage::service::TimerSettings timer_settings;
  timer_settings.database_url = config.database_url;
  timer_settings.name = config.http_addr;
  timer_settings.meter_seconds = config.meter_seconds;
  mirage::service::Timers timers(streams, timer_settings);
  timers.start();
  while (!g_signals) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  timers.stop();
  mirage::log::info("stopping");
  server.shutdown();
  if (media) {
    media->worker->stop("shutdown");  // its streams end, billed up to now
    mirage::metrics::set_worker_source(nullptr);  // no scrape reads the server from here on
    media->server.reset();
  }
  try {
    streams.meter_all();  // streams on other workers are billed up to now
  } catch (const std::exception& e) {
    mirage::log::error(std::string("final billing failed: ") + e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") return usage(stdout);

  mirage::Config config;
  config.migrations_dir = installed_or(MIRAGE_INSTALLED_MIGRATIONS, MIRAGE_MIGRATIONS_DIR);
  std::vector<std::string> rest;
  std::string reason;
  // --reason belongs to `credits grant`, not to the settings.
  std::vector<char*> args(argv, argv + argc);
  for (size_t i = 2; i + 1 < args.size(); ++i)
    if (!std::strcmp(args[i], "--reason")) {
      reason = args[i + 1];
      args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
      break;
    }
  if (auto error = mirage::load_config(int(args.size()), args.data(), 2, &config, &rest)) {
    std::fprintf(stderr, "miraged: %s\n", error->c_str());
    return 2;
  }
  if (config.database_url.empty()) {
    std::fputs("miraged: 'database_url' is required (--database-url or MIRAGE_DATABASE_URL)\n", stderr);
    return 2;
  }
  try {
    if (command == "migrate" && rest.empty()) {
      run_migrations(config, false);
      return 0;
    }
    if ((command == "serve" || command == "worker") && rest.empty()) {
      mirage::log::Settings log_settings;
      mirage::log::parse_format(config.log_format, &log_settings.format);
      mirage::log::parse_level(config.log_level, &log_settings.level);
      mirage::log::configure(log_settings);
      signal(SIGINT, on_signal);
      signal(SIGTERM, on_signal);
      std::string error;
      if (!config.metrics_addr.empty()) {
        if (!mirage::metrics::start_exposer(config.metrics_addr, &error)) {
          mirage::log::error(error);
          return 2;
        }
        mirage::log::info("Prometheus metrics on http://" + config.metrics_addr + "/metrics",
                          {{"addr", config.metrics_addr}});
      }
      const int rc = command == "serve" ? serve(config) : work(config);
      mirage::metrics::stop_exposer();
      return rc;
    }
    if (command == "worker" && rest.size() == 2 && rest[0] == "drain") return drain(config, rest[1]);
    if (command == "credits" && rest.size() == 3 && rest[0] == "grant") {
      if (reason.empty()) {
        std::fputs("miraged: credits grant needs --reason TEXT\n", stderr);
        return 2;
      }
      long long n = 0;
      try {
        n = std::stoll(rest[2]);
      } catch (const std::exception&) {
        std::fprintf(stderr, "miraged: '%s' is not a number of credits\n", rest[2].c_str());
        return 2;
      }
      mirage::db::Pool pool(config.database_url, 1);
      mirage::service::Accounts accounts(pool, account_settings(config));
      int64_t balance = accounts.grant(rest[1], n, reason);
      std::printf("granted %lld credits to %s; balance %lld s (%.1f credits)\n", n, rest[1].c_str(),
                  (long long)balance, double(balance) / mirage::service::kSecondsPerCredit);
      return 0;
    }
  } catch (const std::exception& e) {
    // serve and worker log (their format); the one-shot commands print.
    if (command == "serve" || command == "worker") mirage::log::error(e.what());
    else std::fprintf(stderr, "miraged: %s\n", e.what());
    return 1;
  }
  return usage(stderr);
}
