// The REST API end to end: a real PostgreSQL started by the test, the real
// Pistache endpoint on a free loopback port, HTTP over sockets.
#include "api_fixture.h"

#include <thread>

#include "repo/streams.h"
#include "repo/workers.h"

namespace mirage {
namespace {

TEST_F(Api, RegisterValidatesAndRefusesDuplicates) {
  auto ok = call("POST", "/api/auth/register", R"({"username":"alice","email":"a@example.org","password":"password123"})");
  EXPECT_EQ(ok.status, 201);
  auto body = parse(ok.body);
  EXPECT_STREQ(body["user"]["username"].GetString(), "alice");
  EXPECT_FALSE(body["user"].HasMember("password_hash"));
  EXPECT_EQ(ok.body.find("password"), std::string::npos);

  EXPECT_EQ(call("POST", "/api/auth/register", R"({"username":"alice","email":"b@example.org","password":"password123"})").status, 409);
  // Case-insensitive uniqueness: upper case is refused as a username at all.
  auto upper = call("POST", "/api/auth/register", R"({"username":"Alice","email":"b@example.org","password":"password123"})");
  EXPECT_EQ(upper.status, 400);
  EXPECT_EQ(call("POST", "/api/auth/register", R"({"username":"live","email":"b@example.org","password":"password123"})").status, 400);
  EXPECT_EQ(call("POST", "/api/auth/register", R"({"username":"bob","email":"b@example.org","password":"short"})").status, 400);
  EXPECT_EQ(call("POST", "/api/auth/register", R"({"username":"bob","email":"nope","password":"password123"})").status, 400);
}

TEST_F(Api, BadBodiesAreClearErrors) {
  auto malformed = call("POST", "/api/auth/register", R"({"username": "bob",)");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(error_code(malformed), "invalid_json");
  auto array = call("POST", "/api/auth/register", "[1, 2]");
  EXPECT_EQ(array.status, 400);
  auto wrong_type = call("POST", "/api/auth/register", R"({"username": 5, "email": "x@y", "password": "password123"})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_NE(wrong_type.body.find("'username' must be a string"), std::string::npos);
  auto missing = call("POST", "/api/auth/login", R"({"username": "bob"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("'password' is required"), std::string::npos);
  EXPECT_EQ(call("POST", "/api/auth/login", std::string(2 << 20, 'x')).status, 413);  // 2 MiB
  auto unknown = call("GET", "/api/no/such/thing");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_code(unknown), "not_found");
}

TEST_F(Api, SqlMetacharactersAreJustText) {
  std::string token = user("mallory");
  const std::string nasty = R"(Robert'); DROP TABLE users; --\" \\ $1 %)";
  auto r = call("PATCH", "/api/me", R"({"display_name":")" + nasty + R"(","bio":"' OR '1'='1"})", token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto me = parse(call("GET", "/api/me", "", token).body);
  EXPECT_STREQ(me["display_name"].GetString(), "Robert'); DROP TABLE users; --\" \\ $1 %");
  EXPECT_STREQ(me["bio"].GetString(), "' OR '1'='1");
  EXPECT_EQ(call("GET", "/api/streams/x'%20OR%201=1--").status, 404);
  // Title, comment text and style travel as values too.
  accounts_->grant("mallory", 2, "test");
  auto live = call("POST", "/api/streams", R"({"title":"'; DELETE FROM streams; --"})", token);
  ASSERT_EQ(live.status, 201);
  EXPECT_STREQ(parse(call("GET", "/api/streams/mallory").body)["title"].GetString(), "'; DELETE FROM streams; --");
  auto comment = call("POST", "/api/streams/mallory/comments", R"({"text":"1'); DROP TABLE comments; --"})", token);
  ASSERT_EQ(comment.status, 201);
  EXPECT_STREQ(parse(comment.body)["text"].GetString(), "1'); DROP TABLE comments; --");
  EXPECT_EQ(call("POST", "/api/streams/mallory/styles", R"({"style":"toon' OR '1'='1"})", token).status, 400);
}

TEST_F(Api, LoginSessionsCookiesAndLogout) {
  user("carol");
  auto login = call("POST", "/api/auth/login", R"({"username":"carol","password":"password123"})");
  ASSERT_EQ(login.status, 200);
  const std::string token = parse(login.body)["token"].GetString();
  EXPECT_EQ(token.size(), 43u);
  const std::string cookie = login.headers["set-cookie"];
  EXPECT_NE(cookie.find("mirage_session=" + token), std::string::npos);
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Lax"), std::string::npos);

  EXPECT_EQ(call("GET", "/api/me", "", token).status, 200);
  auto by_cookie = test::http(server_->port(), "GET", "/api/me", "", {{"Cookie", "mirage_session=" + token}});
  EXPECT_EQ(by_cookie.status, 200);
  EXPECT_EQ(call("GET", "/api/me").status, 401);
  EXPECT_EQ(call("GET", "/api/me", "", "not-a-token").status, 401);

  // Only the hash is stored.
  db::Connection c(config_.database_url);
  EXPECT_EQ(c.exec("SELECT count(*) FROM sessions WHERE position(convert_to($1, 'UTF8') in token_hash) > 0",
                   {token}).value(0, 0), "0");

  EXPECT_EQ(call("POST", "/api/auth/logout", "", token).status, 204);
  EXPECT_EQ(call("GET", "/api/me", "", token).status, 401);
}

TEST_F(Api, FailedLoginsAreRateLimited) {
  user("dave");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(call("POST", "/api/auth/login", R"({"username":"dave","password":"wrong-password"})").status, 401);
  auto limited = call("POST", "/api/auth/login", R"({"username":"dave","password":"wrong-password"})");
  EXPECT_EQ(limited.status, 429);
  EXPECT_GE(std::stoi(limited.headers["retry-after"]), 1);
  // Unknown users are answered like wrong passwords.
  EXPECT_EQ(call("POST", "/api/auth/login", R"({"username":"nobody","password":"password123"})").status, 401);
}

TEST_F(Api, ProfileAndPasswordChange) {
  std::string first = user("erin");
  auto second = parse(call("POST", "/api/auth/login", R"({"username":"erin","password":"password123"})").body);
  const std::string other = second["token"].GetString();
  EXPECT_EQ(call("POST", "/api/me/password", R"({"current_password":"wrong-one!!","new_password":"newpassword1"})", first).status, 403);
  EXPECT_EQ(call("POST", "/api/me/password", R"({"current_password":"password123","new_password":"newpassword1"})", first).status, 204);
  EXPECT_EQ(call("GET", "/api/me", "", first).status, 200);   // this session stays
  EXPECT_EQ(call("GET", "/api/me", "", other).status, 401);   // other sessions end
  EXPECT_EQ(call("POST", "/api/auth/login", R"({"username":"erin","password":"newpassword1"})").status, 200);
  EXPECT_EQ(call("POST", "/api/me/password", R"({"current_password":"newpassword1","new_password":"short"})", first).status, 400);
  EXPECT_EQ(call("PATCH", "/api/me", R"({"display_name":")" + std::string(65, 'x') + R"("})", first).status, 400);
  EXPECT_EQ(call("PATCH", "/api/me", R"({"bio":42})", first).status, 400);
  EXPECT_EQ(call("PATCH", "/api/me", R"({"bio":"x"})").status, 401);
  EXPECT_EQ(call("GET", "/api/me/credits").status, 401);
  EXPECT_EQ(call("GET", "/api/me/dashboard").status, 401);
  EXPECT_EQ(call("GET", "/api/me/streams").status, 401);
  EXPECT_EQ(call("POST", "/api/auth/logout").status, 401);
}

TEST_F(Api, GoingLiveNeedsMoreThanOneCreditAndOneStreamAtATime) {
  std::string poor = user("frank", 1);
  auto refused = call("POST", "/api/streams", R"({"title":"hi"})", poor);
  EXPECT_EQ(refused.status, 402);
  EXPECT_EQ(call("POST", "/api/streams", R"({"title":"hi"})").status, 401);

  std::string token = user("grace", 2);
  auto started = call("POST", "/api/streams", R"({"title":"hello"})", token);
  ASSERT_EQ(started.status, 201) << started.body;
  auto s = parse(started.body);
  EXPECT_STREQ(s["stream"]["title"].GetString(), "hello");
  // Percent-encoded, so that GStreamer's srtsink takes the URL verbatim.
  EXPECT_NE(std::string(s["ingest"]["srt"].GetString()).find("?streamid=%23%21%3A%3Ar%3Dgrace%2Cm%3Dpublish%2Cs%3D"),
            std::string::npos);
  EXPECT_NE(std::string(s["ingest"]["websocket"].GetString()).find("/ingest/grace?secret="), std::string::npos);
  EXPECT_NE(std::string(s["watch"]["hls"].GetString()).find("/live/grace/index.m3u8"), std::string::npos);
  EXPECT_EQ(call("POST", "/api/streams", R"({"title":"again"})", token).status, 409);

  auto pub = parse(call("GET", "/api/streams/grace").body);
  EXPECT_TRUE(pub["live"].GetBool());
  EXPECT_STREQ(pub["title"].GetString(), "hello");
  EXPECT_EQ(pub["styles"].Size(), 3u);
  EXPECT_EQ(call("GET", "/api/streams/nobody").status, 404);

  EXPECT_EQ(call("POST", "/api/streams/current/stop", "", token).status, 200);
  EXPECT_FALSE(parse(call("GET", "/api/streams/grace").body)["live"].GetBool());
  EXPECT_EQ(call("POST", "/api/streams/current/stop", "", token).status, 409);
}

// 20 parallel starts for one user: the database lets exactly one through.
TEST_F(Api, StartRaceGivesOneStream) {
  std::string token = user("heidi", 5);
  std::atomic<int> created{0}, conflicts{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&] {
      int status = call("POST", "/api/streams", R"({"title":"race"})", token).status;
      (status == 201 ? created : status == 409 ? conflicts : other)++;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(conflicts, 19);
  EXPECT_EQ(other, 0);
}

TEST_F(Api, MeteringBillsOnceEvenWhenRunConcurrently) {
  std::string token = user("ivan", 3);  // 1800 s
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"m"})", token).status, 201);
  sync_worker();  // the worker runs it
  media_.set_viewers("ivan", 4, 9);
  sync_worker();  // and has reported the viewers
  age_stream("ivan", 120);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&] { streams_->meter_all(); });
  for (auto& t : threads) t.join();
  // 120 s (plus the seconds the test itself took, at most a few on a
  // loaded machine), never 8 x 120.
  const long long left = balance(token);
  EXPECT_GE(left, 1800 - 125);
  EXPECT_LE(left, 1800 - 120);
  auto credits = parse(call("GET", "/api/me/credits", "", token).body);
  EXPECT_EQ(credits["ledger"][0]["delta_seconds"].GetInt64(), left - 1800);
  auto history = parse(call("GET", "/api/me/streams", "", token).body);
  EXPECT_EQ(history["streams"][0]["peak_viewers"].GetInt(), 4);
  EXPECT_EQ(history["streams"][0]["unique_viewers"].GetInt(), 9);
  EXPECT_NEAR(history["streams"][0]["average_viewers"].GetDouble(), 4.0, 1e-9);
  EXPECT_GT(history["streams"][0]["credits_used"].GetDouble(), 0.19);
}

TEST_F(Api, StreamEndsWhenCreditsRunOut) {
  std::string token = user("judy", 2);  // 1200 s
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"m"})", token).status, 201);
  age_stream("judy", 5000);
  streams_->meter_all();
  EXPECT_EQ(balance(token), 0);  // never below zero
  EXPECT_FALSE(parse(call("GET", "/api/streams/judy").body)["live"].GetBool());
  sync_worker();
  EXPECT_EQ(media_.stop_reason("judy"), "credits_exhausted");
  auto history = parse(call("GET", "/api/me/streams", "", token).body);
  EXPECT_STREQ(history["streams"][0]["stream"]["end_reason"].GetString(), "credits_exhausted");
  EXPECT_EQ(history["streams"][0]["stream"]["seconds_billed"].GetInt64(), 1200);
}

TEST_F(Api, CommentsAreToggledValidatedAndRateLimited) {
  std::string streamer = user("kim", 2);
  std::string viewer = user("leo");
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"chat"})", streamer).status, 201);  // chat needs a live stream
  EXPECT_EQ(call("POST", "/api/streams/kim/comments", R"({"text":"hi"})").status, 401);
  auto posted = call("POST", "/api/streams/kim/comments", R"({"text":"hi there"})", viewer);
  ASSERT_EQ(posted.status, 201) << posted.body;
  const long long id = parse(posted.body)["id"].GetInt64();
  EXPECT_EQ(call("POST", "/api/streams/kim/comments", R"({"text":""})", viewer).status, 400);
  EXPECT_EQ(call("POST", "/api/streams/kim/comments", R"({"text":")" + std::string(501, 'a') + R"("})", viewer).status, 400);
  // 500 characters of two bytes each are fine: the limit counts characters.
  std::string umlauts;
  for (int i = 0; i < 500; ++i) umlauts += "\xc3\xa4";
  EXPECT_EQ(call("POST", "/api/streams/kim/comments", R"({"text":")" + umlauts + R"("})", viewer).status, 201);

  EXPECT_EQ(call("GET", "/api/streams/kim/comments?limit=0").status, 400);
  EXPECT_EQ(call("GET", "/api/streams/kim/comments?limit=abc").status, 400);
  EXPECT_EQ(call("GET", "/api/streams/nobody/comments").status, 404);
  EXPECT_EQ(call("POST", "/api/streams/nobody/comments", R"({"text":"hi"})", viewer).status, 404);
  auto list = parse(call("GET", "/api/streams/kim/comments?limit=10").body);
  ASSERT_EQ(list["comments"].Size(), 2u);
  EXPECT_STREQ(list["comments"][1]["author"].GetString(), "leo");
  const long long newest = list["comments"][0]["id"].GetInt64();
  auto older = parse(call("GET", "/api/streams/kim/comments?before=" + std::to_string(newest)).body);
  ASSERT_EQ(older["comments"].Size(), 1u);  // paging
  EXPECT_EQ(older["comments"][0]["id"].GetInt64(), id);

  EXPECT_EQ(call("PATCH", "/api/streams/current/settings", R"({"comments_enabled":false})", streamer).status, 200);
  EXPECT_EQ(call("POST", "/api/streams/kim/comments", R"({"text":"hello"})", viewer).status, 403);
  EXPECT_FALSE(parse(call("GET", "/api/streams/kim").body)["comments_enabled"].GetBool());
  EXPECT_EQ(call("PATCH", "/api/streams/current/settings", R"({"comments_enabled":"no"})", streamer).status, 400);
  call("PATCH", "/api/streams/current/settings", R"({"comments_enabled":true})", streamer);

  EXPECT_EQ(call("DELETE", "/api/streams/kim/comments/" + std::to_string(id), "", viewer).status, 403);
  EXPECT_EQ(call("DELETE", "/api/streams/kim/comments/" + std::to_string(id), "", streamer).status, 204);
  EXPECT_EQ(call("DELETE", "/api/streams/kim/comments/" + std::to_string(id), "", streamer).status, 404);

  // Third comment in the window is allowed, the fourth is not.
  EXPECT_EQ(call("POST", "/api/streams/kim/comments", R"({"text":"3"})", viewer).status, 201);
  auto limited = call("POST", "/api/streams/kim/comments", R"({"text":"4"})", viewer);
  EXPECT_EQ(limited.status, 429);
  EXPECT_FALSE(limited.headers["retry-after"].empty());
}

TEST_F(Api, StyleQueueIsFifoAndReachesTheWorker) {
  std::string streamer = user("mia", 2);
  std::string viewer = user("ned");
  EXPECT_EQ(call("POST", "/api/streams/mia/styles", R"({"style":"toon"})", viewer).status, 409);  // not live
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"s"})", streamer).status, 201);
  EXPECT_EQ(call("POST", "/api/streams/mia/styles", R"({"style":"cubism"})", viewer).status, 400);
  EXPECT_EQ(call("POST", "/api/streams/mia/styles", R"({"style":"toon"})", viewer).status, 201);
  auto queued = parse(call("POST", "/api/streams/mia/styles", R"({"style":"sepia"})", viewer).body);
  EXPECT_STREQ(queued["active"]["style"].GetString(), "toon");
  ASSERT_EQ(queued["queue"].Size(), 1u);
  EXPECT_STREQ(queued["queue"][0]["style"].GetString(), "sepia");
  sync_worker();
  EXPECT_EQ(media_.applied("mia"), std::vector<std::string>{"toon"});
  EXPECT_STREQ(parse(call("GET", "/api/streams/mia").body)["style"].GetString(), "toon");

  auto listed = parse(call("GET", "/api/streams/mia/styles").body);  // public
  EXPECT_STREQ(listed["active"]["style"].GetString(), "toon");
  EXPECT_EQ(listed["queue"].Size(), 1u);
  auto skipped = parse(call("POST", "/api/streams/current/styles/skip", "", streamer).body);
  EXPECT_STREQ(skipped["active"]["style"].GetString(), "sepia");
  sync_worker();
  EXPECT_EQ(media_.applied("mia"), (std::vector<std::string>{"toon", "sepia"}));
  // The head stays for style_seconds (30 here), then the next one applies.
  call("POST", "/api/streams/mia/styles", R"({"style":"toon"})", viewer);
  streams_->advance_all_styles();
  sync_worker();
  EXPECT_EQ(media_.applied("mia").size(), 2u);  // sepia still has time left
  {
    db::Connection c(config_.database_url);
    c.exec("UPDATE style_requests SET activated_at = activated_at - interval '31 seconds' WHERE status = 'active'");
  }
  streams_->advance_all_styles();
  sync_worker();
  EXPECT_EQ(media_.applied("mia"), (std::vector<std::string>{"toon", "sepia", "toon"}));
  call("POST", "/api/streams/mia/styles", R"({"style":"sketch"})", viewer);
  auto cleared = parse(call("POST", "/api/streams/current/styles/clear", "", streamer).body);
  EXPECT_EQ(cleared["queue"].Size(), 0u);
  EXPECT_EQ(call("POST", "/api/streams/current/styles/skip", "", viewer).status, 409);  // viewer has no stream

  EXPECT_EQ(call("PATCH", "/api/streams/current/settings", R"({"styles_enabled":false})", streamer).status, 200);
  EXPECT_EQ(call("POST", "/api/streams/mia/styles", R"({"style":"toon"})", viewer).status, 403);

  auto dash = parse(call("GET", "/api/me/dashboard", "", streamer).body);
  EXPECT_TRUE(dash["live"].GetBool());
  EXPECT_STREQ(dash["styles"]["active"]["style"].GetString(), "toon");
  EXPECT_FALSE(dash["settings"]["styles_enabled"].GetBool());
}

// Three media workers of capacity 20 (logging media planes) instead of the
// one of capacity 100.
class ApiPlacement : public Api {
 protected:
  void configure(Config& c) override { c.max_connections_per_address = 200; }  // 100 clients on 127.0.0.1
  void configure(service::StreamSettings& s) override { s.replace_grace_seconds = 3; }
  void start_worker() override {
    for (int i = 0; i < 3; ++i) {
      planes_.push_back(std::make_unique<media::LoggingMediaPlane>(std::vector<std::string>{"toon"}, true));
      workers_.push_back(make_worker(*planes_.back(), "gpu-" + std::to_string(i), 20,
                                     "http://127.0.0." + std::to_string(i + 2) + ":8081"));
    }
  }
  void TearDown() override {
    workers_.clear();
    Api::TearDown();
  }
  std::string scalar(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
    db::Connection c(config_.database_url);
    return c.exec(sql, params).value(0, 0);
  }
  // Worker |name| as a process that died |seconds| ago: its row stays, its
  // heartbeat stopped then (a process with another instance id).
  void freeze(const std::string& name, int seconds) {
    db::Connection c(config_.database_url);
    c.exec("INSERT INTO media_workers (name, instance, media_url, capacity, model, device, heartbeat_at) "
           "VALUES ($1, 'frozen', 'http://127.0.0.250:8081', 20, 'test', 'cpu', now() - make_interval(secs => $2)) "
           "ON CONFLICT (name) DO UPDATE SET instance = 'frozen', heartbeat_at = now() - make_interval(secs => $2)",
           {name, std::to_string(seconds)});
  }
  // Worker |name| (gpu-N) dies as with kill -9, |seconds| ago: its streams
  // stay placed on it, unended and unbilled.
  void kill_worker(const std::string& name, int seconds) {
    freeze(name, seconds);
    auto& w = workers_[size_t(std::stoi(name.substr(4)))];
    (void)w->sync();  // it sees its row taken and stops, billing and ending nothing
    w.reset();
  }
  // Loss detection waits for the worker timeout after PostgreSQL started
  // (no heartbeat could be written before): let that much time pass.
  void wait_database_up_for(int seconds) {
    db::Connection c(config_.database_url);
    const double up = std::stod(c.exec("SELECT extract(epoch FROM now() - pg_postmaster_start_time())").value(0, 0));
    if (up < seconds + 0.2) std::this_thread::sleep_for(std::chrono::duration<double>(seconds + 0.2 - up));
  }
  std::vector<std::unique_ptr<media::LoggingMediaPlane>> planes_;
  std::vector<std::unique_ptr<media::Worker>> workers_;
};

// 100 streamers press "go live" at once against 60 places: exactly 60
// streams, 20 per worker (the row lock holds under the race), each started
// on the worker its URLs name; the other 40 get a clean 503 and leave no
// stream row and no ledger line.
TEST_F(ApiPlacement, RacingStartsNeverExceedAWorkersCapacity) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back(user("racer" + std::to_string(i), 5));
  std::vector<test::HttpResponse> answers(tokens.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < tokens.size(); ++i)
    threads.emplace_back([&, i] { answers[i] = call("POST", "/api/streams", R"({"title":"race"})", tokens[i]); });
  for (auto& t : threads) t.join();

  std::map<std::string, int> placed;  // worker name → streams
  int refused = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    if (a.status == 201) {
      auto d = parse(a.body);
      const std::string worker = d["ingest"]["worker"].GetString();
      ++placed[worker];
      const std::string host = "127.0.0." + std::to_string(std::stoi(worker.substr(4)) + 2) + ":8081";
      EXPECT_NE(std::string(d["watch"]["websocket"].GetString()).find("ws://" + host + "/watch/racer"), std::string::npos)
          << a.body;
    } else {
      EXPECT_EQ(a.status, 503) << a.body;
      EXPECT_EQ(error_code(a), "no_media_capacity");
      EXPECT_FALSE(a.headers.at("retry-after").empty());
      ++refused;
    }
  }
  EXPECT_EQ(refused, 40);
  for (const auto& [worker, n] : placed) EXPECT_EQ(n, 20) << worker;
  EXPECT_EQ(placed.size(), 3u);
  EXPECT_EQ(scalar("SELECT count(*) FROM streams WHERE ended_at IS NULL"), "60");
  EXPECT_EQ(scalar("SELECT count(*) FROM streams"), "60");
  EXPECT_EQ(scalar("SELECT max(n) FROM (SELECT count(*) AS n FROM streams GROUP BY worker_id) p"), "20");
  EXPECT_EQ(scalar("SELECT count(*) FROM credit_ledger WHERE reason NOT LIKE 'grant:%'"), "0");
  // Each worker's reconciler started exactly its own 20.
  for (auto& w : workers_) ASSERT_TRUE(w->sync());
  for (auto& p : planes_) EXPECT_EQ(p->local_streams().size(), 20u);
}

// A worker whose heartbeat is older than the timeout, or that is draining,
// gets no stream; with none live the start is a 503 with a sentence.
TEST_F(ApiPlacement, OnlyLiveNonDrainingWorkersGetStreams) {
  const std::string ann = user("ann", 5), bob = user("bob", 5);
  {
    db::Connection c(config_.database_url);
    c.exec("UPDATE media_workers SET draining = true WHERE name = 'gpu-0'");
    freeze("gpu-1", 600);
  }
  auto a = call("POST", "/api/streams", R"({"title":"a"})", ann);
  ASSERT_EQ(a.status, 201) << a.body;
  EXPECT_STREQ(parse(a.body)["ingest"]["worker"].GetString(), "gpu-2");

  scalar("UPDATE media_workers SET draining = true WHERE name = 'gpu-2' RETURNING id");  // nothing live but draining ones
  auto b = call("POST", "/api/streams", R"({"title":"b"})", bob);
  EXPECT_EQ(b.status, 503) << b.body;
  EXPECT_EQ(error_code(b), "no_media_capacity");
  EXPECT_NE(parse(b.body)["error"]["message"].GetString(), std::string());
  EXPECT_EQ(scalar("SELECT count(*) FROM streams s JOIN users u ON u.id = s.user_id WHERE u.username = 'bob'"), "0");

  // A worker no longer runs what is no longer placed on it.
  scalar("UPDATE streams SET worker_id = (SELECT id FROM media_workers WHERE name = 'gpu-1') "
         "WHERE ended_at IS NULL RETURNING id");
  ASSERT_TRUE(workers_[2]->sync());
  EXPECT_FALSE(planes_[2]->live("ann"));
  EXPECT_EQ(planes_[2]->stop_reason("ann"), "moved");
}

// A stream whose worker died (heartbeat 10 minutes old, last billed 20
// minutes ago) is moved to a live worker with room: same stream, same
// secret; billed the 10 minutes up to the death, not the 20, and nothing
// for the time until its first frame on the new worker. The API answers the
// new worker's URLs. A second pass (another replica) moves nothing again.
TEST_F(ApiPlacement, ADeadWorkersStreamMovesAndTheDeadTimeIsNotBilled) {
  wait_database_up_for(5);
  const std::string ann = user("ann", 5);
  auto a = call("POST", "/api/streams", R"({"title":"a"})", ann);
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string secret = parse(a.body)["ingest"]["secret"].GetString();
  const std::string from = parse(a.body)["ingest"]["worker"].GetString();
  kill_worker(from, 600);
  scalar("UPDATE streams SET billed_until = now() - interval '20 minutes' WHERE ended_at IS NULL RETURNING id");
  for (auto& p : planes_) p->set_processing(false);  // no frame on the new worker yet

  const long long before = balance(ann);
  EXPECT_EQ(streams_->replace_lost_streams(), 1);
  const long long billed = before - balance(ann);
  EXPECT_GE(billed, 600 - 2);
  EXPECT_LE(billed, 600 + 2);
  EXPECT_EQ(streams_->replace_lost_streams(), 0);
  auto now = parse(call("GET", "/api/me/dashboard", "", ann).body);
  const std::string to = now["ingest"]["worker"].GetString();
  EXPECT_NE(to, from);
  EXPECT_EQ(now["ingest"]["secret"].GetString(), secret);
  EXPECT_EQ(scalar("SELECT count(*) FROM streams"), "1");  // the same stream
  auto pub = parse(call("GET", "/api/streams/ann").body);
  const std::string host = "127.0.0." + std::to_string(std::stoi(to.substr(4)) + 2) + ":8081";
  EXPECT_NE(std::string(pub["watch"]["websocket"].GetString()).find(host), std::string::npos);

  // The new worker runs it; while it has processed nothing, nothing is billed.
  for (auto& w : workers_)
    if (w) ASSERT_TRUE(w->sync());
  auto& plane = *planes_[size_t(std::stoi(to.substr(4)))];
  EXPECT_TRUE(plane.live("ann"));
  EXPECT_EQ(scalar("SELECT billed_until IS NULL FROM streams"), "t");
  scalar("UPDATE streams SET started_at = started_at - interval '5 minutes' RETURNING id");
  streams_->meter_all();
  EXPECT_EQ(balance(ann), before - billed);
  // Its first frame starts the billing.
  plane.set_processing(true);
  for (auto& w : workers_)
    if (w) ASSERT_TRUE(w->sync());
  EXPECT_EQ(scalar("SELECT billed_until IS NOT NULL AND billed_until > now() - interval '5 s' FROM streams"), "t");
  // The watch pages were told to re-read the URLs.
  EXPECT_EQ(scalar("SELECT count(*) FROM channel_events WHERE payload = '{\"type\":\"moved\"}'"), "1");
  EXPECT_EQ(scalar("SELECT count(*) FROM credit_ledger WHERE reason LIKE 'stream %'"), "1");
}

// With no room anywhere, a dead worker's stream waits: it is still live
// while its worker has been silent for less than the timeout plus
// replace_grace_seconds (3 here), and then ends "worker_lost" (the outbox
// tells the watch pages so, in words they map).
TEST_F(ApiPlacement, WithNoRoomADeadWorkersStreamEndsWorkerLostAfterTheGrace) {
  wait_database_up_for(9);
  const std::string ann = user("ann", 5);
  auto a = call("POST", "/api/streams", R"({"title":"a"})", ann);
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string from = parse(a.body)["ingest"]["worker"].GetString();
  kill_worker(from, 6);  // silent 6 s: past the 5 s timeout, within 5 + 3
  scalar("UPDATE media_workers SET draining = true WHERE name <> $1 RETURNING id", {from});
  EXPECT_EQ(streams_->replace_lost_streams(), 0);
  EXPECT_EQ(scalar("SELECT ended_at IS NULL FROM streams"), "t");
  freeze(from, 9);
  EXPECT_EQ(streams_->replace_lost_streams(), 0);
  EXPECT_EQ(scalar("SELECT end_reason FROM streams"), "worker_lost");
  EXPECT_EQ(scalar("SELECT count(*) FROM channel_events WHERE payload LIKE '%worker_lost%'"), "1");
  // A viewer whose events socket missed it reads it from the public stream.
  auto pub = parse(call("GET", "/api/streams/ann").body);
  EXPECT_FALSE(pub["live"].GetBool());
  EXPECT_STREQ(pub["end_reason"].GetString(), "worker_lost");
}

// Billing starts at the stream's first processed frame, not at the start: a
// streamer who takes five minutes to get OBS going pays for none of them.
TEST_F(ApiPlacement, BillingStartsAtTheFirstProcessedFrame) {
  for (auto& p : planes_) p->set_processing(false);
  const std::string ann = user("ann", 5);
  const long long before = balance(ann);
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"a"})", ann).status, 201);
  for (auto& w : workers_) ASSERT_TRUE(w->sync());
  scalar("UPDATE streams SET started_at = started_at - interval '5 minutes' RETURNING id");
  streams_->meter_all();
  EXPECT_EQ(balance(ann), before);
  EXPECT_EQ(scalar("SELECT billed_until IS NULL FROM streams"), "t");
  for (auto& p : planes_) p->set_processing(true);
  for (auto& w : workers_) ASSERT_TRUE(w->sync());
  scalar("UPDATE streams SET billed_until = billed_until - interval '60 s' RETURNING id");
  streams_->meter_all();
  EXPECT_NEAR(double(before - balance(ann)), 60, 2);
}

// Drain: the worker takes no new stream, moves its stream to another worker
// (same stream and secret, billing continuous: nothing skipped, nothing
// twice), lets it go here once the new worker runs it (its clients are
// told "moved"), and is then drained.
TEST_F(ApiPlacement, ADrainMovesTheStreamsAndThenTheWorkerIsDrained) {
  const std::string ann = user("ann", 5);
  auto a = call("POST", "/api/streams", R"({"title":"a"})", ann);
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string from = parse(a.body)["ingest"]["worker"].GetString();
  const size_t i = size_t(std::stoi(from.substr(4)));
  ASSERT_TRUE(workers_[i]->sync());
  scalar("UPDATE streams SET billed_until = billed_until - interval '60 s' RETURNING id");
  const long long before = balance(ann);
  db::Connection c(config_.database_url);
  ASSERT_TRUE(repo::drain_worker(c, from, 5));  // as `miraged worker drain NAME` does
  // The move and the hand-over take a report or two on each side.
  for (int pass = 0; pass < 10 && !workers_[i]->drained(); ++pass)
    for (auto& w : workers_) ASSERT_TRUE(w->sync());
  EXPECT_TRUE(workers_[i]->drained());
  EXPECT_EQ(planes_[i]->stop_reason("ann"), "moved");
  auto now = parse(call("GET", "/api/me/dashboard", "", ann).body);
  const std::string to = now["ingest"]["worker"].GetString();
  EXPECT_NE(to, from);
  EXPECT_TRUE(planes_[size_t(std::stoi(to.substr(4)))]->live("ann"));
  EXPECT_EQ(scalar("SELECT count(*) FROM streams WHERE ended_at IS NULL"), "1");
  streams_->meter_all();
  EXPECT_NEAR(double(before - balance(ann)), 60, 3);  // the 60 s, once
  // No new stream goes to the draining worker.
  for (int k = 0; k < 5; ++k) {
    const std::string t = user("newcomer" + std::to_string(k), 5);
    auto r = call("POST", "/api/streams", R"({"title":"x"})", t);
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_NE(parse(r.body)["ingest"]["worker"].GetString(), from);
  }
}

// A drain with nowhere to go: after drain_seconds the stream ends
// "worker_drained", billed up to then, and the worker is drained.
TEST_F(ApiPlacement, ADrainWithNoRoomEndsTheStreamWorkerDrained) {
  workers_.clear();
  planes_.clear();
  planes_.push_back(std::make_unique<media::LoggingMediaPlane>(std::vector<std::string>{"toon"}, true));
  auto only = make_worker(*planes_[0], "solo", 4, "http://127.0.0.2:8081", "", "", "", 1);
  scalar("DELETE FROM media_workers WHERE name <> 'solo' RETURNING id");
  const std::string ann = user("ann", 5);
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"a"})", ann).status, 201);
  ASSERT_TRUE(only->sync());
  only->drain();
  for (int pass = 0; pass < 40 && !only->drained(); ++pass) {
    ASSERT_TRUE(only->sync());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // drain_seconds is 1: wait it out
  }
  EXPECT_TRUE(only->drained());
  EXPECT_EQ(scalar("SELECT end_reason FROM streams"), "worker_drained");
  EXPECT_EQ(planes_[0]->stop_reason("ann"), "worker_drained");
  EXPECT_EQ(scalar("SELECT draining FROM media_workers WHERE name = 'solo'"), "t");
}

// A second process under a live worker's name is refused with the reason
// (after waiting out the timeout a dead predecessor would need); the live
// one keeps its row and its streams.
TEST_F(ApiPlacement, ASecondProcessUnderALiveWorkersNameIsRefused) {
  media::LoggingMediaPlane plane({"toon"}, true);
  media::WorkerSettings w;
  w.database_url = config_.database_url;
  w.quiet = true;
  w.timeout_seconds = 1;  // its wait for a dead predecessor: 2 s
  w.registration.name = "gpu-0";
  w.registration.media_url = "http://127.0.0.9:8081";
  w.registration.capacity = 20;
  w.registration.model = "test";
  w.registration.device = "cpu";
  media::Worker second(w, plane);
  std::string refusal;
  try {
    second.start();
  } catch (const std::exception& e) {
    refusal = e.what();
  }
  EXPECT_NE(refusal.find("another worker named 'gpu-0' is live"), std::string::npos) << refusal;
  EXPECT_EQ(scalar("SELECT media_url FROM media_workers WHERE name = 'gpu-0'"), "http://127.0.0.2:8081");
  ASSERT_TRUE(workers_[0]->sync());
  EXPECT_TRUE(workers_[0]->running());
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new mirage::Environment);
  return RUN_ALL_TESTS();
}
