// miraged (the API with its media worker inside) killed with SIGKILL while
// a stream is live, then restarted: the ledger stays consistent, billing is
// never doubled, and the time the daemon was down is not billed (main
// billed it: 80 s in 75 s with no media). The worker comes back under its
// name (once the dead one's heartbeat timed out), takes the stream back,
// and its publisher reconnects with the same secret (main: 403, a new
// start 409, and billing went on with nothing processed).
//
// Real time is needed: the daemon meters on its own clock (every second
// here); waits are polls with deadlines.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "../media/media_util.h"
#include "child_process.h"
#include "connection.h"
#include "http_client.h"
#include "pg_cluster.h"

namespace mirage {
namespace {

using test::free_port;

bool eventually(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

// miraged serve, metering every second, with cheap password hashes.
class Daemon {
 public:
  Daemon(const std::string& url, int port, std::vector<std::string> more = {})
      : process_(arguments(url, port, std::move(more))) {}
  void kill(int signal) { process_.kill(signal); }

 private:
  static std::vector<std::string> arguments(const std::string& url, int port, std::vector<std::string> more) {
    std::vector<std::string> args = {MIRAGED_PATH,
                                     "serve",
                                     "--database-url", url,
                                     "--http-addr", "127.0.0.1:" + std::to_string(port),
                                     "--meter-seconds", "1",
                                     "--argon2-memory-kib", "1024",
                                     "--argon2-iterations", "1",
                                     "--worker-name", "crash-test-worker"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  test::ChildProcess process_;
};

// The media worker's settings: the sample styles model, WebSocket only.
std::vector<std::string> media_args(int media_port, const std::string& hls, int silence_seconds) {
  return {"--model", std::string(std::getenv("MIRAGE_TEST_MODELS")) + "/styles.pt",
          "--media-addr", "127.0.0.1:" + std::to_string(media_port), "--srt-addr", "", "--rtsp-addr", "",
          "--pipelines-dir", MIRAGE_PIPELINES_DIR, "--hls-dir", hls, "--media-width", "160", "--media-height", "120",
          "--ingest-silence-seconds", std::to_string(silence_seconds)};
}

std::string token_of(const test::HttpResponse& login) {
  return login.body.substr(login.body.find("\"token\":\"") + 9, 43);
}

TEST(Crash, KillDashNineKeepsTheLedgerConsistentAndBillsNoDowntime) {
  test::PgCluster cluster;
  const std::string url = cluster.url();
  const int port = free_port();
  auto up = [&] { return test::http(uint16_t(port), "GET", "/api/streams/nobody").status == 404; };
  const std::string hls = "/tmp/mirage-crash-billing-hls-" + std::to_string(getpid());
  const int media_port = free_port();
  const auto media = media_args(media_port, hls, 120);

  auto daemon = std::make_unique<Daemon>(url, port, media);
  ASSERT_TRUE(eventually(up, std::chrono::seconds(20)));
  ASSERT_EQ(test::http(port, "POST", "/api/auth/register",
                       R"({"username":"sam","email":"s@example.org","password":"password123"})").status, 201);
  db::Connection db(url);
  db.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) "
          "SELECT id, 6000, 'grant' FROM users WHERE username = 'sam'");
  const std::string token = token_of(test::http(port, "POST", "/api/auth/login", R"({"username":"sam","password":"password123"})"));
  auto started = test::http(port, "POST", "/api/streams", R"({"title":"crash"})", {{"Authorization", "Bearer " + token}});
  ASSERT_EQ(started.status, 201);
  const std::string secret = started.body.substr(started.body.find("\"secret\":\"") + 10, 43);

  auto charges = [&] {
    return std::stoi(db.exec("SELECT count(*) FROM credit_ledger WHERE reason LIKE 'stream %'").value(0, 0));
  };
  // Billing starts at the first processed frame: a publisher feeds it until
  // |done| (reconnecting while the worker has not taken the stream yet).
  const auto frames = jpeg_frames(10, "ball", 160, 120);
  auto publish_until = [&](const std::function<bool()>& done) {
    auto ingest = WsClient::once_open("ws://127.0.0.1:" + std::to_string(media_port) + "/ingest/sam?secret=" + secret, 20000);
    if (!ingest) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (size_t i = 0; !done() && std::chrono::steady_clock::now() < deadline && ingest->open(); ++i) {
      ingest->send(frames[i % frames.size()]);
      WsClient::spin([] { return false; }, 66);
    }
    return done();
  };
  ASSERT_TRUE(publish_until([&] { return charges() >= 2; }));
  daemon->kill(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  const int before_restart = charges();

  // Down for a while: no pipeline held the stream, so that is not billed.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  daemon = std::make_unique<Daemon>(url, port, media);
  ASSERT_TRUE(eventually(up, std::chrono::seconds(20)));
  const double down = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_TRUE(publish_until([&] { return charges() >= before_restart + 2; }));
  daemon->kill(SIGKILL);
  std::system(("rm -rf " + hls).c_str());

  db::Result r = db.exec(
      "SELECT u.balance_seconds, (SELECT sum(delta_seconds) FROM credit_ledger WHERE user_id = u.id), "
      "       -(SELECT sum(delta_seconds) FROM credit_ledger WHERE user_id = u.id AND reason LIKE 'stream %'), "
      "       s.seconds_billed, floor(extract(epoch FROM now() - s.started_at))::bigint, s.ended_at IS NULL "
      "FROM users u JOIN streams s ON s.user_id = u.id WHERE u.username = 'sam'");
  const long long balance = std::stoll(r.value(0, 0)), ledger_sum = std::stoll(r.value(0, 1));
  const long long charged = std::stoll(r.value(0, 2)), billed = std::stoll(r.value(0, 3));
  const long long age = std::stoll(r.value(0, 4));
  EXPECT_EQ(balance, ledger_sum);       // the balance is the ledger
  EXPECT_EQ(charged, billed);           // the stream's record matches its ledger entries
  EXPECT_EQ(r.value(0, 5), "t");        // still live: taken back at the restart
  // Not the downtime (at least 3 s of it), give or take the metering
  // interval (1 s) before the kill and scheduling slack on a loaded machine;
  // nor the seconds before each process's first processed frame.
  EXPECT_LE(charged, age - (long long)(down) + 2) << "age " << age << " s, down " << down << " s";
  EXPECT_GE(charged, age - (long long)(down) - 8) << "age " << age << " s, down " << down << " s";
}

// With the media plane: the publisher's secret works again after the
// restart and frames flow; a publisher that never comes back ends the
// stream for silence, and billing stops with it.
TEST(Crash, APipelineComesBackForItsPublisher) {
  test::PgCluster cluster;
  const std::string url = cluster.url();
  const int port = free_port(), media = free_port();
  const std::string hls = "/tmp/mirage-crash-hls-" + std::to_string(getpid());
  const std::vector<std::string> args = media_args(media, hls, 3);
  auto up = [&] { return test::http(uint16_t(port), "GET", "/api/streams/nobody").status == 404; };
  auto daemon = std::make_unique<Daemon>(url, port, args);
  ASSERT_TRUE(eventually(up, std::chrono::seconds(30)));
  ASSERT_EQ(test::http(port, "POST", "/api/auth/register",
                       R"({"username":"ada","email":"a@example.org","password":"password123"})").status, 201);
  db::Connection db(url);
  db.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) SELECT id, 6000, 'grant' FROM users");
  const std::string token = token_of(test::http(port, "POST", "/api/auth/login", R"({"username":"ada","password":"password123"})"));
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + token}};
  auto started = test::http(port, "POST", "/api/streams", R"({"title":"crash"})", auth);
  ASSERT_EQ(started.status, 201);
  const std::string secret = started.body.substr(started.body.find("\"secret\":\"") + 10, 43);
  const std::string ws = "ws://127.0.0.1:" + std::to_string(media);
  const auto frames = jpeg_frames(30, "ball", 160, 120);
  auto publish = [&](WsClient& ingest, WsClient& watcher) {
    for (const auto& f : frames) {
      ingest.send(f);
      WsClient::spin([] { return false; }, 66);
    }
    return WsClient::spin([&] { return watcher.binary().size() >= 5; });
  };
  {
    auto ingest = WsClient::once_open(ws + "/ingest/ada?secret=" + secret);
    ASSERT_TRUE(ingest);
    WsClient watcher(ws + "/watch/ada");
    ASSERT_TRUE(publish(*ingest, watcher));
    daemon->kill(SIGKILL);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  daemon = std::make_unique<Daemon>(url, port, args);
  ASSERT_TRUE(eventually(up, std::chrono::seconds(30)));
  // Same secret, same stream: in again (once the worker's first pass ran),
  // and processed.
  {
    auto ingest = WsClient::once_open(ws + "/ingest/ada?secret=" + secret);
    ASSERT_TRUE(ingest);
    WsClient watcher(ws + "/watch/ada");
    EXPECT_TRUE(publish(*ingest, watcher));
  }
  EXPECT_EQ(test::http(port, "POST", "/api/streams", R"({"title":"again"})", auth).status, 409);  // it is live
  // The publisher is gone for good: the stream ends for silence.
  ASSERT_TRUE(eventually([&] { return db.exec("SELECT ended_at IS NOT NULL FROM streams").value(0, 0) == "t"; },
                         std::chrono::seconds(20)));
  EXPECT_EQ(db.exec("SELECT end_reason FROM streams").value(0, 0), "ingest_silent");
  daemon->kill(SIGTERM);
  std::system(("rm -rf " + hls).c_str());
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
