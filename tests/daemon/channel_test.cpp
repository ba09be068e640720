// Issue 16's API against a real PostgreSQL and the real HTTP endpoint:
// errors naming their field, unique e-mail addresses, the streamer's style
// and strength reaching the worker, the style queue's numbers and rejects,
// per-stream chat with bans and time-outs, live channels, credits counting
// down. Each hostile input tried is said next to it.
#include <future>
#include <thread>

#include "api_fixture.h"

namespace mirage {
namespace {

std::string field_of(const test::HttpResponse& r) {
  auto d = parse(r.body);
  if (!d.IsObject() || !d.HasMember("error") || !d["error"].HasMember("field")) return "";
  return d["error"]["field"].GetString();
}

// --- errors and sign-up -----------------------------------------------------

TEST_F(Api, ErrorsNameTheirField) {
  auto short_password = call("POST", "/api/auth/register", R"({"username":"ann","email":"a@x.org","password":"short"})");
  EXPECT_EQ(short_password.status, 400);
  EXPECT_EQ(field_of(short_password), "password");
  auto bad_name = call("POST", "/api/auth/register", R"({"username":"A!","email":"a@x.org","password":"password123"})");
  EXPECT_EQ(field_of(bad_name), "username");
  auto bad_email = call("POST", "/api/auth/register", R"({"username":"ann","email":"nope","password":"password123"})");
  EXPECT_EQ(field_of(bad_email), "email");
  // A wrong type and a missing key name the key.
  auto wrong_type = call("POST", "/api/auth/login", R"({"username":["x"],"password":"password123"})");
  EXPECT_EQ(field_of(wrong_type), "username");
  EXPECT_EQ(field_of(call("POST", "/api/auth/login", R"({"username":"ann"})")), "password");
  // Not JSON at all: about no single field.
  auto garbage = call("POST", "/api/auth/login", "{nope");
  EXPECT_EQ(error_code(garbage), "invalid_json");
  EXPECT_EQ(field_of(garbage), "");
  EXPECT_EQ(parse(garbage.body)["error"].HasMember("field"), false);

  std::string token = user("ann", 3);
  EXPECT_EQ(field_of(call("PATCH", "/api/me", R"({"bio":)" + std::string("\"") + std::string(1001, 'b') + "\"}", token)),
            "bio");
  EXPECT_EQ(field_of(call("POST", "/api/me/password", R"({"current_password":"password123","new_password":"x"})", token)),
            "new_password");
  auto wrong = call("POST", "/api/me/password", R"({"current_password":"not-it-at-all","new_password":"password456"})", token);
  EXPECT_EQ(wrong.status, 403);
  EXPECT_EQ(field_of(wrong), "current_password");
  EXPECT_EQ(field_of(call("POST", "/api/streams", R"({"title":")" + std::string(141, 't') + "\"}", token)), "title");
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"t"})", token).status, 201);
  EXPECT_EQ(field_of(call("POST", "/api/streams/ann/comments", R"({"text":""})", token)), "text");
  EXPECT_EQ(field_of(call("PATCH", "/api/streams/current/settings", R"({"comments_enabled":"yes"})", token)),
            "comments_enabled");
}

TEST_F(Api, EmailIsUniqueWhateverItsCase) {
  user("first");  // first@example.org
  auto again = call("POST", "/api/auth/register", R"({"username":"second","email":"FIRST@Example.ORG","password":"password123"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(error_code(again), "email_taken");
  EXPECT_EQ(field_of(again), "email");
  auto name = call("POST", "/api/auth/register", R"({"username":"first","email":"other@example.org","password":"password123"})");
  EXPECT_EQ(error_code(name), "username_taken");
  EXPECT_EQ(field_of(name), "username");
  // Ten racing sign-ups with one address in different cases: exactly one wins.
  std::vector<std::future<int>> racing;
  for (int i = 0; i < 10; ++i)
    racing.push_back(std::async(std::launch::async, [this, i] {
      std::string email = i % 2 ? "Race@example.org" : "race@EXAMPLE.org";
      return call("POST", "/api/auth/register",
                  R"({"username":"racer)" + std::to_string(i) + R"(","email":")" + email + R"(","password":"password123"})")
          .status;
    }));
  int created = 0, taken = 0;
  for (auto& f : racing) {
    const int status = f.get();
    created += status == 201;
    taken += status == 409;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(taken, 9);
}

// The migration on a database that already holds two accounts with one
// address: it applies, keeps both, and the address stays taken.
TEST(Migration008, KeepsAccountsThatSharedAnEmail) {
  const std::string url = cluster->create_database("dup_emails");
  db::Connection c(url);
  auto all = db::load_migrations(MIRAGE_MIGRATIONS_DIR);
  std::vector<db::Migration> before;
  for (const auto& m : all)
    if (m.version < 8) before.push_back(m);
  db::migrate(c, before);
  c.exec("INSERT INTO users (username, email, password_hash) VALUES ('old1', 'Dup@x.org', 'h'), "
         "('old2', 'dup@X.org', 'h'), ('old3', 'dup@x.org', 'h'), ('solo', 'solo@x.org', 'h')");
  ASSERT_NO_THROW(db::migrate(c, all));
  EXPECT_EQ(c.exec("SELECT count(*) FROM users").value(0, 0), "4");
  EXPECT_EQ(c.exec("SELECT string_agg(username, ',' ORDER BY id) FROM users WHERE email_duplicate_before_008").value(0, 0),
            "old2,old3");
  try {
    c.exec("INSERT INTO users (username, email, password_hash) VALUES ('new1', 'DUP@x.org', 'h')");
    ADD_FAILURE() << "a fourth account with the shared address was accepted";
  } catch (const db::Error& e) {
    EXPECT_EQ(e.sqlstate(), "23505");
    EXPECT_EQ(e.constraint(), "users_email_key");
  }
}

// --- the streamer's style and strength ----------------------------------------

TEST_F(Api, StreamerStyleAndStrengthReachTheWorker) {
  std::string token = user("sara", 3);
  // Hostile: a style no worker offers, strength out of range, a string, a
  // huge number, a boolean.
  EXPECT_EQ(error_code(call("POST", "/api/streams", R"({"style":"cubism"})", token)), "unknown_style");
  EXPECT_EQ(field_of(call("POST", "/api/streams", R"({"style":"cubism"})", token)), "style");
  EXPECT_EQ(field_of(call("POST", "/api/streams", R"({"strength":1.5})", token)), "strength");
  EXPECT_EQ(call("POST", "/api/streams", R"({"strength":-0.01})", token).status, 400);
  EXPECT_EQ(call("POST", "/api/streams", R"({"strength":"0.5"})", token).status, 400);
  EXPECT_EQ(call("POST", "/api/streams", R"({"strength":1e400})", token).status, 400);
  EXPECT_EQ(call("POST", "/api/streams", R"({"style":true})", token).status, 400);
  auto offline = parse(call("GET", "/api/me/dashboard", "", token).body);
  ASSERT_TRUE(offline["available_styles"].IsArray());
  EXPECT_EQ(offline["available_styles"].Size(), 3u);  // the worker's: toon, sketch, sepia
  EXPECT_STREQ(offline["settings"]["style"].GetString(), "");
  EXPECT_DOUBLE_EQ(offline["settings"]["strength"].GetDouble(), 0.8);

  auto started = call("POST", "/api/streams", R"({"title":"t","style":"sketch","strength":0.35})", token);
  ASSERT_EQ(started.status, 201) << started.body;
  auto s = parse(started.body);
  EXPECT_STREQ(s["stream"]["style"].GetString(), "sketch");
  EXPECT_STREQ(s["stream"]["streamer_style"].GetString(), "sketch");
  EXPECT_DOUBLE_EQ(s["stream"]["strength"].GetDouble(), 0.35);
  sync_worker();
  EXPECT_EQ(media_.applied("sara"), std::vector<std::string>{"sketch"});
  EXPECT_EQ(media_.strengths("sara"), std::vector<double>{0.35});

  auto changed = call("PATCH", "/api/streams/current/settings", R"({"style":"sepia","strength":0.9})", token);
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_STREQ(parse(changed.body)["style"].GetString(), "sepia");
  EXPECT_DOUBLE_EQ(parse(changed.body)["strength"].GetDouble(), 0.9);
  sync_worker();
  EXPECT_EQ(media_.applied("sara"), (std::vector<std::string>{"sketch", "sepia"}));
  EXPECT_EQ(media_.strengths("sara"), (std::vector<double>{0.35, 0.9}));
  EXPECT_EQ(error_code(call("PATCH", "/api/streams/current/settings", R"({"style":"cubism"})", token)), "unknown_style");
  EXPECT_EQ(field_of(call("PATCH", "/api/streams/current/settings", R"({"strength":2})", token)), "strength");
  EXPECT_EQ(field_of(call("PATCH", "/api/streams/current/settings", R"({"strength":null,"style":5})", token)), "style");

  // A viewer's request takes over while active; strength stays the
  // streamer's; when the queue empties the streamer's style returns.
  std::string viewer = user("vic");
  ASSERT_EQ(call("POST", "/api/streams/sara/styles", R"({"style":"toon"})", viewer).status, 201);
  sync_worker();  // each change seen on its own (the reconciler applies what the rows say now)
  auto pub = parse(call("GET", "/api/streams/sara").body);
  EXPECT_STREQ(pub["style"].GetString(), "toon");
  EXPECT_STREQ(pub["streamer_style"].GetString(), "sepia");
  EXPECT_DOUBLE_EQ(pub["strength"].GetDouble(), 0.9);
  // The streamer changing theirs meanwhile does not cut the request short.
  ASSERT_EQ(call("PATCH", "/api/streams/current/settings", R"({"style":""})", token).status, 200);
  EXPECT_STREQ(parse(call("GET", "/api/streams/sara").body)["style"].GetString(), "toon");
  ASSERT_EQ(call("POST", "/api/streams/current/styles/skip", "", token).status, 200);
  sync_worker();
  EXPECT_EQ(media_.applied("sara"), (std::vector<std::string>{"sketch", "sepia", "toon", ""}));
  EXPECT_STREQ(parse(call("GET", "/api/streams/sara").body)["style"].GetString(), "");
  auto dash = parse(call("GET", "/api/me/dashboard", "", token).body);
  EXPECT_STREQ(dash["settings"]["style"].GetString(), "");
  EXPECT_DOUBLE_EQ(dash["settings"]["strength"].GetDouble(), 0.9);

  // The choice is the default of the next stream.
  ASSERT_EQ(call("PATCH", "/api/streams/current/settings", R"({"style":"toon","strength":0.25})", token).status, 200);
  ASSERT_EQ(call("POST", "/api/streams/current/stop", "", token).status, 200);
  auto after = parse(call("GET", "/api/me/dashboard", "", token).body);
  EXPECT_STREQ(after["settings"]["style"].GetString(), "toon");
  EXPECT_DOUBLE_EQ(after["settings"]["strength"].GetDouble(), 0.25);
  auto next = parse(call("POST", "/api/streams", R"({"title":"again"})", token).body);
  EXPECT_STREQ(next["stream"]["streamer_style"].GetString(), "toon");
  EXPECT_DOUBLE_EQ(next["stream"]["strength"].GetDouble(), 0.25);
  sync_worker();
  EXPECT_EQ(media_.applied("sara"), std::vector<std::string>{"toon"});
  EXPECT_EQ(media_.strengths("sara"), std::vector<double>{0.25});
}

// --- the style queue ------------------------------------------------------------

TEST_F(Api, StyleQueueTellsPositionsTimeLeftAndRejects) {
  std::string streamer = user("quinn", 3);
  std::vector<std::string> viewers;
  for (const char* name : {"va1", "va2", "va3", "va4"}) viewers.push_back(user(name));
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"q"})", streamer).status, 201);
  auto empty = parse(call("GET", "/api/streams/quinn/styles").body);
  EXPECT_TRUE(empty["active"].IsNull());
  EXPECT_EQ(empty["style_seconds"].GetInt(), 30);
  EXPECT_EQ(empty["cooldown_seconds"].GetInt(), 0);
  const char* styles[] = {"toon", "sketch", "sepia", "toon"};
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(call("POST", "/api/streams/quinn/styles", std::string(R"({"style":")") + styles[i] + "\"}", viewers[i]).status, 201);
  auto q = parse(call("GET", "/api/streams/quinn/styles").body);
  ASSERT_FALSE(q["active"].IsNull());
  EXPECT_STREQ(q["active"]["requested_by"].GetString(), "va1");
  EXPECT_GE(q["active"]["seconds_left"].GetInt64(), 29);
  EXPECT_LE(q["active"]["seconds_left"].GetInt64(), 30);
  EXPECT_EQ(std::string(q["active"]["ends_at"].GetString()).size(), 20u);  // 2026-12-01T19:26:44Z
  ASSERT_EQ(q["queue"].Size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q["queue"][i]["position"].GetInt(), i + 1);
  const int64_t second = q["queue"][1]["id"].GetInt64();
  const int64_t active = q["active"]["id"].GetInt64();

  // Only the streamer; only a queued request of their live stream; ids that
  // cannot be ids (huge, negative, text) are 404 before any query.
  EXPECT_EQ(call("DELETE", "/api/streams/current/styles/" + std::to_string(second)).status, 401);
  EXPECT_EQ(call("DELETE", "/api/streams/current/styles/" + std::to_string(second), "", viewers[0]).status, 409);
  EXPECT_EQ(call("DELETE", "/api/streams/current/styles/" + std::to_string(active), "", streamer).status, 404);
  EXPECT_EQ(call("DELETE", "/api/streams/current/styles/99999999999999999999999", "", streamer).status, 404);
  EXPECT_EQ(call("DELETE", "/api/streams/current/styles/-1", "", streamer).status, 404);
  EXPECT_EQ(call("DELETE", "/api/streams/current/styles/x'1", "", streamer).status, 404);
  EXPECT_EQ(call("DELETE", "/api/streams/current/styles/999999999999999999", "", streamer).status, 404);

  // Two racing rejects of one request: one 200, one 404.
  auto reject = [&] {
    return call("DELETE", "/api/streams/current/styles/" + std::to_string(second), "", streamer).status;
  };
  auto a = std::async(std::launch::async, reject), b = std::async(std::launch::async, reject);
  const int sa = a.get(), sb = b.get();
  EXPECT_EQ(std::min(sa, sb), 200);
  EXPECT_EQ(std::max(sa, sb), 404);
  auto after = parse(call("GET", "/api/streams/quinn/styles").body);
  ASSERT_EQ(after["queue"].Size(), 2u);
  EXPECT_STREQ(after["queue"][1]["requested_by"].GetString(), "va4");
  EXPECT_EQ(after["queue"][1]["position"].GetInt(), 2);
  {
    db::Connection c(config_.database_url);
    EXPECT_EQ(c.exec("SELECT status FROM style_requests WHERE id = $1", {std::to_string(second)}).value(0, 0), "rejected");
  }
  // The rejected viewer may ask again (their request is no longer waiting).
  EXPECT_EQ(call("POST", "/api/streams/quinn/styles", R"({"style":"sepia"})", viewers[2]).status, 201);

  // Every change told the channel's pages to re-read the queue: 4 requests,
  // the first one's activation, the reject, the new request.
  sync_worker();
  int styles_events = 0;
  for (const auto& e : media_.events("quinn")) styles_events += e == R"({"type":"styles"})";
  EXPECT_EQ(styles_events, 7);
  ASSERT_EQ(call("POST", "/api/streams/current/styles/clear", "", streamer).status, 200);
  ASSERT_EQ(call("POST", "/api/streams/current/styles/skip", "", streamer).status, 200);
  sync_worker();
  styles_events = 0;
  for (const auto& e : media_.events("quinn")) styles_events += e == R"({"type":"styles"})";
  EXPECT_EQ(styles_events, 9);
}

// --- chat ---------------------------------------------------------------------

TEST_F(Api, ChatIsPerStreamWithEarlierStreamsReachable) {
  std::string streamer = user("cora", 5);
  std::string viewer = user("dan");
  EXPECT_EQ(parse(call("GET", "/api/streams/cora/comments").body)["comments"].Size(), 0u);  // never live
  EXPECT_EQ(error_code(call("POST", "/api/streams/cora/comments", R"({"text":"hi"})", viewer)), "not_live");
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"one"})", streamer).status, 201);
  auto first = parse(call("POST", "/api/streams/cora/comments", R"({"text":"in one"})", viewer).body);
  const int64_t one = first["stream_id"].GetInt64();
  ASSERT_EQ(call("POST", "/api/streams/current/stop", "", streamer).status, 200);
  EXPECT_EQ(call("POST", "/api/streams/cora/comments", R"({"text":"offline"})", viewer).status, 409);
  // Offline: the latest stream's chat.
  auto offline = parse(call("GET", "/api/streams/cora/comments").body);
  ASSERT_EQ(offline["comments"].Size(), 1u);
  EXPECT_EQ(offline["comments"][0]["stream_id"].GetInt64(), one);

  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"two"})", streamer).status, 201);
  auto live = parse(call("GET", "/api/streams/cora/comments").body);
  EXPECT_EQ(live["comments"].Size(), 0u);  // the new stream's chat starts empty
  auto second = parse(call("POST", "/api/streams/cora/comments", R"({"text":"in two"})", viewer).body);
  EXPECT_NE(second["stream_id"].GetInt64(), one);
  auto earlier = parse(call("GET", "/api/streams/cora/comments?stream=" + std::to_string(one)).body);
  ASSERT_EQ(earlier["comments"].Size(), 1u);
  EXPECT_STREQ(earlier["comments"][0]["text"].GetString(), "in one");

  // Hostile ?stream=: another channel's stream, a huge id, text, negative.
  std::string other = user("otto", 5);
  auto other_stream = parse(call("POST", "/api/streams", R"({"title":"x"})", other).body);
  EXPECT_EQ(call("GET", "/api/streams/cora/comments?stream=" +
                 std::to_string(other_stream["stream"]["id"].GetInt64())).status, 404);
  EXPECT_EQ(field_of(call("GET", "/api/streams/cora/comments?stream=99999999999999999999999")), "stream");
  EXPECT_EQ(call("GET", "/api/streams/cora/comments?stream=999999999999999999").status, 404);
  auto text = call("GET", "/api/streams/cora/comments?stream=one");
  EXPECT_EQ(text.status, 400);
  EXPECT_EQ(field_of(text), "stream");
  EXPECT_EQ(call("GET", "/api/streams/cora/comments?stream=-1").status, 400);
  EXPECT_EQ(field_of(call("GET", "/api/streams/cora/comments?limit=1000")), "limit");
  EXPECT_EQ(call("GET", "/api/streams/nobody_here/comments").status, 404);

  auto past = parse(call("GET", "/api/streams/cora/past").body);
  ASSERT_EQ(past["streams"].Size(), 2u);
  EXPECT_STREQ(past["streams"][0]["title"].GetString(), "two");  // newest first
  EXPECT_TRUE(past["streams"][0]["ended_at"].IsNull());
  EXPECT_EQ(past["streams"][1]["id"].GetInt64(), one);
  EXPECT_EQ(past["streams"][1]["comment_count"].GetInt64(), 1);
  EXPECT_FALSE(past["streams"][0].HasMember("secret"));
  EXPECT_EQ(past.FindMember("streams")->value[0].MemberCount(), 5u);  // public: nothing else
  EXPECT_EQ(call("GET", "/api/streams/nobody_here/past").status, 404);
}

TEST_F(Api, StreamerBansAndTimesOutFromTheirChat) {
  std::string streamer = user("bea", 5);
  std::string troll = user("troll");
  std::string other = user("olga");
  // Works offline too; only for oneself; hostile bodies.
  auto timeout = call("POST", "/api/streams/current/chat/bans", R"({"username":"troll","duration_seconds":600})", streamer);
  ASSERT_EQ(timeout.status, 201) << timeout.body;
  EXPECT_STREQ(parse(timeout.body)["username"].GetString(), "troll");
  EXPECT_TRUE(parse(timeout.body)["until"].IsString());
  EXPECT_EQ(call("POST", "/api/streams/current/chat/bans", R"({"username":"troll"})").status, 401);
  auto self = call("POST", "/api/streams/current/chat/bans", R"({"username":"bea"})", streamer);
  EXPECT_EQ(self.status, 400);
  EXPECT_EQ(field_of(self), "username");
  EXPECT_EQ(call("POST", "/api/streams/current/chat/bans", R"({"username":"ghost"})", streamer).status, 404);
  EXPECT_EQ(call("POST", "/api/streams/current/chat/bans", R"({"username":"x' OR 1=1 --"})", streamer).status, 404);
  EXPECT_EQ(field_of(call("POST", "/api/streams/current/chat/bans", R"({"username":"olga","duration_seconds":0})", streamer)),
            "duration_seconds");
  EXPECT_EQ(field_of(call("POST", "/api/streams/current/chat/bans", R"({"username":"olga","duration_seconds":1.5})", streamer)),
            "duration_seconds");
  EXPECT_EQ(call("POST", "/api/streams/current/chat/bans", R"({"username":"olga","duration_seconds":1e18})", streamer).status, 400);
  EXPECT_EQ(call("POST", "/api/streams/current/chat/bans", R"({"username":"olga","duration_seconds":"600"})", streamer).status, 400);
  EXPECT_EQ(field_of(call("POST", "/api/streams/current/chat/bans", R"({"username":7})", streamer)), "username");

  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"live"})", streamer).status, 201);
  auto refused = call("POST", "/api/streams/bea/comments", R"({"text":"spam"})", troll);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(error_code(refused), "timed_out");
  const int retry = std::stoi(refused.headers["retry-after"]);
  EXPECT_GE(retry, 598);
  EXPECT_LE(retry, 600);
  EXPECT_EQ(call("POST", "/api/streams/bea/comments", R"({"text":"fine"})", other).status, 201);
  // Another channel's chat is not affected.
  std::string elsewhere = user("eve", 5);
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"e"})", elsewhere).status, 201);
  EXPECT_EQ(call("POST", "/api/streams/eve/comments", R"({"text":"hi"})", troll).status, 201);

  // A ban replaces the time-out; listed; a time-out that is over no longer counts.
  auto ban = call("POST", "/api/streams/current/chat/bans", R"({"username":"troll","duration_seconds":null})", streamer);
  ASSERT_EQ(ban.status, 201);
  EXPECT_TRUE(parse(ban.body)["until"].IsNull());
  auto banned = call("POST", "/api/streams/bea/comments", R"({"text":"spam"})", troll);
  EXPECT_EQ(error_code(banned), "banned");
  EXPECT_EQ(banned.headers.count("retry-after"), 0u);
  ASSERT_EQ(call("POST", "/api/streams/current/chat/bans", R"({"username":"olga","duration_seconds":60})", streamer).status, 201);
  auto list = parse(call("GET", "/api/streams/current/chat/bans", "", streamer).body);
  ASSERT_EQ(list["bans"].Size(), 2u);
  EXPECT_EQ(call("GET", "/api/streams/current/chat/bans").status, 401);
  EXPECT_EQ(parse(call("GET", "/api/streams/current/chat/bans", "", troll).body)["bans"].Size(), 0u);  // troll's own chat
  {
    db::Connection c(config_.database_url);
    c.exec("UPDATE chat_bans SET until = now() - interval '1 second' WHERE until IS NOT NULL");
  }
  EXPECT_EQ(parse(call("GET", "/api/streams/current/chat/bans", "", streamer).body)["bans"].Size(), 1u);
  EXPECT_EQ(call("POST", "/api/streams/bea/comments", R"({"text":"back"})", other).status, 201);

  // Lifting: only what is in force; a viewer lifting "their" ban lifts nothing.
  EXPECT_EQ(call("DELETE", "/api/streams/current/chat/bans/troll", "", troll).status, 404);
  EXPECT_EQ(call("DELETE", "/api/streams/current/chat/bans/troll", "", streamer).status, 204);
  EXPECT_EQ(call("DELETE", "/api/streams/current/chat/bans/troll", "", streamer).status, 404);
  EXPECT_EQ(call("DELETE", "/api/streams/current/chat/bans/olga", "", streamer).status, 404);  // over already
  EXPECT_EQ(call("DELETE", "/api/streams/current/chat/bans/no%20body", "", streamer).status, 404);
  EXPECT_EQ(call("POST", "/api/streams/bea/comments", R"({"text":"sorry"})", troll).status, 201);

  sync_worker();
  int ban_events = 0;
  for (const auto& e : media_.events("bea")) ban_events += e.find(R"({"type":"chat_ban","username":"troll","until":)") == 0;
  EXPECT_EQ(ban_events, 2);  // the time-out and the ban
}

// --- channels -------------------------------------------------------------------

TEST_F(Api, LiveChannelsMostViewersFirstWithThumbnails) {
  EXPECT_EQ(parse(call("GET", "/api/channels/live").body)["channels"].Size(), 0u);
  std::string a = user("chan_a", 5), b = user("chan_b", 5);
  user("chan_c", 5);
  ASSERT_EQ(call("PATCH", "/api/me", R"({"display_name":"Channel B","bio":"about b"})", b).status, 200);
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"A"})", a).status, 201);
  ASSERT_EQ(call("POST", "/api/streams", R"({"title":"B"})", b).status, 201);
  sync_worker();  // the worker runs both, then reports their viewers
  media_.set_viewers("chan_a", 1, 1);
  media_.set_viewers("chan_b", 4, 4);
  sync_worker();
  auto list = parse(call("GET", "/api/channels/live").body);
  ASSERT_EQ(list["channels"].Size(), 2u);  // chan_c is not live
  EXPECT_STREQ(list["channels"][0]["username"].GetString(), "chan_b");
  EXPECT_STREQ(list["channels"][0]["display_name"].GetString(), "Channel B");
  EXPECT_EQ(list["channels"][0]["viewers"].GetInt(), 4);
  EXPECT_STREQ(list["channels"][0]["thumbnail"].GetString(), "http://127.0.0.1:1/thumbnail/chan_b.jpg");
  EXPECT_STREQ(list["channels"][1]["title"].GetString(), "A");

  auto pub = parse(call("GET", "/api/streams/chan_b").body);
  EXPECT_STREQ(pub["bio"].GetString(), "about b");
  EXPECT_STREQ(pub["last_live_at"].GetString(), pub["started_at"].GetString());
  EXPECT_EQ(pub["viewers"].GetInt(), 4);
  ASSERT_EQ(call("POST", "/api/streams/current/stop", "", b).status, 200);
  // Offline: viewers 0 at once (the worker's last figure is not shown),
  // last_live_at the end.
  pub = parse(call("GET", "/api/streams/chan_b").body);
  EXPECT_EQ(pub["viewers"].GetInt(), 0);
  EXPECT_TRUE(pub["last_live_at"].IsString());
  EXPECT_EQ(parse(call("GET", "/api/me/dashboard", "", b).body)["viewers"].GetInt(), 0);
  EXPECT_TRUE(parse(call("GET", "/api/streams/chan_c").body)["last_live_at"].IsNull());
  EXPECT_EQ(parse(call("GET", "/api/channels/live").body)["channels"].Size(), 1u);
  EXPECT_EQ(call("GET", "/api/streams/no_such_user").status, 404);
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new mirage::Environment);
  return RUN_ALL_TESTS();
}
