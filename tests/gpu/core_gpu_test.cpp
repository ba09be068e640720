// The GPU suite's GStreamer-free half (`./dev test --gpu`; on the GPU
// machine, which has no GStreamer, the whole suite): the core's CUDA frame
// path. Every test skips, saying so, where libtorch sees no CUDA device or
// the core was built without the CUDA frame path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <thread>
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

std::shared_ptr<ModelRunner> load_on(const std::string& device, const std::string& path, std::string* why,
                                     const std::string& graph = "auto", const std::string& precision = "auto",
                                     int size = 64) {
  ModelOptions options;
  options.path = path;
  options.device = device;
  options.cuda_graph = graph;
  options.precision = precision;
  options.width = options.height = size;
  return acquire_model(options, {}, why);
}

#define REQUIRE_CUDA(runner, why)                                                         \
  if (!(runner)) {                                                                        \
    if ((why).find("CUDA") != std::string::npos)                                          \
      GTEST_SKIP() << "no CUDA device here, GPU test skipped: " << (why);                 \
    FAIL() << (why);                                                                      \
  }
#define REQUIRE_CUDA_PATH(runner)                                                             \
  if (!(runner)->cuda_frame_path())                                                           \
    GTEST_SKIP() << "this core was built without the CUDA frame path (a libtorch without CUDA)";

std::vector<uint8_t> pattern(const FrameLayout& l, int salt = 0) {
  std::vector<uint8_t> in(l.size);
  for (size_t i = 0; i < in.size(); ++i) in[i] = uint8_t((i * 37 + size_t(salt) * 11) % 251);
  return in;
}

int worst_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  return worst;
}

// The CUDA frame path (conversion and scaling on the GPU, graphs) gives the
// CPU path's pixels, for every YUV and RGB layout the element negotiates.
TEST(GpuCore, CudaFramePathMatchesTheCpu) {
  std::string why;
  auto gpu = load_on("cuda", models_dir() + "/tiny.pt", &why);
  REQUIRE_CUDA(gpu, why);
  REQUIRE_CUDA_PATH(gpu);
  auto cpu = load_on("cpu", models_dir() + "/tiny.pt", &why);
  ASSERT_TRUE(cpu) << why;
  for (PixelFormat f : {PixelFormat::kI420, PixelFormat::kNV12, PixelFormat::kRGB, PixelFormat::kBGRx}) {
    const FrameLayout l = FrameLayout::tight(f, 96, 72);
    auto in = pattern(l);
    std::vector<uint8_t> out_gpu(l.size), out_cpu(l.size);
    const InferenceParams params{"toon", 0.5, 3};
    for (int round = 0; round < 3; ++round)  // eager, then captured, then replayed
      ASSERT_TRUE(gpu->process(l, planes_at(l, in.data()), l, planes_at(l, out_gpu.data()), params).ok());
    ASSERT_TRUE(cpu->process(l, planes_at(l, in.data()), l, planes_at(l, out_cpu.data()), params).ok());
    EXPECT_LE(worst_difference(out_gpu, out_cpu), 4) << to_string(f);
  }
  EXPECT_EQ(gpu->device().rfind("cuda", 0), 0u) << gpu->device();
  EXPECT_TRUE(gpu->cuda_graphs());
  EXPECT_GT(gpu->cuda_memory().graph_replays, 0u);
}

// After warm-up a frame allocates nothing: with graphs, not even from the
// caching allocator's cache; without, no cudaMalloc. 1,000 frames each.
TEST(GpuCore, NoAllocationPerFrameAfterWarmUp) {
  for (const char* graph : {"on", "off"}) {
    std::string why;
    auto runner = load_on("cuda", models_dir() + "/tiny.pt", &why, graph, "auto", 128);
    REQUIRE_CUDA(runner, why);
    REQUIRE_CUDA_PATH(runner);
    const FrameLayout l = FrameLayout::tight(PixelFormat::kNV12, 1280, 720);
    auto in = pattern(l);
    std::vector<uint8_t> out(l.size);
    const InferenceParams params{"toon", 0.5, 1};
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), params).ok());
    const CudaMemory before = runner->cuda_memory();
    for (int i = 0; i < 1000; ++i)
      ASSERT_TRUE(runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), params).ok());
    const CudaMemory after = runner->cuda_memory();
    EXPECT_EQ(after.segments, before.segments) << graph << ": cudaMalloc during the 1,000 frames";
    if (std::string(graph) == "on") {
      EXPECT_EQ(after.allocation_requests, before.allocation_requests) << "allocations while replaying graphs";
      EXPECT_EQ(after.graph_replays - before.graph_replays, 1000u);
    } else {
      EXPECT_FALSE(runner->cuda_graphs());
      EXPECT_EQ(after.graph_replays, 0u);
    }
  }
}

// A model that cannot be captured (it reads a value back to the host in
// forward) runs without graphs, right, with one notice saying why.
TEST(GpuCore, AModelThatCannotBeCapturedRunsEagerWithOneNotice) {
  test::TempDir dir;
  const std::string path = dir.path() + "/sync.pt";
  ASSERT_TRUE(models::write_script(path, std::string(test::kForward) +
                                             "    if float(image.mean()) > 2.0:\n"
                                             "        return image * 0.0\n"
                                             "    return image\n")
                  .ok());
  std::string why;
  auto runner = load_on("cuda", path, &why, "on");
  REQUIRE_CUDA(runner, why);
  REQUIRE_CUDA_PATH(runner);
  const FrameLayout l = FrameLayout::tight(PixelFormat::kRGB, 64, 64);
  auto in = pattern(l);
  std::vector<uint8_t> out(l.size);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), {}).ok());
  EXPECT_LE(worst_difference(in, out), 2);  // identity
  auto notices = runner->take_notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("CUDA graph capture failed"), std::string::npos) << notices[0];
  EXPECT_FALSE(runner->cuda_graphs());
  EXPECT_TRUE(runner->take_notices().empty());
}

// fp16 within 2 % (relative L2) of fp32 on the same inputs.
TEST(GpuCore, Fp16IsCloseToFp32) {
  std::string why;
  auto fp32 = load_on("cuda", models_dir() + "/tiny.pt", &why, "auto", "fp32");
  REQUIRE_CUDA(fp32, why);
  REQUIRE_CUDA_PATH(fp32);
  auto fp16 = load_on("cuda", models_dir() + "/tiny.pt", &why, "auto", "fp16");
  ASSERT_TRUE(fp16) << why;
  EXPECT_EQ(fp16->precision(), "fp16");
  const FrameLayout l = FrameLayout::tight(PixelFormat::kRGB, 64, 64);
  auto in = pattern(l);
  std::vector<uint8_t> a(l.size), b(l.size);
  ASSERT_TRUE(fp32->process(l, planes_at(l, in.data()), l, planes_at(l, a.data()), {"toon", 0.6, 2}).ok());
  ASSERT_TRUE(fp16->process(l, planes_at(l, in.data()), l, planes_at(l, b.data()), {"toon", 0.6, 2}).ok());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += std::pow(double(a[i]) - double(b[i]), 2);
    norm += std::pow(double(a[i]), 2);
  }
  EXPECT_LT(std::sqrt(diff / norm), 0.02);
}

// Four streams on one CUDA model at once: batches form, and every stream
// gets its own frames back (no mix-up between batch positions).
TEST(GpuCore, BatchedStreamsKeepTheirOwnFrames) {
  std::string why;
  auto probe = load_on("cuda", models_dir() + "/identity.pt", &why);
  REQUIRE_CUDA(probe, why);
  REQUIRE_CUDA_PATH(probe);
  const FrameLayout l = FrameLayout::tight(PixelFormat::kRGB, 64, 64);
  std::vector<int> worst(4, 0);
  std::vector<std::thread> threads;
  for (int s = 0; s < 4; ++s)
    threads.emplace_back([&, s] {
      auto runner = load_on("cuda", models_dir() + "/identity.pt", &why);
      std::vector<uint8_t> in(l.size, uint8_t(40 + 50 * s)), out(l.size);
      for (int i = 0; i < 50; ++i) {
        if (!runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), {}, nullptr, 4).ok()) {
          worst[size_t(s)] = 255;
          return;
        }
        worst[size_t(s)] = std::max(worst[size_t(s)], worst_difference(in, out));
      }
    });
  for (auto& t : threads) t.join();
  for (int s = 0; s < 4; ++s) EXPECT_LE(worst[size_t(s)], 2) << "stream " << s;
  EXPECT_GE(probe->batch_stats().largest, 2);
}

}  // namespace
}  // namespace mirage
