// miraged: the Mirage daemon.
//
//   miraged serve [settings]                 REST API; migrates first
//   miraged migrate [settings]               apply pending SQL migrations
//   miraged credits grant USERNAME N --reason TEXT [settings]
//
// Settings come from flags, then the environment, then a config file; see
// `miraged --help` (config.cpp).
#include <gst/gst.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>

#include "config.h"
#include "db/connection.h"
#include "db/migrations.h"
#include "db/pool.h"
#include "http/server.h"
#include "media/media_plane.h"
#include "media/media_server.h"
#include "service/accounts.h"
#include "service/error.h"
#include "service/payments.h"
#include "service/streams.h"

namespace {

int usage(FILE* out) {
  std::fprintf(out,
               "usage: miraged serve [settings]\n"
               "       miraged migrate [settings]\n"
               "       miraged credits grant USERNAME N --reason TEXT [settings]\n"
               "\n"
               "settings (flag, environment variable; flags win, then the environment, then --config):\n%s",
               mirage::config_help().c_str());
  return out == stdout ? 0 : 2;
}

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

void run_migrations(const mirage::Config& config) {
  mirage::db::Connection connection(config.database_url);
  auto applied = mirage::db::migrate(connection, mirage::db::load_migrations(config.migrations_dir));
  for (const auto& name : applied) std::printf("applied %s\n", name.c_str());
  std::printf("database is up to date (%zu applied now)\n", applied.size());
  std::fflush(stdout);
}

// This media host's name in streams.media_host: --host-name, or the
// machine's name and media port (two daemons on one machine differ).
std::string host_name(const mirage::Config& config, unsigned media_port) {
  if (!config.host_name.empty()) return config.host_name;
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return std::string(name) + ":" + std::to_string(media_port);
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

int serve(const mirage::Config& config) {
  tune_malloc();
  run_migrations(config);
  // Request workers, Argon2 workers, the ticker and one spare.
  mirage::db::Pool pool(config.database_url, config.workers + config.argon2_threads + 2);
  // The media plane: pipelines and the media port when a model is set,
  // otherwise a logging stand-in (API only).
  std::unique_ptr<mirage::media::MediaPlane> media_plane;
  unsigned media_port = 0;
  if (config.model.empty()) {
    media_plane = std::make_unique<mirage::media::LoggingMediaPlane>(split(config.styles, ','));
    std::printf("miraged: no --model: no media plane (streams are billed, nothing is processed)\n");
  } else {
    gst_init(nullptr, nullptr);
    mirage::media::MediaSettings m;
    m.addr = config.media_addr;
    m.srt_addr = config.srt_addr;
    m.rtsp_addr = config.rtsp_addr;
    m.srt_passphrase = config.srt_passphrase;
    m.templates_dir = config.pipelines_dir.empty() ? MIRAGE_PIPELINES_DIR : config.pipelines_dir;
    m.hls_root = config.hls_dir;
    m.model = config.model;
    m.width = config.media_width;
    m.height = config.media_height;
    m.fps = config.media_fps;
    m.styles = split(config.styles, ',');
    m.silence_seconds = config.ingest_silence_seconds;
    m.max_ingest_width = config.max_ingest_width;
    m.max_ingest_height = config.max_ingest_height;
    m.connections_per_address = config.media_connections_per_address;
    m.max_connections = config.max_connections;
    m.idle_timeout_seconds = config.media_idle_timeout_seconds;
    m.hls_viewers_per_address = config.hls_viewers_per_address;
    m.trusted_proxies = config.trusted_proxies;
    auto server = std::make_unique<mirage::media::MediaServer>(m);
    std::string media_error;
    if (!server->start(&media_error)) {
      std::fprintf(stderr, "miraged: %s\n", media_error.c_str());
      return 1;
    }
    std::printf("miraged: media server on %s (port %u), SRT ingest port %u, RTSP ingest port %u\n",
                config.media_addr.c_str(), server->port(), server->srt_port(), server->rtsp_port());
    media_port = server->port();
    media_plane = std::move(server);
  }
  mirage::media::MediaPlane& media = *media_plane;
  mirage::service::Accounts accounts(pool, account_settings(config));
  mirage::service::StreamSettings stream_settings;
  stream_settings.style_seconds = config.style_seconds;
  stream_settings.comments_per_window = config.comments_per_window;
  stream_settings.comment_window_seconds = config.comment_window_seconds;
  stream_settings.style_cooldown_seconds = config.style_cooldown_seconds;
  stream_settings.host_name = host_name(config, media_port);
  mirage::service::Streams streams(pool, media, stream_settings);
  // Streams this host ran when it last stopped (a crash, kill -9) come back
  // before anyone can call: their publishers reconnect with the same secret.
  if (int n = streams.reconcile()) std::printf("miraged: %d live stream(s) of host %s taken back\n", n, stream_settings.host_name.c_str());
  mirage::payments::StripeSettings stripe_settings;
  stripe_settings.secret_key = config.stripe_secret_key;
  stripe_settings.api_base = config.stripe_api_base;
  stripe_settings.timeout_ms = config.stripe_timeout_ms;
  mirage::payments::StripeClient stripe(stripe_settings);
  mirage::service::PaymentSettings payment_settings;
  std::string packs_error;
  auto packs = mirage::service::parse_packs(config.credit_packs, &packs_error);
  if (!packs) {
    std::fprintf(stderr, "miraged: %s\n", packs_error.c_str());
    return 2;
  }
  payment_settings.packs = *packs;
  payment_settings.success_url = config.checkout_success_url;
  payment_settings.cancel_url = config.checkout_cancel_url;
  payment_settings.webhook_secret = config.stripe_webhook_secret;
  mirage::service::Payments payments(pool, stripe, payment_settings);
  if (!stripe.configured()) std::printf("miraged: no Stripe key: checkout answers 503 payments_not_configured\n");
  mirage::http::ApiServer server(config, accounts, streams, payments);
  server.start();
  std::printf("miraged: listening on http://%s (port %u)\n", config.http_addr.c_str(), server.port());
  std::fflush(stdout);

  // The ticker: styles every second, billing every meter_seconds. Any
  // replica may run it: the database serialises the work.
  auto last_meter = std::chrono::steady_clock::now();
  auto last_purge = std::chrono::steady_clock::time_point{};
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    try {
      streams.advance_all_styles();
      streams.maintain_media();
      if (std::chrono::steady_clock::now() - last_meter >= std::chrono::seconds(config.meter_seconds)) {
        last_meter = std::chrono::steady_clock::now();
        streams.meter_all();
      }
      if (std::chrono::steady_clock::now() - last_purge >= std::chrono::minutes(1)) {
        last_purge = std::chrono::steady_clock::now();
        streams.purge_expired();
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "miraged: ticker: %s\n", e.what());
    }
  }
  std::printf("miraged: stopping\n");
  server.shutdown();
  try {
    streams.end_local_streams("shutdown");  // pipelines on this host end, billed up to now
    streams.meter_all();                     // and streams elsewhere are billed up to now
  } catch (const std::exception& e) {
    std::fprintf(stderr, "miraged: final billing failed: %s\n", e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") return usage(stdout);

  mirage::Config config;
  config.migrations_dir = MIRAGE_MIGRATIONS_DIR;
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
      run_migrations(config);
      return 0;
    }
    if (command == "serve" && rest.empty()) {
      signal(SIGINT, on_signal);
      signal(SIGTERM, on_signal);
      return serve(config);
    }
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
  } catch (const mirage::service::Error& e) {
    std::fprintf(stderr, "miraged: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "miraged: %s\n", e.what());
    return 1;
  }
  return usage(stderr);
}
