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

#include "media/frame_header.h"
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

// Encoded frames of a test pattern, made by GStreamer's encoders.
std::vector<std::string> encoded(const std::string& encoder, int width, int height, int count) {
  return pull_buffers("videotestsrc pattern=ball num-buffers=" + std::to_string(count) + " ! video/x-raw,width=" +
                      std::to_string(width) + ",height=" + std::to_string(height) + ",framerate=15/1 ! " + encoder +
                      " ! appsink name=out sync=false");
}

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// The JPEG's frame header (SOFn) patched to declare |width| x |height|.
std::string with_declared_size(std::string jpeg, int width, int height) {
  for (size_t i = 2; i + 9 < jpeg.size(); ++i)
    if (uint8_t(jpeg[i]) == 0xFF && (uint8_t(jpeg[i + 1]) == 0xC0 || uint8_t(jpeg[i + 1]) == 0xC2)) {
      jpeg[i + 5] = char(height >> 8), jpeg[i + 6] = char(height & 255);
      jpeg[i + 7] = char(width >> 8), jpeg[i + 8] = char(width & 255);
      break;
    }
  return jpeg;
}

TEST(FrameHeader, DeclaredSizesOfRealFrames) {
  std::string why;
  const auto jpeg = jpeg_frames(1, "ball", 176, 144)[0];
  auto d = jpeg_dimensions(bytes(jpeg), jpeg.size(), &why);
  ASSERT_TRUE(d) << why;
  EXPECT_EQ(d->width, 176);
  EXPECT_EQ(d->height, 144);
  const auto forged = with_declared_size(jpeg, 65535, 65535);
  d = jpeg_dimensions(bytes(forged), forged.size(), &why);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->width, 65535);
  // Cut inside the headers: no image data after them.
  std::string cut = jpeg.substr(0, 100) + "\xFF\xD9";
  EXPECT_FALSE(jpeg_dimensions(bytes(cut), cut.size(), &why));
  EXPECT_FALSE(why.empty());
  for (size_t n = 0; n < 300 && n < jpeg.size(); ++n) jpeg_dimensions(bytes(jpeg), n, &why);  // every prefix: no crash

  const auto vp8 = encoded("vp8enc deadline=1 keyframe-max-dist=100", 320, 176, 3);
  auto k = vp8_keyframe_dimensions(bytes(vp8[0]), vp8[0].size());
  ASSERT_TRUE(k);
  EXPECT_EQ(k->width, 320);
  EXPECT_EQ(k->height, 176);
  EXPECT_FALSE(vp8_keyframe_dimensions(bytes(vp8[1]), vp8[1].size()));  // an inter frame
  const auto vp9 = encoded("vp9enc deadline=1 keyframe-max-dist=100", 336, 192, 3);
  k = vp9_keyframe_dimensions(bytes(vp9[0]), vp9[0].size());
  ASSERT_TRUE(k);
  EXPECT_EQ(k->width, 336);
  EXPECT_EQ(k->height, 192);
  EXPECT_FALSE(vp9_keyframe_dimensions(bytes(vp9[1]), vp9[1].size()));
}

// Main: no size check at all (a 64 KB JPEG declaring 65535x65535 went to
// jpegdec), and a JPEG cut inside its headers reached jpegdec and, four
// times in a minute, ended the stream "pipeline_failed".
TEST(StreamPipeline, OversizedAndHeaderTruncatedJpegsAreRefusedBeforeDecoding) {
  auto s = settings("/tmp/mirage-hls-size-" + std::to_string(getpid()));
  s.max_width = 320;
  s.max_height = 240;
  std::string error;
  auto pipeline = StreamPipeline::start(s, &error);
  ASSERT_TRUE(pipeline) << error;
  const auto ok = jpeg_frames(30, "ball", 320, 240);
  const auto big = jpeg_frames(1, "ball", 640, 480)[0];
  push_paced(*pipeline, std::vector<std::string>(ok.begin(), ok.begin() + 10));
  EXPECT_EQ(pipeline->push_jpeg(bytes(big), big.size()), StreamPipeline::Push::kOversized);
  const auto forged = with_declared_size(ok[0], 65535, 65535);
  EXPECT_EQ(pipeline->push_jpeg(bytes(forged), forged.size()), StreamPipeline::Push::kOversized);
  for (int i = 0; i < 6; ++i) {
    const std::string cut = ok[size_t(i)].substr(0, 120 + size_t(i) * 7) + "\xFF\xD9";
    EXPECT_EQ(pipeline->push_jpeg(bytes(cut), cut.size()), StreamPipeline::Push::kNotJpeg);
  }
  EXPECT_EQ(pipeline->frames_oversized(), 2u);
  EXPECT_EQ(pipeline->frames_refused(), 8u);
  const uint64_t before = pipeline->frames_processed();
  push_paced(*pipeline, std::vector<std::string>(ok.begin() + 10, ok.end()));
  EXPECT_GT(pipeline->frames_processed(), before);
  EXPECT_EQ(pipeline->error(), "");
  EXPECT_NE(pipeline->health_json().find("\"frames_oversized\":2"), std::string::npos);
}

// Main: appsrc max-bytes without a leaky type did not bound the queue (64
// MiB was measured queued with max-bytes 1 MiB). Here 400 frames of 720p
// pushed at once: the queue stays within its bound, the oldest are
// dropped and counted.
TEST(StreamPipeline, TheIngestQueueIsBoundedAndDropsTheOldest) {
  auto s = settings("/tmp/mirage-hls-queue-" + std::to_string(getpid()));
  std::string error;
  auto pipeline = StreamPipeline::start(s, &error);
  ASSERT_TRUE(pipeline) << error;
  const auto frame = jpeg_frames(1, "snow", 1280, 720)[0];  // noise: a large JPEG, slow to decode
  uint64_t most = 0;
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(pipeline->push_jpeg(bytes(frame), frame.size()), StreamPipeline::Push::kOk);
    most = std::max(most, pipeline->ingest_queued_bytes());
  }
  EXPECT_LE(most, StreamPipeline::kQueueFrames * frame.size());
  EXPECT_GT(pipeline->ingest_dropped(), 100u);
  EXPECT_NE(pipeline->health_json().find("\"ingest_dropped\":"), std::string::npos);
}

// Main: the bus kept every message (nothing popped them: about three a
// second for the stream's life), and an old ERROR among them ended the EOS
// wait at once, leaving the HLS playlist unfinished.
TEST(StreamPipeline, TheBusKeepsNothingAndTeardownAwaitsEosAfterAnError) {
  const std::string dir = "/tmp/mirage-hls-bus-" + std::to_string(getpid());
  auto s = settings(dir);
  s.keep_hls = true;
  std::string error;
  auto pipeline = StreamPipeline::start(s, &error);
  ASSERT_TRUE(pipeline) << error;
  push_paced(*pipeline, jpeg_frames(40, "ball", 320, 240));
  EXPECT_FALSE(pipeline->bus_has_pending());
  pipeline->inject_error("an old error");
  EXPECT_FALSE(pipeline->bus_has_pending());
  EXPECT_EQ(pipeline->error(), "an old error");
  pipeline.reset();
  std::ifstream playlist(dir + "/index.m3u8");
  std::string text((std::istreambuf_iterator<char>(playlist)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("#EXT-X-ENDLIST"), std::string::npos) << text;  // hlssink2 finished at EOS
  std::filesystem::remove_all(dir);
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
