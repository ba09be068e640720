// The deployment shape, as processes (process_cluster.h): PostgreSQL, two
// API replicas and two media workers of capacity 1, sharing nothing but the
// database; as root each worker is in its own network namespace. The first
// line of output says where they run.
//
// What it tries: placement across workers and a refused third start; a
// style, a comment and its deletion, and a stop, each through the replica
// that did not start the stream, reaching the stream's worker; viewer counts
// from the worker read through the other replica; a publisher at the wrong
// worker; kill -9 of an API replica; kill -9 of the replica that runs the
// timers (metering moves to the other).
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "process_cluster.h"

namespace mirage {
namespace {

using Clock = std::chrono::steady_clock;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

class Cluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    test::ClusterOptions options;
    options.api_args = {"--meter-seconds", "1"};
    cluster_ = new test::ProcessCluster(options);
    std::printf("cluster: %s\n", cluster_->where().c_str());
    std::fflush(stdout);
    const std::string failed = cluster_->wait_ready();
    ASSERT_EQ(failed, "");
  }
  static void TearDownTestSuite() {
    if (::testing::UnitTest::GetInstance()->Failed()) cluster_->keep_files();
    delete cluster_;
    cluster_ = nullptr;
  }
  test::HttpResponse call(int replica, const std::string& method, const std::string& path, const std::string& body = "",
                          const std::string& token = "") {
    return cluster_->call(replica, method, path, body, token);
  }
  std::string user(const std::string& name, int credits = 0) {
    std::string token = cluster_->user(name, credits);
    EXPECT_NE(token, "") << "could not sign up " << name;
    return token;
  }
  static const test::ProcessCluster::Place& place(const std::string& name) { return cluster_->place(name); }
  static std::string media_base(const test::ProcessCluster::Place& w) { return test::ProcessCluster::media_base(w); }
  static std::string database_url() { return cluster_->database_url(); }

  static inline test::ProcessCluster* cluster_ = nullptr;
};

// Mean brightness of a JPEG.
double brightness(const std::string& jpeg) {
  const auto rgb = mean_rgb(jpeg);
  return (rgb[0] + rgb[1] + rgb[2]) / 3;
}

// Two starts land on the two workers (capacity 1 each) and their URLs point
// there; a third gets 503 and leaves no trace.
TEST_F(Cluster, StartsSpreadOverWorkersAndAThirdIsRefused) {
  const std::string ann = user("ann", 5), bob = user("bob", 5), cat = user("cat", 5);
  auto a = call(0, "POST", "/api/streams", R"({"title":"a"})", ann);
  auto b = call(1, "POST", "/api/streams", R"({"title":"b"})", bob);
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(b.status, 201) << b.body;
  auto da = parse(a.body), db = parse(b.body);
  const std::string wa = da["ingest"]["worker"].GetString(), wb = db["ingest"]["worker"].GetString();
  EXPECT_NE(wa, wb);
  for (const auto& [doc, name] : {std::pair<rapidjson::Document*, std::string>{&da, "ann"}, {&db, "bob"}}) {
    const std::string base = media_base(place((*doc)["ingest"]["worker"].GetString()));
    EXPECT_EQ(std::string((*doc)["ingest"]["websocket"].GetString()).rfind("ws://" + base + "/ingest/" + name + "?secret=", 0), 0u);
    EXPECT_EQ(std::string((*doc)["watch"]["hls"].GetString()), "http://" + base + "/live/" + name + "/index.m3u8");
    EXPECT_EQ(std::string((*doc)["watch"]["websocket"].GetString()), "ws://" + base + "/watch/" + name);
  }
  // GET /api/streams/{user} through the other replica names the same worker.
  auto pub = parse(call(1, "GET", "/api/streams/ann").body);
  EXPECT_EQ(std::string(pub["watch"]["websocket"].GetString()), "ws://" + media_base(place(wa)) + "/watch/ann");

  auto c = call(0, "POST", "/api/streams", R"({"title":"c"})", cat);
  EXPECT_EQ(c.status, 503);
  EXPECT_EQ(std::string(parse(c.body)["error"]["code"].GetString()), "no_media_capacity");
  EXPECT_FALSE(c.headers["retry-after"].empty());
  db::Connection conn(database_url());
  EXPECT_EQ(conn.exec("SELECT count(*) FROM streams s JOIN users u ON u.id = s.user_id WHERE u.username = 'cat'").value(0, 0), "0");
  EXPECT_EQ(conn.exec("SELECT count(*) FROM credit_ledger l JOIN users u ON u.id = l.user_id "
                      "WHERE u.username = 'cat' AND l.reason <> 'test'").value(0, 0), "0");
  EXPECT_EQ(call(0, "POST", "/api/streams/current/stop", "", ann).status, 200);
  EXPECT_EQ(call(0, "POST", "/api/streams/current/stop", "", bob).status, 200);
}

// A stream started through replica 1 is driven through replica 2: a style
// changes its processed frames, a comment and its deletion reach its
// worker's /events, the stop ends its ingest within 2 s. Its viewers, counted
// by its worker, show in the dashboard read through replica 1. A publisher
// at the other worker is refused.
TEST_F(Cluster, AStreamIsDrivenThroughTheOtherReplica) {
  const std::string dan = user("dan", 5), eve = user("eve");
  auto started = call(0, "POST", "/api/streams", R"({"title":"d"})", dan);
  ASSERT_EQ(started.status, 201) << started.body;
  auto s = parse(started.body);
  const std::string worker = s["ingest"]["worker"].GetString();
  const std::string other = worker == "w1" ? "w2" : "w1";
  const std::string ingest_url = s["ingest"]["websocket"].GetString();
  const std::string secret = s["ingest"]["secret"].GetString();
  auto ingest = WsClient::once_open(ingest_url);
  ASSERT_TRUE(ingest) << ingest_url;
  auto watcher = WsClient::once_open(s["watch"]["websocket"].GetString());
  ASSERT_TRUE(watcher);
  auto events = WsClient::once_open(s["watch"]["events"].GetString());
  ASSERT_TRUE(events);

  // The wrong worker: refused, and told why.
  WsClient wrong("ws://" + media_base(place(other)) + "/ingest/dan?secret=" + secret);
  EXPECT_FALSE(wrong.open());
  EXPECT_EQ(wrong.status(), 404u);

  const auto frames = jpeg_frames(15, "black", 160, 120);
  size_t next = 0;
  auto feed = [&](int ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < end && ingest->open()) {
      ingest->send(frames[next++ % frames.size()]);
      WsClient::spin([] { return false; }, 66);
    }
  };
  auto feed_until = [&](const std::function<bool()>& done, int ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (!done() && Clock::now() < end) feed(200);
    return done();
  };
  ASSERT_TRUE(feed_until([&] { return watcher->binary().size() >= 3; }, 20000));
  // The black input processed without a style (the first frames out of a
  // new pipeline may be grey).
  ASSERT_TRUE(feed_until([&] { return brightness(watcher->binary().back()) < 60; }, 10000))
      << "brightness " << brightness(watcher->binary().back());
  const double plain = brightness(watcher->binary().back());

  // Viewers: counted on the worker, read through replica 1's dashboard.
  EXPECT_TRUE(feed_until([&] { return parse(call(0, "GET", "/api/me/dashboard", "", dan).body)["viewers"].GetInt() >= 1; },
                         10000));

  // A style through replica 2: the processed frames invert.
  EXPECT_EQ(call(1, "POST", "/api/streams/dan/styles", R"({"style":"invert"})", eve).status, 201);
  EXPECT_TRUE(feed_until([&] { return brightness(watcher->binary().back()) > plain + 100; }, 10000))
      << "brightness " << plain << " before, " << brightness(watcher->binary().back()) << " after";

  // A comment and its deletion through replica 2 reach the worker's /events.
  auto posted = call(1, "POST", "/api/streams/dan/comments", R"({"text":"hello from replica 2"})", eve);
  ASSERT_EQ(posted.status, 201);
  const int64_t id = parse(posted.body)["id"].GetInt64();
  auto has = [&](const std::string& needle) {
    for (const auto& t : events->text())
      if (t.find(needle) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(WsClient::spin([&] { return has("\"text\":\"hello from replica 2\"") && has("\"id\":" + std::to_string(id)); }, 5000));
  EXPECT_EQ(call(1, "DELETE", "/api/streams/dan/comments/" + std::to_string(id), "", dan).status, 204);
  EXPECT_TRUE(WsClient::spin([&] { return has("{\"type\":\"comment_deleted\",\"id\":" + std::to_string(id) + "}"); }, 5000));

  // The stop through replica 2: the worker closes the ingest and refuses a new one within 2 s.
  ASSERT_EQ(call(1, "POST", "/api/streams/current/stop", "", dan).status, 200);
  const auto stopped = Clock::now();
  EXPECT_TRUE(WsClient::spin([&] { return !ingest->open(); }, 5000));
  WsClient again(ingest_url);
  const double seconds = std::chrono::duration<double>(Clock::now() - stopped).count();
  EXPECT_FALSE(again.open());
  EXPECT_LE(seconds, 2.0) << "the ingest was still open " << seconds << " s after the stop";
  EXPECT_TRUE(WsClient::spin([&] { return has("\"type\":\"offline\""); }, 5000));
}

// kill -9 of the replica a stream was started through: the stream, its
// worker and the other replica go on.
TEST_F(Cluster, KillingAnApiReplicaLeavesTheStreamsAndTheOtherReplica) {
  const std::string fay = user("fay", 5), gus = user("gus");
  auto started = call(0, "POST", "/api/streams", R"({"title":"f"})", fay);
  ASSERT_EQ(started.status, 201) << started.body;
  auto s = parse(started.body);
  auto ingest = WsClient::once_open(s["ingest"]["websocket"].GetString());
  ASSERT_TRUE(ingest);
  auto watcher = WsClient::once_open(s["watch"]["websocket"].GetString());
  ASSERT_TRUE(watcher);
  const auto frames = jpeg_frames(10, "ball", 160, 120);
  auto feed = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ingest->send(frames[size_t(i) % frames.size()]);
      WsClient::spin([] { return false; }, 66);
    }
  };
  feed(15);
  ASSERT_TRUE(WsClient::spin([&] { return watcher->binary().size() >= 3; }, 10000));

  cluster_->api(0).kill(SIGKILL);
  EXPECT_TRUE(parse(call(1, "GET", "/api/streams/fay").body)["live"].GetBool());
  EXPECT_EQ(call(1, "POST", "/api/streams/fay/comments", R"({"text":"still here"})", gus).status, 201);
  const size_t before = watcher->binary().size();
  feed(30);
  EXPECT_TRUE(WsClient::spin([&] { return watcher->binary().size() >= before + 5; }, 5000));
  EXPECT_TRUE(ingest->open());
  EXPECT_EQ(call(1, "POST", "/api/streams/current/stop", "", fay).status, 200);
  cluster_->start_api(0);  // back for whoever runs next
  EXPECT_EQ(cluster_->wait_ready(30000), "");
}

// kill -9 of the replica holding the timer lock: the other holds it within
// 5 s and meters on, and nothing is billed twice: the user's balance is the
// sum of the ledger, the stream's charges in the ledger are its
// seconds_billed, and those never exceed its age.
TEST_F(Cluster, TheTimersMoveToTheOtherReplicaWhenTheirHolderDies) {
  const std::string ida = user("ida", 5);
  ASSERT_EQ(call(1, "POST", "/api/streams", R"({"title":"i"})", ida).status, 201);
  db::Connection db(database_url());
  auto holder = [&]() -> std::string {
    auto r = db.exec("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                     "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'miraged timers %'");
    return r.rows() == 1 ? r.value(0, 0) : std::to_string(r.rows()) + " holders";
  };
  auto name_of = [](int replica) { return "miraged timers 127.0.0.1:" + std::to_string(cluster_->api_port(replica)); };
  auto billed = [&] {
    return std::stoll(db.exec("SELECT s.seconds_billed FROM streams s JOIN users u ON u.id = s.user_id "
                              "WHERE u.username = 'ida' AND s.ended_at IS NULL").value(0, 0));
  };
  ASSERT_TRUE(WsClient::spin([&] { return holder() == name_of(0) || holder() == name_of(1); }, 5000)) << holder();
  const int leader = holder() == name_of(0) ? 0 : 1, other = 1 - leader;
  ASSERT_TRUE(WsClient::spin([&] { return billed() >= 2; }, 5000)) << "no metering by the leader";

  cluster_->api(leader).kill(SIGKILL);
  const auto killed = Clock::now();
  ASSERT_TRUE(WsClient::spin([&] { return holder() == name_of(other); }, 10000)) << holder();
  const double takeover = std::chrono::duration<double>(Clock::now() - killed).count();
  std::printf("timers: replica %d holds the lock %.2f s after replica %d was killed\n", other + 1, takeover, leader + 1);
  EXPECT_LE(takeover, 5.0) << "the other replica took the timers " << takeover << " s after the kill";
  const long long before = billed();
  EXPECT_TRUE(WsClient::spin([&] { return billed() >= before + 2; }, 5000)) << "metering did not go on";

  auto r = db.exec(
      "SELECT u.balance_seconds = (SELECT sum(delta_seconds) FROM credit_ledger WHERE user_id = u.id), "
      "  -(SELECT coalesce(sum(delta_seconds), 0) FROM credit_ledger WHERE user_id = u.id AND reason = 'stream ' || s.id) = s.seconds_billed, "
      "  s.seconds_billed <= extract(epoch FROM now() - s.started_at) + 1 "
      "FROM users u JOIN streams s ON s.user_id = u.id WHERE u.username = 'ida'");
  EXPECT_EQ(r.value(0, 0), "t") << "balance is not the sum of the ledger";
  EXPECT_EQ(r.value(0, 1), "t") << "the ledger's charges differ from the stream's seconds_billed";
  EXPECT_EQ(r.value(0, 2), "t") << "billed more seconds than the stream is old";
  EXPECT_EQ(call(other, "POST", "/api/streams/current/stop", "", ida).status, 200);
  cluster_->start_api(leader);  // back for whoever runs next
  EXPECT_EQ(cluster_->wait_ready(30000), "");
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
