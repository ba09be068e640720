// The GPU suite's element half (`./dev test --gpu`): diffusionfilter on
// CUDA in a real pipeline, with CUDA graphs. The core half, without
// GStreamer, is core_gpu_test.cpp.
// Every test skips, saying so, where libtorch sees no CUDA device (CI, and
// any machine without an NVIDIA GPU or with a CPU-only libtorch).
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "model_runner.h"
#include "sample_models.h"
#include "test_models.h"

namespace mirage {
namespace {

std::string models_dir() {
  const char* dir = std::getenv("MIRAGE_TEST_MODELS");
  return dir ? dir : "tests";
}

// Null, and the reason, when there is no CUDA device.
std::shared_ptr<ModelRunner> load_on(const std::string& device, const std::string& model, std::string* why) {
  ModelOptions options;
  options.path = models_dir() + "/" + model + ".pt";
  options.device = device;
  options.width = options.height = 64;
  return acquire_model(options, {}, why);
}

#define REQUIRE_CUDA(runner, why)                                                         \
  if (!(runner)) {                                                                        \
    if ((why).find("CUDA") != std::string::npos)                                          \
      GTEST_SKIP() << "no CUDA device here, GPU test skipped: " << (why);                 \
    FAIL() << (why);                                                                      \
  }

TEST(Gpu, ElementRunsOnCuda) {
  std::string why;
  auto probe = load_on("cuda", "tiny", &why);
  REQUIRE_CUDA(probe, why);
  GstElement* p = gst_parse_launch(("videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! diffusionfilter "
                                    "name=f device=cuda cuda-graph=on output-mode=processed model=" +
                                    models_dir() + "/tiny.pt ! fakesink")
                                       .c_str(),
                                   nullptr);
  ASSERT_TRUE(p);
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 120 * GST_SECOND, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  ASSERT_TRUE(m);
  EXPECT_EQ(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS);
  GstElement* f = gst_bin_get_by_name(GST_BIN(p), "f");
  guint64 processed = 0;
  g_object_get(f, "frames-processed", &processed, nullptr);
  EXPECT_GT(processed, 0u);
  gst_object_unref(f);
  gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
