// log/log.h: what each format writes for hostile text (quotes, newlines,
// control bytes, '=', invalid UTF-8, a forged "level=error"), that a line
// stays one line and parses back to the same values, request ids (kept,
// replaced, nested scopes, a stream's own), and the level filter.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <thread>

#include "log/log.h"

namespace mirage::log {
namespace {

constexpr int64_t kTime = 1764629080123;  // 2025-12-01T22:44:40.123Z

std::string logfmt(std::string_view msg, const std::vector<Field>& fields, std::string_view request_id = "") {
  return format_line(Format::kLogfmt, kTime, Level::kInfo, request_id, msg, fields);
}

rapidjson::Document json(std::string_view msg, const std::vector<Field>& fields, std::string_view request_id = "") {
  const std::string line = format_line(Format::kJson, kTime, Level::kWarn, request_id, msg, fields);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  rapidjson::Document d;
  d.Parse(line.c_str(), line.size());
  EXPECT_FALSE(d.HasParseError()) << line;
  return d;
}

TEST(Log, LogfmtQuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(logfmt("started", {{"stream_id", 12}, {"via", "srt"}, {"ok", true}, {"lag", 0.25}}),
            "ts=2025-12-01T22:44:40.123Z level=info msg=started stream_id=12 via=srt ok=true lag=0.25");
  EXPECT_EQ(logfmt("stream placed here", {{"empty", ""}}),
            "ts=2025-12-01T22:44:40.123Z level=info msg=\"stream placed here\" empty=\"\"");
}

TEST(Log, LogfmtEscapesEverythingThatCouldForgeAFieldOrALine) {
  const std::string evil = "a\" level=error msg=\"x\nts=0 level=error\\ \t\r\x01=";
  const std::string line = logfmt("m", {{"title", evil}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_EQ(line, "ts=2025-12-01T22:44:40.123Z level=info msg=m "
                  "title=\"a\\\" level=error msg=\\\"x\\nts=0 level=error\\\\ \\t\\r\\u0001=\"");
  // One level= only: the forged one is inside a quoted value.
  EXPECT_EQ(line.find(" level="), line.rfind(" level=", line.find("title=")));
}

TEST(Log, InvalidUtf8BecomesTheReplacementCharacter) {
  const std::string bad = std::string("ok \xff\xfe end \xe2\x82") + "\xc3\xa9";  // é stays
  EXPECT_EQ(logfmt("m", {{"v", bad}}),
            "ts=2025-12-01T22:44:40.123Z level=info msg=m v=\"ok \xef\xbf\xbd\xef\xbf\xbd end "
            "\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\"");
  auto d = json("m", {{"v", bad}, {"overlong", "\xc0\xaf"}, {"surrogate", "\xed\xa0\x80"}});
  EXPECT_STREQ(d["v"].GetString(), "ok \xef\xbf\xbd\xef\xbf\xbd end \xef\xbf\xbd\xef\xbf\xbd\xc3\xa9");
  EXPECT_STREQ(d["overlong"].GetString(), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_STREQ(d["surrogate"].GetString(), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(Log, JsonKeepsTypesAndRoundTripsText) {
  const std::string evil = "quote \" backslash \\ newline \n nul-free \x1f end";
  auto d = json("msg \"quoted\"\n", {{"text", evil}, {"n", int64_t(-5)}, {"big", uint64_t(1) << 40},
                                     {"x", 1.5}, {"nan", std::numeric_limits<double>::quiet_NaN()},
                                     {"b", false}, {"bad key!", "k"}});
  EXPECT_STREQ(d["ts"].GetString(), "2025-12-01T22:44:40.123Z");
  EXPECT_STREQ(d["level"].GetString(), "warn");
  EXPECT_STREQ(d["msg"].GetString(), "msg \"quoted\"\n");
  EXPECT_EQ(std::string(d["text"].GetString(), d["text"].GetStringLength()), evil);
  EXPECT_EQ(d["n"].GetInt64(), -5);
  EXPECT_EQ(d["big"].GetInt64(), int64_t(1) << 40);
  EXPECT_EQ(d["x"].GetDouble(), 1.5);
  EXPECT_TRUE(d["nan"].IsNull());
  EXPECT_TRUE(d["b"].IsFalse());
  EXPECT_STREQ(d["bad_key_"].GetString(), "k");  // keys are the code's: [A-Za-z0-9_] only
}

TEST(Log, AStreamsRequestIdReplacesTheThreadsAndAnEmptyOneIsLeftOut) {
  EXPECT_EQ(logfmt("m", {}, "req1"), "ts=2025-12-01T22:44:40.123Z level=info msg=m request_id=req1");
  EXPECT_EQ(logfmt("m", {{"request_id", "stream1"}}, "req1"),
            "ts=2025-12-01T22:44:40.123Z level=info msg=m request_id=stream1");
  EXPECT_EQ(logfmt("m", {{"request_id", ""}}, "req1"), "ts=2025-12-01T22:44:40.123Z level=info msg=m request_id=req1");
  EXPECT_EQ(logfmt("m", {{"request_id", ""}}), "ts=2025-12-01T22:44:40.123Z level=info msg=m");
  auto d = json("m", {{"request_id", "stream1"}}, "req1");
  EXPECT_STREQ(d["request_id"].GetString(), "stream1");
  EXPECT_EQ(d.MemberCount(), 4u);  // ts, level, msg, request_id: not twice
}

TEST(Log, RequestIds) {
  EXPECT_TRUE(valid_request_id("trace-7f.A_1"));
  EXPECT_TRUE(valid_request_id(std::string(64, 'a')));
  for (const char* bad : {"", "has space", "quote\"", "new\nline", "semi;colon", "é", "a=b"})
    EXPECT_FALSE(valid_request_id(bad)) << bad;
  EXPECT_FALSE(valid_request_id(std::string(65, 'a')));
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = new_request_id();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_TRUE(valid_request_id(id));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(Log, ScopesNestAndStayOnTheirThread) {
  EXPECT_EQ(request_id(), "");
  {
    RequestScope outer("outer");
    {
      RequestScope inner("inner");
      EXPECT_EQ(request_id(), "inner");
      std::string other = "unset";
      std::thread([&] { other = request_id(); }).join();
      EXPECT_EQ(other, "");
    }
    EXPECT_EQ(request_id(), "outer");
  }
  EXPECT_EQ(request_id(), "");
}

TEST(Log, LevelsFilterAndEveryLineEndsWithANewline) {
  char path[] = "/tmp/mirage-log-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  Settings s;
  s.format = Format::kJson;
  s.level = Level::kWarn;
  s.copy_to = path;
  configure(s);
  EXPECT_FALSE(enabled(Level::kInfo));
  EXPECT_TRUE(enabled(Level::kError));
  debug("not written");
  info("not written either");
  {
    RequestScope scope("abc");
    warn("written", {{"n", 1}});
  }
  error("also written");
  configure(Settings{});  // back to the defaults; closes the copy
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path);
  const std::string all = text.str();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back(), '\n');
  std::istringstream lines(all);
  std::vector<std::string> got;
  for (std::string line; std::getline(lines, line);) got.push_back(line);
  ASSERT_EQ(got.size(), 2u) << all;
  rapidjson::Document first;
  first.Parse(got[0].c_str());
  EXPECT_STREQ(first["msg"].GetString(), "written");
  EXPECT_STREQ(first["request_id"].GetString(), "abc");
  EXPECT_EQ(got[1].find("\"level\":\"error\""), got[1].find("\"level\""));
}

TEST(Log, ParsesItsSettings) {
  Level level;
  Format format;
  EXPECT_TRUE(parse_level("debug", &level) && level == Level::kDebug);
  EXPECT_TRUE(parse_level("error", &level) && level == Level::kError);
  EXPECT_FALSE(parse_level("verbose", &level));
  EXPECT_TRUE(parse_format("json", &format) && format == Format::kJson);
  EXPECT_TRUE(parse_format("logfmt", &format) && format == Format::kLogfmt);
  EXPECT_FALSE(parse_format("text", &format));
}

}  // namespace
}  // namespace mirage::log
