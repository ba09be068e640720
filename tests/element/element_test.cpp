// diffusionfilter through GstHarness and real pipelines.
#include <gst/check/gstharness.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>

#include <fstream>

#include <string>
#include <vector>

#include "element_util.h"
#include "model_runner.h"
#include "sample_models.h"
#include "test_models.h"

namespace mirage::test {
namespace {


class Element : public ::testing::Test {
 protected:
  std::string script(const std::string& name, const std::string& source) {
    std::string path = dir_.path() + "/" + name + ".pt";
    Status s = models::write_script(path, source);
    EXPECT_TRUE(s.ok()) << s.message();
    return path;
  }

  // A harness around one diffusionfilter, with a bus to read its messages.
  GstHarness* harness(const std::string& properties, const std::string& caps) {
    // gst_harness_new_parse() would wrap the element in a bin; parse the
    // single element instead so that h->element is the diffusionfilter.
    GError* error = nullptr;
    GstElement* element = gst_parse_launch(("diffusionfilter " + properties).c_str(), &error);
    EXPECT_TRUE(element) << (error ? error->message : "");
    g_clear_error(&error);
    GstHarness* h = gst_harness_new_with_element(element, "sink", "src");
    gst_object_unref(element);
    if (!bus_) bus_ = gst_bus_new();
    gst_element_set_bus(h->element, bus_);
    gst_harness_set_src_caps_str(h, caps.c_str());
    harnesses_.push_back(h);
    return h;
  }

  void TearDown() override {
    for (GstHarness* h : harnesses_) gst_harness_teardown(h);
    if (bus_) {
      gst_bus_set_flushing(bus_, TRUE);  // drops the messages nobody read
      gst_object_unref(bus_);
    }
  }

  GstBus* bus_ = nullptr;
  std::vector<GstHarness*> harnesses_;
  TempDir dir_;
};

class EveryFormat : public Element, public ::testing::WithParamInterface<const char*> {};

// Output caps are the input caps, and colour survives the trip into the
// model and back in every supported format.
TEST_P(EveryFormat, OutputHasInputCapsAndColours) {
  const std::string caps = std::string("video/x-raw,format=") + GetParam() +
                           ",width=40,height=30,framerate=30/1";
  GstHarness* h = harness("model=" + script("red", kRedDetector) +
                              " output-mode=processed width=16 height=16",
                          caps);
  GstVideoInfo info = video_info(caps);
  ASSERT_EQ(gst_harness_push(h, solid_frame(info, 255, 0, 0)), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  ASSERT_TRUE(out);
  GstCaps* out_caps = gst_pad_get_current_caps(h->sinkpad);
  GstCaps* in_caps = gst_caps_from_string(caps.c_str());
  EXPECT_TRUE(gst_caps_is_equal(out_caps, in_caps));
  auto rgb = mean_rgb(info, out);
  EXPECT_GT(rgb[0], 240) << GetParam();
  EXPECT_LT(rgb[1], 15) << GetParam();
  EXPECT_LT(rgb[2], 15) << GetParam();
  gst_caps_unref(out_caps);
  gst_caps_unref(in_caps);
  gst_buffer_unref(out);
}

INSTANTIATE_TEST_SUITE_P(Formats, EveryFormat,
                         ::testing::Values("RGB", "RGBA", "BGRx", "BGRA", "I420", "NV12"));

// Before the first processed frame, hold mode shows grey, never the camera;
// afterwards every input frame carries the newest processed image.
TEST_F(Element, HoldModeShowsPlaceholderNeverTheRawFrame) {
  const std::string caps = "video/x-raw,format=RGB,width=32,height=32,framerate=30/1";
  GstHarness* h = harness("model=" + model("delay300") + " width=32 height=32", caps);
  GstVideoInfo info = video_info(caps);

  ASSERT_EQ(gst_harness_push(h, solid_frame(info, 255, 255, 255, 0)), GST_FLOW_OK);
  GstBuffer* first = gst_harness_pull(h);
  ASSERT_TRUE(first);
  auto grey = mean_rgb(info, first);
  // The model needs 300 ms for the white frame, so this can only be grey.
  for (double c : grey) EXPECT_NEAR(c, 128, 1);
  EXPECT_EQ(GST_BUFFER_PTS(first), 0u);
  gst_buffer_unref(first);

  ASSERT_TRUE(eventually([&] { return counter(h->element, "frames-processed") == 1; }));
  ASSERT_EQ(gst_harness_push(h, solid_frame(info, 0, 0, 0, GST_SECOND / 30)), GST_FLOW_OK);
  GstBuffer* second = gst_harness_pull(h);
  ASSERT_TRUE(second);
  for (double c : mean_rgb(info, second)) EXPECT_GT(c, 250);  // the processed white frame
  EXPECT_EQ(GST_BUFFER_PTS(second), GST_SECOND / 30);         // with the new input's timing
  gst_buffer_unref(second);
}

// Processed mode: frames arriving while the model is busy replace each other;
// EOS drains the waiting one, which is the newest; counts add up.
TEST_F(Element, ProcessedModeTakesTheNewestAndDrainsAtEos) {
  const std::string caps = "video/x-raw,format=RGB,width=32,height=32,framerate=30/1";
  GstHarness* h = harness("model=" + model("delay100") + " output-mode=processed width=32 height=32", caps);
  GstVideoInfo info = video_info(caps);
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(gst_harness_push(h, solid_frame(info, 10 * i, 0, 0, i * GST_MSECOND)), GST_FLOW_OK);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));

  std::vector<GstClockTime> pts;
  while (GstBuffer* out = gst_harness_try_pull(h)) {
    pts.push_back(GST_BUFFER_PTS(out));
    gst_buffer_unref(out);
  }
  // EOS left after the drained frame, so everything is here already.
  const guint64 in = counter(h->element, "frames-in");
  const guint64 processed = counter(h->element, "frames-processed");
  const guint64 dropped = counter(h->element, "frames-dropped");
  EXPECT_EQ(in, 10u);
  EXPECT_EQ(processed + dropped, in);
  EXPECT_EQ(pts.size(), processed);
  // The worker may or may not have taken frame 0 before frame 1 replaced it,
  // but 10 pushes take far less than 10 x 100 ms: most frames were dropped.
  ASSERT_GE(pts.size(), 1u);
  EXPECT_LE(pts.size(), 3u);
  EXPECT_EQ(pts.back(), 9 * GST_MSECOND);
  for (size_t i = 1; i < pts.size(); ++i) EXPECT_LT(pts[i - 1], pts[i]);
}

// style is applied from the next inference, while PLAYING.
TEST_F(Element, StyleChangesWhilePlaying) {
  const std::string caps = "video/x-raw,format=RGB,width=32,height=32,framerate=30/1";
  GstHarness* h = harness("model=" + model("styles") + " output-mode=processed strength=1.0 style=invert", caps);
  GstVideoInfo info = video_info(caps);
  gst_harness_push(h, solid_frame(info, 204, 128, 51));
  GstBuffer* inverted = gst_harness_pull(h);
  auto rgb = mean_rgb(info, inverted);
  EXPECT_NEAR(rgb[0], 51, 3);
  EXPECT_NEAR(rgb[2], 204, 3);
  gst_buffer_unref(inverted);

  g_object_set(h->element, "style", "sepia", nullptr);
  gst_harness_push(h, solid_frame(info, 204, 128, 51));
  GstBuffer* sepia = gst_harness_pull(h);
  rgb = mean_rgb(info, sepia);
  EXPECT_GT(rgb[0], rgb[1]);
  EXPECT_GT(rgb[1], rgb[2]);
  gst_buffer_unref(sepia);
}

// New caps mid-stream: the output follows; hold mode shows the placeholder
// in the new format rather than an image of the old size.
TEST_F(Element, CapsRenegotiation) {
  const std::string rgb_caps = "video/x-raw,format=RGB,width=64,height=48,framerate=30/1";
  const std::string i420_caps = "video/x-raw,format=I420,width=32,height=24,framerate=30/1";
  GstHarness* h = harness("model=" + model("identity") + " output-mode=processed width=16 height=16", rgb_caps);
  GstVideoInfo rgb = video_info(rgb_caps), i420 = video_info(i420_caps);
  gst_harness_push(h, solid_frame(rgb, 0, 0, 255));
  GstBuffer* out = gst_harness_pull(h);
  EXPECT_EQ(gst_buffer_get_size(out), GST_VIDEO_INFO_SIZE(&rgb));
  gst_buffer_unref(out);

  gst_harness_set_src_caps_str(h, i420_caps.c_str());
  gst_harness_push(h, solid_frame(i420, 0, 255, 0));
  out = gst_harness_pull(h);
  ASSERT_TRUE(out);
  EXPECT_EQ(gst_buffer_get_size(out), GST_VIDEO_INFO_SIZE(&i420));
  GstCaps* current = gst_pad_get_current_caps(h->sinkpad);
  GstCaps* expected = gst_caps_from_string(i420_caps.c_str());
  EXPECT_TRUE(gst_caps_is_equal(current, expected));
  EXPECT_GT(mean_rgb(i420, out)[1], 200);
  gst_caps_unref(current);
  gst_caps_unref(expected);
  gst_buffer_unref(out);
}

TEST_F(Element, HoldModeRenegotiationShowsPlaceholderInTheNewFormat) {
  const std::string a = "video/x-raw,format=RGB,width=64,height=48,framerate=30/1";
  const std::string b = "video/x-raw,format=NV12,width=32,height=24,framerate=30/1";
  GstHarness* h = harness("model=" + model("identity") + " width=16 height=16", a);
  GstVideoInfo ia = video_info(a), ib = video_info(b);
  gst_harness_push(h, solid_frame(ia, 255, 0, 0));
  gst_buffer_unref(gst_harness_pull(h));
  ASSERT_TRUE(eventually([&] { return counter(h->element, "frames-processed") == 1; }));
  gst_harness_set_src_caps_str(h, b.c_str());
  gst_harness_push(h, solid_frame(ib, 255, 0, 0));
  GstBuffer* out = gst_harness_pull(h);
  ASSERT_TRUE(out);
  EXPECT_EQ(gst_buffer_get_size(out), GST_VIDEO_INFO_SIZE(&ib));
  gst_buffer_unref(out);
}

// A flush discards the waiting frame and the result of the frame in flight.
TEST_F(Element, FlushDiscardsWaitingAndInFlightFrames) {
  const std::string caps = "video/x-raw,format=RGB,width=32,height=32,framerate=30/1";
  GstHarness* h = harness("model=" + model("delay300") + " output-mode=processed width=32 height=32", caps);
  GstVideoInfo info = video_info(caps);
  gst_harness_push(h, solid_frame(info, 255, 0, 0, 1 * GST_SECOND));  // taken by the worker, or replaced
  gst_harness_push(h, solid_frame(info, 255, 0, 0, 2 * GST_SECOND));  // waits
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&segment)));
  gst_harness_push(h, solid_frame(info, 0, 255, 0, 3 * GST_SECOND));

  GstBuffer* out = gst_harness_pull(h);
  ASSERT_TRUE(out);
  EXPECT_EQ(GST_BUFFER_PTS(out), 3 * GST_SECOND);  // nothing from before the flush
  EXPECT_GT(mean_rgb(info, out)[1], 250);
  gst_buffer_unref(out);
  EXPECT_GE(counter(h->element, "frames-dropped"), 1u);
}

// An exception in forward(): a warning, the last good image stays on
// screen; ten in a row: an error and the flow stops.
TEST_F(Element, InferenceFailuresWarnThenError) {
  const std::string caps = "video/x-raw,format=RGB,width=16,height=16,framerate=30/1";
  const std::string path = script("boom", std::string(kForward) +
                                              "    if style == \"boom\":\n"
                                              "        raise RuntimeError(\"boom style\")\n"
                                              "    return image\n");
  GstHarness* h = harness("model=" + path + " width=16 height=16", caps);
  GstVideoInfo info = video_info(caps);
  gst_harness_push(h, solid_frame(info, 255, 255, 255));
  gst_buffer_unref(gst_harness_pull(h));
  ASSERT_TRUE(eventually([&] { return counter(h->element, "frames-processed") == 1; }));

  g_object_set(h->element, "style", "boom", nullptr);
  for (int i = 1; i <= 10; ++i) {
    ASSERT_EQ(gst_harness_push(h, solid_frame(info, 0, 0, 0)), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    for (double c : mean_rgb(info, out)) EXPECT_GT(c, 250);  // still the last good (white) image
    gst_buffer_unref(out);
    ASSERT_TRUE(eventually([&] { return counter(h->element, "frames-dropped") == guint64(i); }));
  }
  int warnings = 0;
  bool error = false;
  while (GstMessage* m = gst_bus_pop_filtered(bus_, GstMessageType(GST_MESSAGE_WARNING | GST_MESSAGE_ERROR))) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
      ++warnings;
      EXPECT_NE(message_text(m).find("boom style"), std::string::npos);
    } else {
      error = true;
      EXPECT_NE(message_text(m).find("10 times in a row"), std::string::npos) << message_text(m);
    }
    gst_message_unref(m);
  }
  EXPECT_EQ(warnings, 9);  // the tenth failure is the error
  EXPECT_TRUE(error);
  EXPECT_EQ(gst_harness_push(h, solid_frame(info, 0, 0, 0)), GST_FLOW_ERROR);
}

TEST_F(Element, UnknownStyleWarnsWithTheKnownStyles) {
  GstHarness* h = harness("model=" + model("styles") + " width=16 height=16",
                          "video/x-raw,format=RGB,width=16,height=16,framerate=30/1");
  g_object_set(h->element, "style", "cubism", nullptr);
  GstMessage* m = wait_message(bus_, GST_MESSAGE_WARNING, 0);
  ASSERT_TRUE(m);
  EXPECT_NE(message_text(m).find("Unknown style 'cubism'"), std::string::npos);
  EXPECT_NE(message_text(m).find("toon, sketch, sepia"), std::string::npos) << message_text(m);
  gst_message_unref(m);
  g_object_set(h->element, "style", "toon", nullptr);
  EXPECT_FALSE(gst_bus_have_pending(bus_));
}

// The read-only "styles" lists the model's styles once it is loaded (a
// worker advertises them); before that, and for a model without styles(),
// it is empty.
TEST_F(Element, StylesPropertyListsTheLoadedModelsStyles) {
  auto styles_of = [](GstElement* e) {
    gchar** names = nullptr;
    g_object_get(e, "styles", &names, nullptr);
    std::vector<std::string> out;
    for (gchar** n = names; n && *n; ++n) out.emplace_back(*n);
    g_strfreev(names);
    return out;
  };
  GstElement* e = gst_element_factory_make("diffusionfilter", nullptr);
  g_object_set(e, "model", model("styles").c_str(), "width", 16, "height", 16, nullptr);
  EXPECT_TRUE(styles_of(e).empty());
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS);
  const auto loaded = styles_of(e);
  ASSERT_GE(loaded.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(loaded.begin(), loaded.begin() + 3), (std::vector<std::string>{"toon", "sketch", "sepia"}));
  EXPECT_NE(std::find(loaded.begin(), loaded.end(), "invert"), loaded.end());
  gst_element_set_state(e, GST_STATE_NULL);
  g_object_set(e, "model", model("identity").c_str(), nullptr);
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS);
  EXPECT_TRUE(styles_of(e).empty());
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
}

// Bad values are refused with a warning and leave the property unchanged.
int g_warnings = 0;
void count_warning(const gchar*, GLogLevelFlags, const gchar*, gpointer) { ++g_warnings; }

TEST_F(Element, BadPropertyValuesAreRefused) {
  guint handlers[] = {
      g_log_set_handler(nullptr, GLogLevelFlags(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL), count_warning, nullptr),
      g_log_set_handler("GLib-GObject", GLogLevelFlags(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL), count_warning, nullptr),
  };
  GstElement* e = gst_element_factory_make("diffusionfilter", nullptr);
  ASSERT_TRUE(e);
  g_warnings = 0;
  g_object_set(e, "strength", 2.0, nullptr);
  g_object_set(e, "device", "gpu", nullptr);
  g_object_set(e, "width", 3, nullptr);
  g_object_set(e, "height", -5, nullptr);
  EXPECT_EQ(g_warnings, 4);
  gdouble strength;
  gchar* device;
  gint width, height;
  g_object_get(e, "strength", &strength, "device", &device, "width", &width, "height", &height, nullptr);
  EXPECT_EQ(strength, 0.5);
  EXPECT_STREQ(device, "auto");
  EXPECT_EQ(width, 0);
  EXPECT_EQ(height, 0);
  g_free(device);
  gst_object_unref(e);

  // The model cannot change under a running stream.
  GstHarness* h = harness("model=" + model("identity") + " width=16 height=16",
                          "video/x-raw,format=RGB,width=16,height=16,framerate=30/1");
  g_warnings = 0;
  g_object_set(h->element, "model", "/elsewhere.pt", "output-mode", 1, nullptr);
  EXPECT_EQ(g_warnings, 2);
  gchar* path;
  g_object_get(h->element, "model", &path, nullptr);
  EXPECT_EQ(std::string(path), model("identity"));
  g_free(path);
  for (guint id : handlers) g_log_remove_handler(id == handlers[0] ? nullptr : "GLib-GObject", id);
}

class BadModel : public Element, public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

// A missing, corrupt or contract-breaking model fails READY->PAUSED with an
// error naming the file and the reason.
TEST_P(BadModel, FailsTheStateChange) {
  const auto [kind, reason] = GetParam();
  std::string path = dir_.path() + "/" + kind + ".pt";
  if (std::string(kind) == "corrupt") {
    FILE* f = fopen(path.c_str(), "w");
    fputs("PK\x03\x04 definitely not a model", f);
    fclose(f);
  } else if (std::string(kind) == "signature") {
    path = script(kind, "def forward(self, x: Tensor) -> Tensor:\n    return x\n");
  } else if (std::string(kind) == "shape") {
    path = script(kind, std::string(kForward) + "    return image[:, 0:1]\n");
  }
  GstElement* pipeline = gst_parse_launch(
      ("videotestsrc num-buffers=5 ! diffusionfilter model=" + path + " ! fakesink").c_str(), nullptr);
  ASSERT_TRUE(pipeline);
  EXPECT_EQ(gst_element_set_state(pipeline, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = wait_message(bus, GST_MESSAGE_ERROR, 0);
  ASSERT_TRUE(m);
  const std::string text = message_text(m);
  EXPECT_NE(text.find(path), std::string::npos) << text;
  EXPECT_NE(text.find(reason), std::string::npos) << text;
  gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

INSTANTIATE_TEST_SUITE_P(
    Models, BadModel,
    ::testing::Values(std::make_pair("missing", "No such file"),
                      std::make_pair("corrupt", "not a loadable TorchScript file"),
                      std::make_pair("signature", "forward() must be"),
                      std::make_pair("shape", "expected [1, 3, 512, 512]")));

// Threads of this process whose name starts with |prefix|.
int threads_named(const std::string& prefix) {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      n += name.rfind(prefix, 0) == 0;
    }
    closedir(d);
  }
  return n;
}

GstMessage* run_until(GstElement* pipeline, GstMessageType types) {
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = wait_message(bus, types, 30 * GST_SECOND);
  gst_object_unref(bus);
  return m;
}

// PLAYING -> NULL -> PLAYING many times: a worker while playing, none left
// behind, the model reloaded each time.
TEST_F(Element, RepeatedStateChangesLeakNoThreads) {
  GstElement* pipeline = gst_parse_launch(
      ("videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=60/1 ! diffusionfilter name=f model=" +
       model("identity") + " width=32 height=32 ! fakesink")
          .c_str(),
      nullptr);
  GstElement* filter = gst_bin_get_by_name(GST_BIN(pipeline), "f");
  // libtorch starts process-wide thread pools on first use, from the first
  // worker, and they inherit its name: count from after the first cycle.
  int baseline = -1;
  for (int cycle = 0; cycle < 10; ++cycle) {
    ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    ASSERT_TRUE(eventually([&] { return counter(filter, "frames-processed") >= 3; }));
    EXPECT_GE(threads_named("diffusionworker"), 1) << "cycle " << cycle;
    ASSERT_EQ(gst_element_set_state(pipeline, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    if (baseline < 0) {
      // Per-worker OpenMP helpers leave shortly after the worker.
      eventually([] { return threads_named("diffusionworker") <= 2; }, std::chrono::seconds(2));
      baseline = threads_named("diffusionworker");
      EXPECT_LE(baseline, 2);
    }
    EXPECT_TRUE(eventually([&] { return threads_named("diffusionworker") == baseline; }))
        << "cycle " << cycle << ": " << threads_named("diffusionworker") << " threads, " << baseline
        << " after the first cycle";
  }
  gst_object_unref(filter);
  gst_object_unref(pipeline);
}

// Processed mode reports the model's time as latency, so sync=true sinks keep
// its buffers; hold mode adds none.
TEST_F(Element, LatencyQueryIsTruthful) {
  for (const char* mode : {"processed", "hold"}) {
    GstElement* pipeline = gst_parse_launch(
        (std::string("videotestsrc is-live=true ! video/x-raw,width=32,height=32,framerate=30/1 ! "
                     "diffusionfilter width=32 height=32 output-mode=") +
         mode + " model=" + model("delay100") + " ! fakesink sync=true")
            .c_str(),
        nullptr);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    GstMessage* m = run_until(pipeline, GstMessageType(GST_MESSAGE_ASYNC_DONE | GST_MESSAGE_ERROR));
    ASSERT_TRUE(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ASYNC_DONE);
    gst_message_unref(m);
    GstQuery* q = gst_query_new_latency();
    ASSERT_TRUE(gst_element_query(pipeline, q));
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency(q, &live, &min, &max);
    EXPECT_TRUE(live);
    if (std::string(mode) == "processed") {
      EXPECT_GE(min, 100 * GST_MSECOND + GST_SECOND / 30) << mode;
    } else {
      EXPECT_LT(min, 100 * GST_MSECOND) << mode;
    }
    gst_query_unref(q);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
}

// A stats message once a second and one at EOS with the final counts.
TEST_F(Element, PostsStatsAtEos) {
  GstElement* pipeline = gst_parse_launch(
      ("videotestsrc num-buffers=20 ! video/x-raw,width=32,height=32 ! diffusionfilter model=" +
       model("identity") + " width=32 height=32 ! fakesink")
          .c_str(),
      nullptr);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  const GstStructure* last = nullptr;
  GstMessage* last_message = nullptr;
  while (GstMessage* m = wait_message(bus, GstMessageType(GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS | GST_MESSAGE_ERROR), 30 * GST_SECOND)) {
    if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_ELEMENT) {
      EXPECT_EQ(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS);
      gst_message_unref(m);
      break;
    }
    if (gst_message_has_name(m, "diffusionfilter-stats")) {
      if (last_message) gst_message_unref(last_message);
      last_message = m;
      last = gst_message_get_structure(m);
    } else {
      gst_message_unref(m);
    }
  }
  ASSERT_TRUE(last);
  guint64 in, processed, dropped;
  gdouble inference, lag;
  ASSERT_TRUE(gst_structure_get(last, "frames-in", G_TYPE_UINT64, &in, "frames-processed", G_TYPE_UINT64,
                                &processed, "frames-dropped", G_TYPE_UINT64, &dropped, "inference-ms",
                                G_TYPE_DOUBLE, &inference, "lag-ms", G_TYPE_DOUBLE, &lag, nullptr));
  EXPECT_EQ(in, 20u);
  EXPECT_EQ(processed + dropped, in);
  EXPECT_GE(processed, 1u);
  EXPECT_GE(lag, 0.0);
  gst_message_unref(last_message);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

// Many streams, one model: 2 and 4 live pipelines in this process name the
// same model and share one load (counted) and one model thread. Each
// stream's output comes only from its own input (its colour), every stream
// gets a fair share of the model, and a stream that stops does not disturb
// the others.
TEST_F(Element, StreamsShareOneModelAndKeepTheirOwnFrames) {
  const int colours[4][3] = {{220, 30, 30}, {30, 220, 30}, {30, 30, 220}, {220, 220, 30}};
  for (int n : {2, 4}) {
    const uint64_t loads_before = model_loads();
    std::vector<GstElement*> pipelines, filters, sinks;
    for (int i = 0; i < n; ++i) {
      char colour[16];
      std::snprintf(colour, sizeof colour, "0xff%02x%02x%02x", colours[i][0], colours[i][1], colours[i][2]);
      GstElement* p = gst_parse_launch(
          (std::string("videotestsrc is-live=true pattern=solid-color foreground-color=") + colour +
           " ! video/x-raw,format=RGB,width=64,height=64,framerate=30/1 ! diffusionfilter name=f output-mode=processed "
           "max-batch=4 model=" + model("delay100") + " width=64 height=64 ! appsink name=out max-buffers=2 drop=true")
              .c_str(),
          nullptr);
      ASSERT_TRUE(p);
      pipelines.push_back(p);
      filters.push_back(gst_bin_get_by_name(GST_BIN(p), "f"));
      sinks.push_back(gst_bin_get_by_name(GST_BIN(p), "out"));
    }
    for (auto* p : pipelines) ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    EXPECT_EQ(model_loads(), loads_before + 1) << n << " streams";
    // Every stream's frames are its own colour.
    const GstVideoInfo info = video_info("video/x-raw,format=RGB,width=64,height=64,framerate=30/1");
    for (int round = 0; round < 6; ++round)
      for (int i = 0; i < n; ++i) {
        GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sinks[size_t(i)]), 3 * GST_SECOND);
        ASSERT_TRUE(sample) << "stream " << i;
        const auto rgb = mean_rgb(info, gst_sample_get_buffer(sample));
        for (int c = 0; c < 3; ++c) EXPECT_NEAR(rgb[size_t(c)], colours[i][c], 6) << "stream " << i << " of " << n;
        gst_sample_unref(sample);
      }
    // Fair shares: no stream gets less than half of the busiest one's.
    guint64 least = G_MAXUINT64, most = 0;
    for (auto* f : filters) {
      least = std::min(least, counter(f, "frames-processed"));
      most = std::max(most, counter(f, "frames-processed"));
    }
    EXPECT_GE(least * 2, most) << n << " streams: " << least << " vs " << most;
    // batch-sizes is the shared model's: every element's frames, in batches.
    guint64 processed = 0, batched = 0;
    for (auto* f : filters) processed += counter(f, "frames-processed");
    const auto sizes = batch_sizes(filters[0]);
    for (size_t i = 0; i < sizes.size(); ++i) batched += (i + 1) * sizes[i];
    EXPECT_GE(batched, processed);
    EXPECT_GE(sizes.size(), 2u) << "no call ran more than one frame";
    // One stream stops; the others go on.
    ASSERT_EQ(gst_element_set_state(pipelines[0], GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    std::vector<guint64> before;
    for (int i = 1; i < n; ++i) before.push_back(counter(filters[size_t(i)], "frames-processed"));
    for (int i = 1; i < n; ++i)
      EXPECT_TRUE(eventually([&] { return counter(filters[size_t(i)], "frames-processed") >= before[size_t(i - 1)] + 3; }))
          << "stream " << i << " stalled after stream 0 stopped";
    EXPECT_EQ(model_loads(), loads_before + 1);
    for (int i = 0; i < n; ++i) {
      gst_element_set_state(pipelines[size_t(i)], GST_STATE_NULL);
      gst_object_unref(filters[size_t(i)]);
      gst_object_unref(sinks[size_t(i)]);
      gst_object_unref(pipelines[size_t(i)]);
    }
  }
}

}  // namespace
}  // namespace mirage::test

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
