// A stream's pipeline, composed from pipelines/*.pipeline, fed JPEG frames
// the way the WebSocket ingest will feed it: HLS segments that decode, and
// processed JPEG frames for viewers. Bad input is refused and counted and
// the stream goes on.
//
// Real time: appsrc timestamps frames on arrival (do-timestamp), as a live
// ingest does, so the test pushes at 15 fps for a few seconds.
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "media/pipeline_template.h"
#include "media/stream_pipeline.h"
#include "media_util.h"

namespace mirage::media {
namespace {


PipelineSettings settings(const std::string& hls_dir) {
  PipelineSettings s;
  s.templates_dir = MIRAGE_PIPELINES_DIR;
  s.model = std::string(std::getenv("MIRAGE_TEST_MODELS")) + "/styles.pt";
  s.style = "toon";
  s.width = 320;
  s.height = 240;
  s.fps = 15;
  s.hls_dir = hls_dir;
  return s;
}

void push_paced(StreamPipeline& p, const std::vector<std::string>& frames) {
  for (const auto& f : frames) {
    EXPECT_EQ(p.push_jpeg(reinterpret_cast<const uint8_t*>(f.data()), f.size()), StreamPipeline::Push::kOk);
    std::this_thread::sleep_for(std::chrono::milliseconds(66));
  }
}

TEST(PipelineTemplate, FillsAndQuotesPlaceholders) {
  std::string error;
  auto filled = fill_template("a model={model} style={style} ! b n={n}",
                              {{"model", "/tmp/my model.pt"}, {"style", "x ! fakesink"}, {"n", "3"}}, &error);
  ASSERT_TRUE(filled) << error;
  // A value cannot add elements: it stays one quoted property value.
  EXPECT_EQ(*filled, "a model=\"/tmp/my model.pt\" style=\"x ! fakesink\" ! b n=3");
  EXPECT_FALSE(fill_template("a {missing}", {}, &error));
  EXPECT_EQ(error, "pipeline template placeholder {missing} has no value");
  EXPECT_FALSE(load_template("/nonexistent.pipeline", &error));
}

TEST(StreamPipeline, JpegInHlsAndJpegOut) {
  const std::string dir = "/tmp/mirage-hls-" + std::to_string(getpid());
  std::string error;
  auto pipeline = StreamPipeline::start(settings(dir), &error);
  ASSERT_TRUE(pipeline) << error;
  const auto small = jpeg_frames(45, "ball", 160, 120);
  const auto large = jpeg_frames(15, "ball", 640, 480);
  push_paced(*pipeline, small);

  // Bad input: refused before the pipeline sees a byte, counted.
  const std::string garbage = "definitely not a jpeg";
  EXPECT_EQ(pipeline->push_jpeg(reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size()),
            StreamPipeline::Push::kNotJpeg);
  const std::string truncated = small[0].substr(0, small[0].size() / 2);
  EXPECT_EQ(pipeline->push_jpeg(reinterpret_cast<const uint8_t*>(truncated.data()), truncated.size()),
            StreamPipeline::Push::kNotJpeg);
  std::string huge(StreamPipeline::kMaxFrameBytes + 1, '\0');
  EXPECT_EQ(pipeline->push_jpeg(reinterpret_cast<const uint8_t*>(huge.data()), huge.size()),
            StreamPipeline::Push::kTooLarge);
  EXPECT_EQ(pipeline->frames_refused(), 3u);
  // Corrupt inside but well framed: it reaches jpegdec, which drops it.
  std::string corrupt = small[1];
  for (size_t i = corrupt.size() / 3; i < corrupt.size() / 2; ++i) corrupt[i] = char(0x5A);
  pipeline->push_jpeg(reinterpret_cast<const uint8_t*>(corrupt.data()), corrupt.size());
  // A resolution change mid-stream: scaled to the stream's size.
  const uint64_t before = pipeline->frames_processed();
  push_paced(*pipeline, large);
  EXPECT_GT(pipeline->frames_processed(), before);  // the stream went on
  EXPECT_EQ(pipeline->error(), "");

  // Viewers' JPEG: a real JPEG, and transformed (not the camera's bytes).
  uint64_t sequence = 0;
  auto jpeg = pipeline->latest_jpeg(&sequence);
  ASSERT_TRUE(jpeg);
  EXPECT_GT(sequence, 10u);
  EXPECT_EQ(uint8_t((*jpeg)[0]), 0xFF);
  EXPECT_EQ(uint8_t((*jpeg)[1]), 0xD8);
  for (const auto& f : large) EXPECT_NE(*jpeg, f);

  // HLS: a playlist with segments that decode.
  std::ifstream playlist(dir + "/index.m3u8");
  std::string text((std::istreambuf_iterator<char>(playlist)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.rfind("#EXTM3U", 0), 0u) << text;
  auto seg = text.find("segment");
  ASSERT_NE(seg, std::string::npos) << text;
  const std::string segment = dir + "/" + text.substr(seg, text.find('\n', seg) - seg);
  EXPECT_EQ(std::system(("gst-discoverer-1.0 '" + segment + "' > /dev/null 2>&1").c_str()), 0) << segment;

  pipeline.reset();
  EXPECT_FALSE(std::filesystem::exists(dir));  // files removed when the stream ends
}

TEST(StreamPipeline, BadModelIsAClearError) {
  auto s = settings("/tmp/mirage-hls-bad-" + std::to_string(getpid()));
  s.model = "/nonexistent/model.pt";
  std::string error;
  EXPECT_FALSE(StreamPipeline::start(s, &error));
  EXPECT_NE(error.find("/nonexistent/model.pt"), std::string::npos) << error;
  EXPECT_FALSE(std::filesystem::exists(s.hls_dir));
}

}  // namespace
}  // namespace mirage::media

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
