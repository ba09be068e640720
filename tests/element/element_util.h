// Helpers for the element tests: frames of a known colour made and read
// back with GStreamer's own converter (independent of the code under test),
// bus helpers, and the paths of the models built for the tests.
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace mirage::test {

// Models written by mirage-model at build time (tests/meson.build).
inline std::string model(const std::string& name) {
  const char* dir = std::getenv("MIRAGE_TEST_MODELS");
  return std::string(dir ? dir : "tests/models") + "/" + name + ".pt";
}

inline GstVideoInfo video_info(const std::string& caps_string) {
  GstCaps* caps = gst_caps_from_string(caps_string.c_str());
  GstVideoInfo info;
  EXPECT_TRUE(caps && gst_video_info_from_caps(&info, caps)) << caps_string;
  gst_caps_unref(caps);
  return info;
}

// GstVideoConverter converts formats and sizes, not framerates.
inline void match_rates(GstVideoInfo* argb, const GstVideoInfo& info) {
  argb->fps_n = info.fps_n;
  argb->fps_d = info.fps_d;
  argb->par_n = info.par_n;
  argb->par_d = info.par_d;
}

// A frame of one colour in |info|'s format, through GstVideoConverter.
inline GstBuffer* solid_frame(const GstVideoInfo& info, int r, int g, int b, GstClockTime pts = 0) {
  GstVideoInfo argb;
  gst_video_info_set_format(&argb, GST_VIDEO_FORMAT_ARGB, GST_VIDEO_INFO_WIDTH(&info),
                            GST_VIDEO_INFO_HEIGHT(&info));
  match_rates(&argb, info);
  GstBuffer* src = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&argb), nullptr);
  GstMapInfo map;
  gst_buffer_map(src, &map, GST_MAP_WRITE);
  for (gsize i = 0; i + 3 < map.size; i += 4) {
    map.data[i] = 255;
    map.data[i + 1] = uint8_t(r);
    map.data[i + 2] = uint8_t(g);
    map.data[i + 3] = uint8_t(b);
  }
  gst_buffer_unmap(src, &map);
  GstBuffer* dst = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  GstVideoFrame in, out;
  gst_video_frame_map(&in, &argb, src, GST_MAP_READ);
  gst_video_frame_map(&out, const_cast<GstVideoInfo*>(&info), dst, GST_MAP_WRITE);
  GstVideoConverter* conv = gst_video_converter_new(&argb, const_cast<GstVideoInfo*>(&info), nullptr);
  gst_video_converter_frame(conv, &in, &out);
  gst_video_converter_free(conv);
  gst_video_frame_unmap(&in);
  gst_video_frame_unmap(&out);
  gst_buffer_unref(src);
  GST_BUFFER_PTS(dst) = pts;
  GST_BUFFER_DURATION(dst) = GST_SECOND / 30;
  return dst;
}

// Mean R, G, B of a frame in |info|'s format.
inline std::array<double, 3> mean_rgb(const GstVideoInfo& info, GstBuffer* buffer) {
  GstVideoInfo argb;
  gst_video_info_set_format(&argb, GST_VIDEO_FORMAT_ARGB, GST_VIDEO_INFO_WIDTH(&info),
                            GST_VIDEO_INFO_HEIGHT(&info));
  match_rates(&argb, info);
  GstBuffer* dst = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&argb), nullptr);
  GstVideoFrame in, out;
  EXPECT_TRUE(gst_video_frame_map(&in, const_cast<GstVideoInfo*>(&info), buffer, GST_MAP_READ));
  gst_video_frame_map(&out, &argb, dst, GST_MAP_WRITE);
  GstVideoConverter* conv = gst_video_converter_new(const_cast<GstVideoInfo*>(&info), &argb, nullptr);
  gst_video_converter_frame(conv, &in, &out);
  gst_video_converter_free(conv);
  gst_video_frame_unmap(&in);
  gst_video_frame_unmap(&out);
  std::array<double, 3> sum{};
  GstMapInfo map;
  gst_buffer_map(dst, &map, GST_MAP_READ);
  const gsize pixels = map.size / 4;
  for (gsize i = 0; i < map.size; i += 4)
    for (int c = 0; c < 3; ++c) sum[c] += map.data[i + 1 + c];
  gst_buffer_unmap(dst, &map);
  gst_buffer_unref(dst);
  for (double& s : sum) s /= double(pixels);
  return sum;
}

// Polls |condition| until it holds or |timeout| passes. For waiting on the
// worker thread, whose progress the test cannot drive by a clock.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

inline guint64 counter(GstElement* element, const char* name) {
  guint64 value = 0;
  g_object_get(element, name, &value, nullptr);
  return value;
}

// diffusionfilter's batch-sizes: [i], the shared model's calls of i + 1 frames.
inline std::vector<guint64> batch_sizes(GstElement* element) {
  GValue value = G_VALUE_INIT;
  g_value_init(&value, GST_TYPE_ARRAY);
  g_object_get_property(G_OBJECT(element), "batch-sizes", &value);
  std::vector<guint64> out;
  for (guint i = 0; i < gst_value_array_get_size(&value); ++i)
    out.push_back(g_value_get_uint64(gst_value_array_get_value(&value, i)));
  g_value_unset(&value);
  return out;
}

// The first message of |types| on |bus| within |timeout|, or null.
inline GstMessage* wait_message(GstBus* bus, GstMessageType types,
                                GstClockTime timeout = 10 * GST_SECOND) {
  return gst_bus_timed_pop_filtered(bus, timeout, types);
}

inline std::string message_text(GstMessage* message) {
  GError* error = nullptr;
  gchar* debug = nullptr;
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) gst_message_parse_error(message, &error, &debug);
  else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_WARNING) gst_message_parse_warning(message, &error, &debug);
  std::string text = error ? error->message : "";
  g_clear_error(&error);
  g_free(debug);
  return text;
}

}  // namespace mirage::test
