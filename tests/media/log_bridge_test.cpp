// media/log_bridge.h: GLib's messages (g_warning, g_critical) and
// GStreamer's debug output (what GST_DEBUG enables) come out as the log's
// own lines, one per message, with their level and where they came from;
// a message with a newline and quotes stays one line.
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "log/log.h"
#include "media/log_bridge.h"

namespace mirage::media {
namespace {

GST_DEBUG_CATEGORY_STATIC(test_category);

std::vector<rapidjson::Document> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<rapidjson::Document> out;
  for (std::string line; std::getline(in, line);) {
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    EXPECT_FALSE(d.HasParseError()) << line;
    if (!d.HasParseError()) out.push_back(std::move(d));
  }
  return out;
}

const rapidjson::Document* find(const std::vector<rapidjson::Document>& lines, const char* source, const char* msg) {
  for (const auto& d : lines)
    if (d.HasMember("source") && std::string(d["source"].GetString()) == source &&
        std::string(d["msg"].GetString()).find(msg) != std::string::npos)
      return &d;
  return nullptr;
}

TEST(LogBridge, GlibAndGstreamerMessagesBecomeLogLines) {
  char path[] = "/tmp/mirage-log-bridge-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  log::Settings s;
  s.format = log::Format::kJson;
  s.level = log::Level::kInfo;
  s.copy_to = path;
  log::configure(s);
  route_library_logs();
  GST_DEBUG_CATEGORY_INIT(test_category, "mirage-test", 0, "log bridge test");
  gst_debug_set_threshold_for_name("mirage-test", GST_LEVEL_INFO);

  g_warning("a GLib warning with \"quotes\"\nand a second line");
  g_log("mirage-domain", G_LOG_LEVEL_CRITICAL, "a critical %d", 42);
  g_message("a GLib message");
  g_debug("a GLib debug message, dropped unless G_MESSAGES_DEBUG names it");
  GST_CAT_WARNING(test_category, "a GStreamer warning");
  GST_CAT_INFO(test_category, "a GStreamer info, debug in the log: below info, not written");
  GST_CAT_ERROR(test_category, "a GStreamer error");
  log::configure(log::Settings{});

  const auto lines = lines_of(path);
  unlink(path);
  const auto* warning = find(lines, "glib", "a GLib warning");
  ASSERT_TRUE(warning);
  EXPECT_STREQ((*warning)["level"].GetString(), "warn");
  EXPECT_STREQ((*warning)["msg"].GetString(), "a GLib warning with \"quotes\"\nand a second line");
  const auto* critical = find(lines, "glib", "a critical 42");
  ASSERT_TRUE(critical);
  EXPECT_STREQ((*critical)["level"].GetString(), "error");
  EXPECT_STREQ((*critical)["domain"].GetString(), "mirage-domain");
  const auto* message = find(lines, "glib", "a GLib message");
  ASSERT_TRUE(message);
  EXPECT_STREQ((*message)["level"].GetString(), "info");
  EXPECT_FALSE(find(lines, "glib", "a GLib debug message"));
  const auto* gst_warning = find(lines, "gstreamer", "a GStreamer warning");
  ASSERT_TRUE(gst_warning);
  EXPECT_STREQ((*gst_warning)["level"].GetString(), "warn");
  EXPECT_STREQ((*gst_warning)["category"].GetString(), "mirage-test");
  EXPECT_GT((*gst_warning)["line"].GetInt(), 0);
  const auto* gst_error = find(lines, "gstreamer", "a GStreamer error");
  ASSERT_TRUE(gst_error);
  EXPECT_STREQ((*gst_error)["level"].GetString(), "error");
  EXPECT_FALSE(find(lines, "gstreamer", "a GStreamer info"));
  EXPECT_EQ(lines.size(), 5u);
}

}  // namespace
}  // namespace mirage::media

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
