// Every output of a stream gives the colours the streamer sent: the H.264
// of HLS and WHEP as a browser decodes it, and the JPEG frames of the
// WebSocket viewers, for each kind of ingest colorimetry a stream may get
// (a browser canvas's JPEG, and H.264 from OBS or another encoder in three
// signallings). A real stream pipeline composed from pipelines/*.pipeline,
// with the identity model so that the processed frame is the input, is fed
// eight solid patches of known sRGB colour; the test decodes the newest HLS
// segment and the newest watch JPEG and compares each patch's mean R, G, B
// with what was sent. It also asserts that the H.264 says in its VUI what
// it is: limited-range BT.709 (primaries, transfer and matrix).
//
// How a browser reads the H.264 (measured here with Chromium 156 and
// hls.js, drawing the <video> into a canvas): it honours range and matrix
// when the VUI names range, matrix, primaries and transfer, and otherwise
// reads the picture as limited-range BT.709. The old pipeline handed
// x264enc the JPEG ingest's colorimetry, full-range BT.601 with primaries
// and transfer unknown, and x264enc wrote just that into the VUI: in this
// test the old HLS gave (43,133,215) for (60,135,200), 16 for grey 30, 249
// for 230, (19,146,48) for green (40,160,60), while its WebSocket JPEGs
// were right within 3 (Chromium itself showed (44,134,211), 16, 249,
// (19,147,53)): "HLS darker than the camera and the WebSocket frames". With
// an H.264 ingest it was the other way round: the old WebSocket JPEGs held
// limited-range samples read as full range, washed out (grey 30 -> 41,
// 230 -> 212, (40,160,60) -> (56,172,65) from limited BT.709).
//
// Real time: appsrc timestamps the frames on arrival, so each case pushes
// 15 fps for ~3 s (three HLS segments of 1 s).
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "media/stream_pipeline.h"
#include "media_util.h"

namespace mirage::media {
namespace {

using Rgb = std::array<double, 3>;
constexpr int kWidth = 320, kHeight = 240;
// Eight patches of 80 x 120, four per row: blue-ish, skin, green, grey,
// dark, light, red, blue.
const std::array<Rgb, 8> kPatches = {{{60, 135, 200}, {200, 150, 120}, {40, 160, 60}, {128, 128, 128},
                                      {30, 30, 30}, {230, 230, 230}, {220, 40, 40}, {40, 40, 220}}};
// Encoding, decoding and the conversions cost up to 4 levels here; the old
// pipeline was off by up to 21 (see above).
constexpr double kTolerance = 5;

std::string patches_file() {
  const std::string path = "/tmp/mirage-colour-patches-" + std::to_string(getpid()) + ".rgb";
  std::string frame(size_t(kWidth) * kHeight * 3, '\0');
  for (int y = 0; y < kHeight; ++y)
    for (int x = 0; x < kWidth; ++x)
      for (int c = 0; c < 3; ++c)
        frame[(size_t(y) * kWidth + x) * 3 + c] = char(int(kPatches[(y / 120) * 4 + x / 80][c]));
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 45; ++i) out << frame;
  return path;
}

// 45 frames of the patches, sRGB converted by GStreamer to I420 of
// |colorimetry| (RGB -> YUV honours the range; YUV -> YUV of one matrix
// does not, see output-hls.pipeline) and encoded by |encoder|.
std::vector<std::string> encoded(const std::string& colorimetry, const std::string& encoder) {
  const std::string file = patches_file();
  auto frames = pull_buffers("filesrc location=" + file + " ! rawvideoparse format=rgb width=" + std::to_string(kWidth) +
                             " height=" + std::to_string(kHeight) + " framerate=15/1 ! videoconvert" +
                             " ! video/x-raw,format=I420,colorimetry=" + colorimetry + " ! " + encoder +
                             " ! appsink name=out sync=false");
  std::remove(file.c_str());
  return frames;
}

struct Picture {
  std::vector<uint8_t> i420;
  std::string colorimetry;  // as the bitstream says (h264parse's caps); "" none
};

// The last picture of |file|, decoded without any colour conversion.
Picture decode(const std::string& file, const std::string& decoder) {
  GstElement* p = gst_parse_launch(("filesrc location=" + file + " ! " + decoder +
                                    " ! video/x-raw,format=I420 ! appsink name=out sync=false")
                                       .c_str(),
                                   nullptr);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  Picture picture;
  while (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
    GstVideoInfo info;
    GstVideoFrame frame;
    if (gst_video_info_from_caps(&info, gst_sample_get_caps(s)) &&
        gst_video_frame_map(&frame, &info, gst_sample_get_buffer(s), GST_MAP_READ)) {
      picture.i420.clear();
      for (int plane = 0; plane < 3; ++plane) {
        const int w = plane ? kWidth / 2 : kWidth, h = plane ? kHeight / 2 : kHeight;
        const auto* data = static_cast<const uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, plane));
        for (int y = 0; y < h; ++y)
          picture.i420.insert(picture.i420.end(), data + y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane),
                              data + y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane) + w);
      }
      gst_video_frame_unmap(&frame);
    }
    gst_sample_unref(s);
  }
  if (GstElement* parse = gst_bin_get_by_name(GST_BIN(p), "parse")) {
    GstPad* pad = gst_element_get_static_pad(parse, "src");
    if (GstCaps* caps = gst_pad_get_current_caps(pad)) {
      if (const char* c = gst_structure_get_string(gst_caps_get_structure(caps, 0), "colorimetry")) picture.colorimetry = c;
      gst_caps_unref(caps);
    }
    gst_object_unref(pad);
    gst_object_unref(parse);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  return picture;
}

// Each patch's mean R, G, B (its middle half, away from the edges where
// chroma subsampling and the encoder blend neighbours), Y'CbCr read with
// matrix |kr|, |kb| and |full| range, in floating point.
std::array<Rgb, 8> patch_means(const Picture& p, double kr, double kb, bool full) {
  std::array<Rgb, 8> means{};
  if (p.i420.size() != size_t(kWidth) * kHeight * 3 / 2) return means;
  const uint8_t* Y = p.i420.data();
  const uint8_t* U = Y + kWidth * kHeight;
  const uint8_t* V = U + kWidth * kHeight / 4;
  for (int i = 0; i < 8; ++i) {
    const int x0 = (i % 4) * 80 + 20, y0 = (i / 4) * 120 + 30;
    int n = 0;
    for (int y = y0; y < y0 + 60; ++y)
      for (int x = x0; x < x0 + 40; ++x, ++n) {
        const double l = full ? Y[y * kWidth + x] / 255.0 : (Y[y * kWidth + x] - 16) / 219.0;
        const int c = (y / 2) * (kWidth / 2) + x / 2;
        const double cb = (U[c] - 128) / (full ? 255.0 : 224.0), cr = (V[c] - 128) / (full ? 255.0 : 224.0);
        const double r = l + 2 * (1 - kr) * cr, b = l + 2 * (1 - kb) * cb;
        const double g = (l - kr * r - kb * b) / (1 - kr - kb);
        const Rgb rgb = {r, g, b};
        for (int k = 0; k < 3; ++k) means[i][k] += std::clamp(rgb[k] * 255, 0.0, 255.0);
      }
    for (double& m : means[i]) m /= n;
  }
  return means;
}

// A browser's reading of the H.264 (Chromium's, measured: see the top).
std::array<Rgb, 8> as_browser_shows_h264(const Picture& p) {
  GstVideoColorimetry c{};
  const bool named = gst_video_colorimetry_from_string(&c, p.colorimetry.c_str()) &&
                     c.range != GST_VIDEO_COLOR_RANGE_UNKNOWN && c.matrix != GST_VIDEO_COLOR_MATRIX_UNKNOWN &&
                     c.transfer != GST_VIDEO_TRANSFER_UNKNOWN && c.primaries != GST_VIDEO_COLOR_PRIMARIES_UNKNOWN;
  double kr = 0.2126, kb = 0.0722;
  if (named && !gst_video_color_matrix_get_Kr_Kb(c.matrix, &kr, &kb)) kr = 0.2126, kb = 0.0722;
  return patch_means(p, kr, kb, named && c.range == GST_VIDEO_COLOR_RANGE_0_255);
}

// Every decoder reads a JPEG (JFIF) as full-range BT.601.
std::array<Rgb, 8> as_browser_shows_jpeg(const Picture& p) { return patch_means(p, 0.299, 0.114, true); }

std::string show(const std::array<Rgb, 8>& means) {
  std::ostringstream out;
  for (const auto& m : means) out << "(" << std::lround(m[0]) << "," << std::lround(m[1]) << "," << std::lround(m[2]) << ") ";
  return out.str();
}

void expect_patches(const std::array<Rgb, 8>& got, const char* what) {
  for (int i = 0; i < 8; ++i)
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(got[i][c], kPatches[i][c], kTolerance)
          << what << ": patch " << i << " channel " << "RGB"[c] << "; all: " << show(got);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Ingest {
  const char* name;
  const char* kind;         // PipelineSettings::ingest
  const char* colorimetry;  // of the I420 the source encodes
  const char* encoder;
};

void PrintTo(const Ingest& ingest, std::ostream* out) { *out << ingest.name; }

class Colour : public ::testing::TestWithParam<Ingest> {};

TEST_P(Colour, HlsAndWebSocketFramesShowTheColoursSent) {
  const Ingest& ingest = GetParam();
  const std::string dir = "/tmp/mirage-colour-" + std::to_string(getpid()) + "-" + ingest.name;
  PipelineSettings s;
  s.templates_dir = MIRAGE_PIPELINES_DIR;
  s.model = std::string(std::getenv("MIRAGE_TEST_MODELS")) + "/identity.pt";
  s.width = kWidth;
  s.height = kHeight;
  s.hls_dir = dir;
  s.keep_hls = true;
  s.ingest = ingest.kind;
  const auto frames = encoded(ingest.colorimetry, ingest.encoder);
  ASSERT_EQ(frames.size(), 45u);
  std::string error;
  auto pipeline = StreamPipeline::start(s, &error);
  ASSERT_TRUE(pipeline) << error;
  for (const auto& f : frames) {
    const auto* data = reinterpret_cast<const uint8_t*>(f.data());
    EXPECT_EQ(s.ingest == "jpeg" ? pipeline->push_jpeg(data, f.size()) : pipeline->push_bytes(data, f.size()),
              StreamPipeline::Push::kOk);
    std::this_thread::sleep_for(std::chrono::milliseconds(66));
  }
  auto jpeg = pipeline->latest_jpeg();
  ASSERT_TRUE(jpeg) << "no processed frame: " << pipeline->error();
  pipeline.reset();  // EOS: the last segment is finished and listed

  // The newest HLS segment, decoded as a browser decodes it.
  const std::string playlist = read_file(dir + "/index.m3u8");
  const auto at = playlist.rfind("segment");
  ASSERT_NE(at, std::string::npos) << playlist;
  const std::string segment = dir + "/" + playlist.substr(at, playlist.find('\n', at) - at);
  const Picture h264 = decode(segment, "tsdemux ! h264parse name=parse ! avdec_h264");
  // The VUI names limited range, and BT.709 primaries, transfer and matrix.
  GstVideoColorimetry vui{};
  ASSERT_TRUE(gst_video_colorimetry_from_string(&vui, h264.colorimetry.c_str())) << "'" << h264.colorimetry << "'";
  EXPECT_EQ(vui.range, GST_VIDEO_COLOR_RANGE_16_235) << h264.colorimetry;
  EXPECT_EQ(vui.matrix, GST_VIDEO_COLOR_MATRIX_BT709) << h264.colorimetry;
  EXPECT_EQ(vui.transfer, GST_VIDEO_TRANSFER_BT709) << h264.colorimetry;
  EXPECT_EQ(vui.primaries, GST_VIDEO_COLOR_PRIMARIES_BT709) << h264.colorimetry;
  const auto hls = as_browser_shows_h264(h264);

  // The WebSocket viewers' JPEG of the same stream.
  const std::string jpeg_file = dir + ".jpg";
  std::ofstream(jpeg_file, std::ios::binary) << *jpeg;
  const auto websocket = as_browser_shows_jpeg(decode(jpeg_file, "jpegdec"));
  std::remove(jpeg_file.c_str());
  std::filesystem::remove_all(dir);

  std::printf("colour, %s ingest (%s): sent %s\n  HLS (VUI %s) %s\n  WebSocket JPEG %s\n", ingest.name,
              ingest.colorimetry, show([] {
                std::array<Rgb, 8> sent;
                std::copy(kPatches.begin(), kPatches.end(), sent.begin());
                return sent;
              }()).c_str(),
              h264.colorimetry.c_str(), show(hls).c_str(), show(websocket).c_str());
  expect_patches(hls, "HLS");
  expect_patches(websocket, "WebSocket JPEG");
}

// What streams get: a browser canvas's JPEG (the web app), and H.264 as
// OBS sends it (limited BT.709; full-range with "Full" in its settings), or
// as an SD camera or older encoder does (limited BT.601).
INSTANTIATE_TEST_SUITE_P(
    Ingests, Colour,
    ::testing::Values(Ingest{"canvas_jpeg", "jpeg", "1:4:0:0", "jpegenc quality=95"},
                      Ingest{"h264_bt709", "h264", "bt709",
                             "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
                             "! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"},
                      Ingest{"h264_bt709_full_range", "h264", "1:3:5:1",
                             "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
                             "! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"},
                      Ingest{"h264_bt601", "h264", "bt601",
                             "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
                             "! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"}),
    [](const ::testing::TestParamInfo<Ingest>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mirage::media
