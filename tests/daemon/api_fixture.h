// The API test fixture: a PostgreSQL cluster per test binary, and per test
// a fresh database with the daemon's services and HTTP server on a free
// loopback port, and one media worker (media/worker.h) registered in that
// database whose media plane is the logging one, so what reached the worker
// through PostgreSQL can be checked. The media tests (tests/media) run a
// real MediaServer under the worker instead.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "db/migrations.h"
#include "db/pool.h"
#include "http/server.h"
#include "http_client.h"
#include "log/log.h"
#include "logging_media_plane.h"
#include "media/worker.h"
#include "pg_cluster.h"
#include "service/accounts.h"
#include "service/payments.h"
#include "service/streams.h"

namespace mirage {

inline test::PgCluster* cluster = nullptr;

class Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    cluster = new test::PgCluster();
    // Recording for the openapi and log-secrets tests: the daemon's log of
    // the whole run goes to FILE.log too, every level.
    if (const char* record = std::getenv("MIRAGE_HTTP_RECORD"); record && *record) {
      const std::string path = std::string(record) + ".log";
      std::fclose(std::fopen(path.c_str(), "w"));
      log::Settings s;
      s.level = log::Level::kDebug;
      s.copy_to = path;
      log::configure(s);
    }
  }
  void TearDown() override { delete cluster; }
};

inline int database_counter = 0;

inline rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

// One daemon (services + HTTP) on a fresh database per test.
class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.database_url = cluster->create_database("api" + std::to_string(++database_counter));
    config_.http_addr = "127.0.0.1:0";
    config_.workers = 8;
    configure(config_);
    {
      db::Connection c(config_.database_url);
      db::migrate(c, db::load_migrations(MIRAGE_MIGRATIONS_DIR));
    }
    pool_ = std::make_unique<db::Pool>(config_.database_url, config_.workers + config_.argon2_threads + 2);
    service::AccountSettings accounts;
    accounts.argon2 = {1024, 1, 1};  // cheap hashes: tests, not production
    accounts.login_failures_per_user = 3;
    accounts.login_window_seconds = 60;
    accounts.registrations_per_address = 100000;  // every test signs up from 127.0.0.1
    configure(accounts);
    accounts_ = std::make_unique<service::Accounts>(*pool_, accounts);
    service::StreamSettings streams;
    streams.style_seconds = 30;
    streams.comments_per_window = 3;
    streams.comment_window_seconds = 60;
    streams.style_cooldown_seconds = 0;
    configure(streams);
    streams_ = std::make_unique<service::Streams>(*pool_, streams);
    stripe_ = std::make_unique<payments::StripeClient>(stripe_settings());
    if (!stripe_settings().secret_key.empty()) test::record_secret(stripe_settings().secret_key);
    test::record_secret(webhook_secret_);
    service::PaymentSettings payments;
    std::string error;
    payments.packs = *service::parse_packs("small:5:500:usd,large:60:4800:eur", &error);
    payments.success_url = "http://app.test/ok?session_id={CHECKOUT_SESSION_ID}";
    payments.cancel_url = "http://app.test/cancel";
    payments.webhook_secret = webhook_secret_;
    payments_ = std::make_unique<service::Payments>(*pool_, *stripe_, payments);
    server_ = std::make_unique<http::ApiServer>(config_, *accounts_, *streams_, *payments_);
    server_->start();
    start_worker();
  }
  // The worker of this test: the logging media plane, capacity 100.
  virtual void start_worker() {
    worker_ = make_worker(media_, "test-worker", 100, "http://127.0.0.1:1", "srt://127.0.0.1:2", "rtsp://127.0.0.1:3");
  }
  // A worker registered in this test's database around |plane|, started.
  std::unique_ptr<media::Worker> make_worker(media::MediaPlane& plane, const std::string& name, int capacity,
                                             const std::string& media_url, const std::string& srt_url = "",
                                             const std::string& rtsp_url = "",
                                             const std::string& srt_passphrase = "", int drain_seconds = 30) {
    media::WorkerSettings w;
    w.database_url = config_.database_url;
    w.quiet = true;
    w.drain_seconds = drain_seconds;
    w.registration.name = name;
    w.registration.media_url = media_url;
    w.registration.srt_url = srt_url;
    w.registration.rtsp_url = rtsp_url;
    w.registration.srt_passphrase = srt_passphrase;
    w.registration.capacity = capacity;
    w.registration.model = "test";
    w.registration.device = "cpu";
    w.registration.styles = plane.styles();
    auto worker = std::make_unique<media::Worker>(w, plane);
    worker->start();
    return worker;
  }
  // Waits until the worker has seen everything committed so far (rows,
  // outbox) and reported (viewers, health; streams it must end).
  void sync_worker() { ASSERT_TRUE(worker_->sync()); }
  // Subclasses point the client at a fake Stripe, or change settings.
  virtual payments::StripeSettings stripe_settings() { return {}; }
  virtual void configure(Config&) {}
  virtual void configure(service::AccountSettings&) {}
  virtual void configure(service::StreamSettings&) {}

  void TearDown() override {
    worker_.reset();
    server_.reset();
    payments_.reset();
    streams_.reset();
    accounts_.reset();
    pool_.reset();
  }

  test::HttpResponse call(const std::string& method, const std::string& path, const std::string& body = "",
                          const std::string& token = "") {
    std::map<std::string, std::string> headers;
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    return test::http(server_->port(), method, path, body, headers);
  }

  // Registers and logs in; returns the token.
  std::string user(const std::string& name, int credits = 0) {
    auto r = call("POST", "/api/auth/register",
                  R"({"username":")" + name + R"(","email":")" + name + R"(@example.org","password":"password123"})");
    EXPECT_EQ(r.status, 201) << r.body;
    if (credits > 0) accounts_->grant(name, credits, "test");
    auto login = call("POST", "/api/auth/login", R"({"username":")" + name + R"(","password":"password123"})");
    EXPECT_EQ(login.status, 200) << login.body;
    return parse(login.body)["token"].GetString();
  }

  std::string error_code(const test::HttpResponse& r) {
    auto d = parse(r.body);
    if (!d.IsObject() || !d.HasMember("error")) return "(no error body: " + r.body + ")";
    return d["error"]["code"].GetString();
  }

  // The ledger's balance in seconds (seconds_remaining also takes off the
  // live stream's time not billed yet).
  long long balance(const std::string& token) {
    return std::llround(parse(call("GET", "/api/me/credits", "", token).body)["credits"].GetDouble() * 600);
  }

  // Moves a live stream's billing point |seconds| into the past, as if it
  // had run that long unbilled.
  void age_stream(const std::string& username, int seconds) {
    if (worker_) sync_worker();  // its report started the billing (the first frame)
    db::Connection c(config_.database_url);
    c.exec("UPDATE streams SET billed_until = billed_until - make_interval(secs => $2) "
           "WHERE ended_at IS NULL AND user_id = (SELECT id FROM users WHERE username = $1)",
           {username, std::to_string(seconds)});
  }

  Config config_;
  media::LoggingMediaPlane media_{{"toon", "sketch", "sepia"}, true};
  std::unique_ptr<media::Worker> worker_;
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<service::Accounts> accounts_;
  std::unique_ptr<service::Streams> streams_;
  std::string webhook_secret_ = "whsec_test_secret";
  std::unique_ptr<payments::StripeClient> stripe_;
  std::unique_ptr<service::Payments> payments_;
  std::unique_ptr<http::ApiServer> server_;
};

}  // namespace mirage
