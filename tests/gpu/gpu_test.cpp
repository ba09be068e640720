// The GPU suite (`./dev test --gpu`): diffusionfilter's model path on CUDA.
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

TEST(Gpu, TinyDiffusionOnCudaMatchesCpu) {
  std::string why;
  auto gpu = load_on("cuda", "tiny", &why);
  REQUIRE_CUDA(gpu, why);
  auto cpu = load_on("cpu", "tiny", &why);
  ASSERT_TRUE(cpu) << why;
  const FrameLayout l = FrameLayout::tight(PixelFormat::kI420, 64, 64);
  std::vector<uint8_t> in(l.size), out_gpu(l.size), out_cpu(l.size);
  for (size_t i = 0; i < in.size(); ++i) in[i] = uint8_t((i * 37) % 251);
  const InferenceParams params{"toon", 0.5, 3};
  ASSERT_TRUE(gpu->process(l, planes_at(l, in.data()), l, planes_at(l, out_gpu.data()), params).ok());
  ASSERT_TRUE(cpu->process(l, planes_at(l, in.data()), l, planes_at(l, out_cpu.data()), params).ok());
  int worst = 0;
  for (size_t i = 0; i < in.size(); ++i) worst = std::max(worst, std::abs(int(out_gpu[i]) - int(out_cpu[i])));
  EXPECT_LE(worst, 4) << "CUDA and CPU disagree by " << worst << " levels";
  EXPECT_EQ(gpu->device().rfind("cuda", 0), 0u) << gpu->device();
}

TEST(Gpu, ElementRunsOnCuda) {
  std::string why;
  auto probe = load_on("cuda", "tiny", &why);
  REQUIRE_CUDA(probe, why);
  GstElement* p = gst_parse_launch(("videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! diffusionfilter "
                                    "name=f device=cuda output-mode=processed model=" +
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
