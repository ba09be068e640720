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
// timers (metering moves to the other); kill -9 of the worker holding a live
// stream (it moves to the other worker, the publisher and the viewer
// reconnect by themselves, the dead time is not billed); the same with no
// room anywhere (it ends worker_lost after the grace); a drain by
// `miraged worker drain NAME` and by SIGTERM (make-before-break, the viewer's
// gap measured); PostgreSQL restarted under a live stream (nothing
// committed is lost, the outage is not billed, everything recovers by
// itself).
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "live_clients.h"
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
    options.api_args = {"--meter-seconds", "1", "--replace-grace-seconds", "3", "--registrations-per-address", "1000"};
    options.worker_args = {"--drain-seconds", "15"};
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

using test::LiveClients;
using test::seconds_between;

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
  LiveClients clients(*cluster_, "ida", ida);  // billing starts at the first processed frame
  ASSERT_TRUE(clients.pump_until([&] { return billed() >= 2; }, 20000)) << "no metering by the leader";

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

// The stream row of |username|'s latest stream, as text: worker name,
// seconds_billed, end_reason ('' while live).
struct StreamRow {
  std::string worker, end_reason;
  long long billed = 0;
  bool live = false;
};
StreamRow stream_row(const std::string& url, const std::string& username) {
  db::Connection db(url);
  auto r = db.exec("SELECT coalesce(w.name, ''), s.seconds_billed, coalesce(s.end_reason, ''), s.ended_at IS NULL "
                   "FROM streams s JOIN users u ON u.id = s.user_id LEFT JOIN media_workers w ON w.id = s.worker_id "
                   "WHERE u.username = $1 ORDER BY s.id DESC LIMIT 1",
                   {username});
  if (r.rows() != 1) return {};
  return {r.value(0, 0), r.value(0, 2), std::stoll(r.value(0, 1)), r.value(0, 3) == "t"};
}

// The ledger invariants for |username|: balance = sum of the ledger, and
// each stream's charges in the ledger are its seconds_billed.
void expect_ledger_consistent(const std::string& url, const std::string& username) {
  db::Connection db(url);
  auto r = db.exec(
      "SELECT u.balance_seconds = (SELECT sum(delta_seconds) FROM credit_ledger WHERE user_id = u.id), "
      "  bool_and(-(SELECT coalesce(sum(delta_seconds), 0) FROM credit_ledger WHERE user_id = u.id "
      "             AND reason = 'stream ' || s.id) = s.seconds_billed) "
      "FROM users u JOIN streams s ON s.user_id = u.id WHERE u.username = $1 GROUP BY u.id",
      {username});
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.value(0, 0), "t") << "balance is not the sum of the ledger";
  EXPECT_EQ(r.value(0, 1), "t") << "the ledger's charges differ from the streams' seconds_billed";
}

// kill -9 of the worker holding a live stream that a publisher feeds and a
// viewer watches: within 10 s the stream runs on the other worker (same
// stream, same secret), the publisher and the viewer found it there by
// themselves and the viewer gets processed frames again. The dead time (from
// the last heartbeat to the first frame on the new worker) is not billed.
TEST_F(Cluster, KillingTheWorkerMovesTheStreamAndTheDeadTimeIsNotBilled) {
  const std::string kim = user("kim", 5);
  auto started = call(0, "POST", "/api/streams", R"({"title":"k"})", kim);
  ASSERT_EQ(started.status, 201) << started.body;
  const std::string from = parse(started.body)["ingest"]["worker"].GetString();
  const std::string secret = parse(started.body)["ingest"]["secret"].GetString();
  const std::string to = from == "w1" ? "w2" : "w1";
  LiveClients clients(*cluster_, "kim", kim);
  ASSERT_TRUE(clients.pump_until([&] { return clients.frames() >= 5; }, 20000)) << "no processed frames";
  const auto first = *clients.first_frame_on(1);
  const int again = clients.viewer_connects() + 1;  // its connection to the new worker

  cluster_->worker(test::ProcessCluster::worker_index(from)).kill(SIGKILL);
  const auto killed = Clock::now();
  std::optional<double> moved;
  ASSERT_TRUE(clients.pump_until(
      [&] {
        if (!moved && stream_row(database_url(), "kim").worker == to) moved = seconds_between(killed, Clock::now());
        return clients.frames_on(again) >= 3;
      },
      25000))
      << "the viewer got no frame after the kill";
  const double back = seconds_between(killed, *clients.first_frame_on(again));
  std::printf("failover: moved %.2f s, first processed frame at the viewer %.2f s after kill -9\n", moved.value_or(-1), back);
  ASSERT_TRUE(moved);
  EXPECT_LE(*moved, 10.0);
  EXPECT_LE(back, 12.0) << "the viewer waited " << back << " s";
  EXPECT_NE(clients.viewer_url().find(media_base(place(to))), std::string::npos) << clients.viewer_url();
  EXPECT_NE(clients.ingest_url().find("secret=" + secret), std::string::npos);
  EXPECT_GE(clients.viewer_connects(), 2);
  EXPECT_GE(clients.ingest_connects(), 2);

  clients.pump(2000);
  ASSERT_EQ(call(1, "POST", "/api/streams/current/stop", "", kim).status, 200);
  const auto stopped = Clock::now();
  const StreamRow row = stream_row(database_url(), "kim");
  const double alive = seconds_between(first, killed) + seconds_between(*clients.first_frame_on(again), stopped);
  std::printf("failover: billed %lld s of %.1f s wall, %.1f s processing\n", row.billed,
              seconds_between(first, stopped), alive);
  EXPECT_LE(double(row.billed), alive + 2) << "the dead interval was billed";
  EXPECT_GE(double(row.billed), alive - 3);
  EXPECT_LE(double(row.billed), seconds_between(first, stopped) - 4);
  expect_ledger_consistent(database_url(), "kim");
  db::Connection db(database_url());
  EXPECT_EQ(db.exec("SELECT count(*) FROM streams s JOIN users u ON u.id = s.user_id WHERE u.username = 'kim'").value(0, 0), "1");

  cluster_->start_worker(test::ProcessCluster::worker_index(from));  // back for whoever runs next
  EXPECT_EQ(cluster_->wait_ready(30000), "");
}

// The same with no room anywhere (the other worker is full): the stream
// waits the grace (3 s here) and ends "worker_lost"; the public stream says
// it is offline.
TEST_F(Cluster, WithNoRoomAnywhereTheStreamEndsWorkerLostAfterTheGrace) {
  const std::string lia = user("lia", 5), max = user("max", 5);
  auto a = call(0, "POST", "/api/streams", R"({"title":"l"})", lia);
  auto b = call(1, "POST", "/api/streams", R"({"title":"m"})", max);
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(b.status, 201) << b.body;
  const std::string from = parse(a.body)["ingest"]["worker"].GetString();
  cluster_->worker(test::ProcessCluster::worker_index(from)).kill(SIGKILL);
  const auto killed = Clock::now();
  ASSERT_TRUE(WsClient::spin([&] { return !stream_row(database_url(), "lia").live; }, 20000));
  const double ended = seconds_between(killed, Clock::now());
  std::printf("worker_lost: ended %.2f s after kill -9 (timeout 5 s + grace 3 s)\n", ended);
  EXPECT_EQ(stream_row(database_url(), "lia").end_reason, "worker_lost");
  EXPECT_GE(ended, 5.0 + 3.0 - 1.5);
  EXPECT_LE(ended, 5.0 + 3.0 + 3.0);
  EXPECT_FALSE(parse(call(1, "GET", "/api/streams/lia").body)["live"].GetBool());
  EXPECT_TRUE(stream_row(database_url(), "max").live);  // untouched
  expect_ledger_consistent(database_url(), "lia");
  EXPECT_EQ(call(1, "POST", "/api/streams/current/stop", "", max).status, 200);
  cluster_->start_worker(test::ProcessCluster::worker_index(from));
  EXPECT_EQ(cluster_->wait_ready(30000), "");
}

// A drain, make-before-break: `miraged worker drain NAME` (and then SIGTERM
// to the other worker): the stream gets a pipeline on the other worker
// first, then its publisher and viewer are told "moved" (4001) and go there;
// the viewer's longest wait between two frames stays under 3 s; the drained
// worker exits 0 by itself; billing goes on without a gap billed twice.
TEST_F(Cluster, ADrainMovesTheStreamMakeBeforeBreak) {
  const std::string nia = user("nia", 5);
  auto started = call(0, "POST", "/api/streams", R"({"title":"n"})", nia);
  ASSERT_EQ(started.status, 201) << started.body;
  const std::string first_worker = parse(started.body)["ingest"]["worker"].GetString();
  LiveClients clients(*cluster_, "nia", nia);
  ASSERT_TRUE(clients.pump_until([&] { return clients.frames() >= 5; }, 20000)) << "no processed frames";
  const auto first = *clients.first_frame_on(1);

  auto drain_and_check = [&](const std::string& from, bool by_command) {
    const std::string to = from == "w1" ? "w2" : "w1";
    const int i = test::ProcessCluster::worker_index(from);
    std::unique_ptr<test::ChildProcess> command;
    const auto t0 = Clock::now();
    if (by_command)
      command = std::make_unique<test::ChildProcess>(
          std::vector<std::string>{MIRAGED_PATH, "worker", "drain", from, "--database-url", database_url()},
          cluster_->dir() + "/drain-" + from + ".log");
    else
      ::kill(cluster_->worker(i).pid(), SIGTERM);
    ASSERT_TRUE(clients.pump_until([&] { return !cluster_->worker(i).alive() && (!command || !command->alive()); }, 30000))
        << from << " did not drain";
    const double took = seconds_between(t0, Clock::now());
    const auto exited = Clock::now();
    EXPECT_TRUE(clients.pump_until([&] { return clients.frames_after(exited) >= 3; }, 10000));
    const double gap = clients.longest_gap_after(t0);
    std::printf("drain (%s): %s exited after %.2f s; the viewer's longest gap %.2f s\n",
                by_command ? "miraged worker drain" : "SIGTERM", from.c_str(), took, gap);
    EXPECT_LT(gap, 3.0);
    EXPECT_EQ(stream_row(database_url(), "nia").worker, to);
    EXPECT_TRUE(stream_row(database_url(), "nia").live);
    EXPECT_NE(clients.viewer_url().find(media_base(place(to))), std::string::npos) << clients.viewer_url();
    const int status = cluster_->worker(i).kill(SIGKILL);  // reaped already: its exit status
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker status " << status;
    if (command) {
      const int s = command->kill(SIGKILL);
      EXPECT_TRUE(WIFEXITED(s) && WEXITSTATUS(s) == 0) << "drain command status " << s;
    }
    cluster_->start_worker(i);
    EXPECT_EQ(cluster_->wait_ready(30000), "");
  };
  drain_and_check(first_worker, true);
  drain_and_check(first_worker == "w1" ? "w2" : "w1", false);
  bool told_moved = false;
  for (const auto& c : clients.closes()) told_moved |= c.find("viewer 4001 moved") != std::string::npos;
  std::string closes;
  for (const auto& c : clients.closes()) closes += c + "; ";
  EXPECT_TRUE(told_moved) << "the viewer was not closed with 4001 moved: " << closes;

  clients.pump(1000);
  ASSERT_EQ(call(1, "POST", "/api/streams/current/stop", "", nia).status, 200);
  const double wall = seconds_between(first, Clock::now());
  const StreamRow row = stream_row(database_url(), "nia");
  std::printf("drain: billed %lld s of %.1f s\n", row.billed, wall);
  EXPECT_LE(double(row.billed), wall + 1);
  EXPECT_GE(double(row.billed), wall - 4);
  expect_ledger_consistent(database_url(), "nia");
}

// PostgreSQL stopped for 7 s and started again under a live stream: the
// viewer keeps getting frames throughout (the media plane does not need the
// database), the API fails while it is down and answers again by itself, the
// stream stays on its worker (nobody is declared dead), a credit committed
// before is still there, the ledger is consistent and the outage is not
// billed.
TEST_F(Cluster, RestartingPostgresLosesNothingAndEverythingRecovers) {
  const std::string oli = user("oli", 5);
  auto started = call(0, "POST", "/api/streams", R"({"title":"o"})", oli);
  ASSERT_EQ(started.status, 201) << started.body;
  const std::string worker = parse(started.body)["ingest"]["worker"].GetString();
  LiveClients clients(*cluster_, "oli", oli);
  ASSERT_TRUE(clients.pump_until([&] { return clients.frames() >= 5; }, 20000)) << "no processed frames";
  const auto first = *clients.first_frame_on(1);
  // Billing has started (the worker reported the first frame and a meter ran).
  ASSERT_TRUE(clients.pump_until([&] { return stream_row(database_url(), "oli").billed >= 1; }, 10000));
  {
    db::Connection db(database_url());
    db.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) "
            "SELECT id, 600, 'grant: before the restart' FROM users WHERE username = 'oli'");
  }
  const auto down = Clock::now();
  std::thread restart([&] { cluster_->postgres().restart(7000); });
  int failed = 0;
  clients.pump_until([&] {
    if (seconds_between(down, Clock::now()) > 2 && seconds_between(down, Clock::now()) < 6 && failed == 0)
      failed = call(0, "GET", "/api/me/dashboard", "", oli).status;
    return seconds_between(down, Clock::now()) >= 6.5;
  }, 10000);
  const size_t during = clients.frames_after(down + std::chrono::seconds(1));
  restart.join();
  const auto up = Clock::now();
  std::printf("postgres: down %.1f s; the API answered %d meanwhile; the viewer got %zu frames in it\n",
              seconds_between(down, up), failed, during);
  EXPECT_EQ(failed, 503) << "the API should say the database is unavailable";
  EXPECT_GE(during, 10u) << "the viewer got no frames while the database was down";
  // Both replicas answer the dashboard again (a clean-clone run once missed
  // a 20 s bound here: the statuses each replica last gave are said).
  int last0 = 0, last1 = 0;
  ASSERT_TRUE(clients.pump_until([&] {
    last0 = call(0, "GET", "/api/me/dashboard", "", oli).status;
    last1 = call(1, "GET", "/api/me/dashboard", "", oli).status;
    return last0 == 200 && last1 == 200;
  }, 40000)) << "the API did not recover: replica 1 last answered " << last0 << ", replica 2 " << last1;
  std::printf("postgres: the API answers again %.1f s after the start\n", seconds_between(up, Clock::now()));
  // Metering resumes (the timers reconnect), the stream stays where it was.
  const long long billed_at_up = stream_row(database_url(), "oli").billed;
  EXPECT_TRUE(clients.pump_until([&] { return stream_row(database_url(), "oli").billed >= billed_at_up + 2; }, 10000))
      << "metering did not resume";
  clients.pump(5000);  // past the timeout after the start: nobody declared dead
  EXPECT_EQ(stream_row(database_url(), "oli").worker, worker);
  EXPECT_TRUE(stream_row(database_url(), "oli").live);
  EXPECT_EQ(clients.viewer_connects(), 1) << "the viewer had to reconnect";
  ASSERT_EQ(call(0, "POST", "/api/streams/current/stop", "", oli).status, 200);
  const double wall = seconds_between(first, Clock::now());
  const StreamRow row = stream_row(database_url(), "oli");
  std::printf("postgres: billed %lld s of %.1f s with a 7 s outage\n", row.billed, wall);
  std::string ledger;
  {
    db::Connection db(database_url());
    auto r = db.exec("SELECT l.delta_seconds, to_char(l.created_at, 'HH24:MI:SS.MS') FROM credit_ledger l "
                     "JOIN users u ON u.id = l.user_id WHERE u.username = 'oli' AND l.reason LIKE 'stream %' ORDER BY l.id");
    for (int i = 0; i < r.rows(); ++i) ledger += r.value(i, 0) + "@" + r.value(i, 1) + " ";
  }
  EXPECT_LE(double(row.billed), wall - 5) << "the outage was billed; the stream's ledger: " << ledger;
  // Unbilled besides the outage: up to a second before billing started (the
  // first frame's report), before the outage (the last heartbeat), after it
  // (the worker's reconnect) and at the stop (the last heartbeat).
  EXPECT_GE(double(row.billed), wall - 7.5 - 5);
  db::Connection db(database_url());
  EXPECT_EQ(db.exec("SELECT count(*) FROM credit_ledger WHERE reason = 'grant: before the restart'").value(0, 0), "1");
  expect_ledger_consistent(database_url(), "oli");
}

// The public front: nginx as deploy/nginx/render makes it from
// deploy/nginx/mirage.conf, one origin for the API and every worker's media
// (/w/NAME/). The workers publish their URLs under it. Through it: the API,
// a publisher and a viewer on the WebSockets, and HLS, whose segments many
// viewers fetch while the worker serves each about once (the access log's
// upstream field says which requests reached it); playlists are never
// cached. Then kill -9 of the stream's worker: the clients, still only
// talking to the front, end up on the other worker's prefix.
class FrontCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    test::ClusterOptions options;
    options.replicas = 1;
    options.front = true;
    options.netns = false;
    options.api_args = {"--meter-seconds", "1", "--registrations-per-address", "1000"};
    cluster_ = new test::ProcessCluster(options);
    ASSERT_EQ(cluster_->wait_ready(), "");
  }
  static void TearDownTestSuite() {
    if (::testing::UnitTest::GetInstance()->Failed()) cluster_->keep_files();
    delete cluster_;
    cluster_ = nullptr;
  }
  static inline test::ProcessCluster* cluster_ = nullptr;
};

TEST_F(FrontCluster, EverythingGoesThroughOneOriginAndSegmentsAreFetchedOnce) {
  const std::string origin = "127.0.0.1:" + std::to_string(cluster_->front_port());
  EXPECT_EQ(cluster_->call_front("GET", "/api/streams/nobody").status, 404);  // the API, through the front
  const std::string pam = cluster_->user("pam", 5);
  auto started = cluster_->call_front("POST", "/api/streams", R"({"title":"p"})", pam);
  ASSERT_EQ(started.status, 201) << started.body;
  auto s = parse(started.body);
  const std::string worker = s["ingest"]["worker"].GetString();
  EXPECT_EQ(std::string(s["ingest"]["websocket"].GetString()).rfind("ws://" + origin + "/w/" + worker + "/ingest/pam?secret=", 0), 0u);
  const std::string hls = s["watch"]["hls"].GetString();
  EXPECT_EQ(hls, "http://" + origin + "/w/" + worker + "/live/pam/index.m3u8");

  LiveClients clients(*cluster_, "pam", pam);
  ASSERT_TRUE(clients.pump_until([&] { return clients.frames() >= 5; }, 20000)) << "no frames through the front";
  EXPECT_EQ(clients.viewer_url(), "ws://" + origin + "/w/" + worker + "/watch/pam");

  // HLS through the front: 20 viewers each fetch the playlist and every
  // segment it lists, four times over a few seconds.
  const std::string path = hls.substr(hls.find("/w/"));
  std::set<std::string> segments;
  int playlists = 0, fetched = 0;
  ASSERT_TRUE(clients.pump_until([&] {
    auto r = cluster_->call_front("GET", path);
    return r.status == 200 && r.body.find(".ts") != std::string::npos;
  }, 30000)) << "no HLS playlist through the front";
  for (int round = 0; round < 4; ++round) {
    for (int viewer = 0; viewer < 20; ++viewer) {
      auto playlist = cluster_->call_front("GET", path);
      ++playlists;
      std::istringstream lines(playlist.body);
      for (std::string line; std::getline(lines, line);)
        if (line.size() > 3 && line.compare(line.size() - 3, 3, ".ts") == 0) {
          segments.insert(line);
          if (cluster_->call_front("GET", path.substr(0, path.rfind('/') + 1) + line).status == 200) ++fetched;
        }
    }
    clients.pump(1000);
  }
  const int segment_fetches = cluster_->front_upstream_requests(".ts");
  const int playlist_fetches = cluster_->front_upstream_requests("index.m3u8");
  std::printf("front: %d segment requests for %zu segments reached the worker %d times; %d playlist requests, %d upstream\n",
              fetched, segments.size(), segment_fetches, playlists, playlist_fetches);
  ASSERT_GE(segments.size(), 2u);
  EXPECT_GE(fetched, 20 * int(segments.size()) / 2);
  EXPECT_LE(segment_fetches, int(segments.size()) + 2) << "segments are not cached by the front";
  EXPECT_GE(playlist_fetches, playlists + 1) << "playlists must not be cached";  // + the readiness polls

  // The worker dies; the clients (still only on the front) follow the stream.
  const std::string other = worker == "w1" ? "w2" : "w1";
  const int again = clients.viewer_connects() + 1;
  cluster_->worker(test::ProcessCluster::worker_index(worker)).kill(SIGKILL);
  ASSERT_TRUE(clients.pump_until([&] { return clients.frames_on(again) >= 3; }, 25000)) << "no frames after the kill";
  EXPECT_EQ(clients.viewer_url(), "ws://" + origin + "/w/" + other + "/watch/pam");
  EXPECT_EQ(cluster_->call_front("POST", "/api/streams/current/stop", "", pam).status, 200);
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
