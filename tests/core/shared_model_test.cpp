// Many streams on one model: the process-wide cache (one load per file,
// device and size), the one model thread serving concurrent callers, and
// batching through forward_batch(). Every caller marks its frames with its
// own colour and settings; a frame must come back from its own input only.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "model_runner.h"
#include "sample_models.h"
#include "test_models.h"

namespace mirage {
namespace {

constexpr int kSize = 64;

std::vector<uint8_t> solid(const FrameLayout& l, uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> data(l.size);
  for (size_t i = 0; i + 2 < data.size(); i += 3) data[i] = r, data[i + 1] = g, data[i + 2] = b;
  return data;
}

int max_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  return worst;
}

class SharedModel : public ::testing::Test {
 protected:
  ModelOptions options(const std::string& path, int size = kSize) {
    ModelOptions o;
    o.path = path;
    o.device = "cpu";
    o.width = o.height = size;
    return o;
  }
  std::shared_ptr<ModelRunner> acquire(const ModelOptions& o) {
    std::string error;
    auto runner = acquire_model(o, {}, &error);
    EXPECT_TRUE(runner) << error;
    return runner;
  }
  Status run(ModelRunner& runner, const std::vector<uint8_t>& in, std::vector<uint8_t>* out,
             const InferenceParams& params, int max_batch) {
    out->assign(layout_.size, 0);
    return runner.process(layout_, planes_at(layout_, const_cast<uint8_t*>(in.data())), layout_,
                          planes_at(layout_, out->data()), params, nullptr, max_batch);
  }

  test::TempDir dir_;
  FrameLayout layout_ = FrameLayout::tight(PixelFormat::kRGB, kSize, kSize);
};

TEST_F(SharedModel, OneLoadPerFileDeviceAndSize) {
  const std::string path = dir_.path() + "/styles.pt";
  ASSERT_TRUE(models::write_styles(path).ok());
  const uint64_t before = model_loads();
  auto a = acquire(options(path));
  auto b = acquire(options(path));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(model_loads(), before + 1);
  EXPECT_TRUE(a->batched());
  auto other_size = acquire(options(path, 32));  // another size is another model
  EXPECT_NE(other_size.get(), a.get());
  EXPECT_EQ(model_loads(), before + 2);
  a.reset();
  b.reset();
  auto again = acquire(options(path));  // the last holder let go: loaded anew
  EXPECT_EQ(model_loads(), before + 3);
  std::string error;
  EXPECT_FALSE(acquire_model(options(dir_.path() + "/missing.pt"), {}, &error));
  EXPECT_NE(error.find("missing.pt"), std::string::npos) << error;
}

// Four streams on a 40 ms model (fixed cost per call): batches form, and
// every output is its own stream's colour.
void run_streams(SharedModel* test, ModelRunner& runner, int max_batch, int frames_each,
                 std::atomic<int>* wrong) {
  std::vector<std::thread> streams;
  for (int s = 0; s < 4; ++s)
    streams.emplace_back([&, s] {
      const uint8_t r = uint8_t(40 + 60 * s), g = uint8_t(200 - 50 * s), b = uint8_t(17 * s);
      FrameLayout l = FrameLayout::tight(PixelFormat::kRGB, kSize, kSize);
      const auto in = solid(l, r, g, b);
      std::vector<uint8_t> out(l.size);
      for (int i = 0; i < frames_each; ++i) {
        Status st = runner.process(l, planes_at(l, const_cast<uint8_t*>(in.data())), l, planes_at(l, out.data()),
                                   {"", 1.0, s}, nullptr, max_batch);
        if (!st.ok() || max_difference(in, out) > 2) (*wrong)++;
      }
    });
  for (auto& t : streams) t.join();
  (void)test;
}

TEST_F(SharedModel, ConcurrentStreamsBatchAndKeepTheirOwnFrames) {
  const std::string path = dir_.path() + "/delay40.pt";
  ASSERT_TRUE(models::write_delay(path, 40).ok());
  auto runner = acquire(options(path));
  ASSERT_TRUE(runner && runner->batched());
  std::atomic<int> wrong{0};
  run_streams(this, *runner, 4, 15, &wrong);
  EXPECT_EQ(wrong, 0);
  const BatchStats stats = runner->batch_stats();
  EXPECT_EQ(stats.frames, 60u);
  EXPECT_GE(stats.largest, 2);
  EXPECT_LE(stats.largest, 4);
  EXPECT_LT(stats.calls, 40u) << "4 waiting streams should share calls";
  // By size: as many calls and frames as the totals say, none larger than the largest.
  ASSERT_EQ(stats.calls_by_size.size(), size_t(stats.largest) + 1);
  EXPECT_EQ(stats.calls_by_size[0], 0u);
  uint64_t calls = 0, frames = 0;
  for (size_t n = 0; n < stats.calls_by_size.size(); ++n) {
    calls += stats.calls_by_size[n];
    frames += n * stats.calls_by_size[n];
  }
  EXPECT_EQ(calls, stats.calls);
  EXPECT_EQ(frames, stats.frames);
  EXPECT_GT(stats.calls_by_size.back(), 0u);
}

// A holder that sends no frames (the daemon's probe element, a stream whose
// publisher is silent) is not waited for: a stream sending alone never has
// its call held back for it (each such wait costs up to 20 ms a frame).
TEST_F(SharedModel, AHolderThatSendsNoFramesIsNotWaitedFor) {
  const std::string path = dir_.path() + "/delay40.pt";
  ASSERT_TRUE(models::write_delay(path, 40).ok());
  auto runner = acquire(options(path));
  auto idle = acquire(options(path));  // holds the same model, sends nothing
  ASSERT_TRUE(runner && idle && runner.get() == idle.get() && runner->batched());
  const BatchStats before = runner->batch_stats();
  const auto in = solid(layout_, 90, 120, 30);
  std::vector<uint8_t> out;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(run(*runner, in, &out, {}, 4).ok());
  const BatchStats after = runner->batch_stats();
  EXPECT_EQ(after.frames - before.frames, 10u);
  EXPECT_EQ(after.waits - before.waits, 0u) << "calls were held back for a holder that sends no frames";
}

TEST_F(SharedModel, MaxBatchOneRunsFramesOneByOne) {
  const std::string path = dir_.path() + "/delay20.pt";
  ASSERT_TRUE(models::write_delay(path, 20).ok());
  auto runner = acquire(options(path));
  ASSERT_TRUE(runner);
  std::atomic<int> wrong{0};
  run_streams(this, *runner, 1, 8, &wrong);
  EXPECT_EQ(wrong, 0);
  const BatchStats stats = runner->batch_stats();
  EXPECT_EQ(stats.frames, 32u);
  EXPECT_EQ(stats.calls, 32u);
  EXPECT_EQ(stats.largest, 1);
  EXPECT_EQ(stats.calls_by_size, (std::vector<uint64_t>{0, 32}));
}

// Per-stream settings inside a batch: eight streams with their own colour,
// style, strength and seed through tiny-diffusion, concurrently (batched)
// and alone; the results agree to rounding.
TEST_F(SharedModel, BatchedTinyDiffusionEqualsOneByOne) {
  const std::string path = dir_.path() + "/tiny.pt";
  models::TinyDiffusionConfig config;
  config.channels = 8;
  config.size = kSize;
  ASSERT_TRUE(models::write_tiny_diffusion(path, config).ok());
  auto runner = acquire(options(path));
  ASSERT_TRUE(runner && runner->batched());
  const auto& styles = models::style_names();
  struct Stream {
    std::vector<uint8_t> in, alone, batched;
    InferenceParams params;
  };
  std::vector<Stream> streams(8);
  for (size_t s = 0; s < streams.size(); ++s) {
    streams[s].in = solid(layout_, uint8_t(30 * s), uint8_t(255 - 30 * s), uint8_t(90 + 10 * s));
    streams[s].params = {styles[s % styles.size()], 0.3 + 0.08 * double(s), int64_t(s * 7)};
    ASSERT_TRUE(run(*runner, streams[s].in, &streams[s].alone, streams[s].params, 1).ok());
  }
  const uint64_t calls_before = runner->batch_stats().calls;
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> threads;
    for (auto& s : streams)
      threads.emplace_back([&] { EXPECT_TRUE(run(*runner, s.in, &s.batched, s.params, 8).ok()); });
    for (auto& t : threads) t.join();
    for (size_t s = 0; s < streams.size(); ++s)
      EXPECT_LE(max_difference(streams[s].alone, streams[s].batched), 2) << "stream " << s << " round " << round;
  }
  const BatchStats stats = runner->batch_stats();
  EXPECT_GE(stats.largest, 2);
  EXPECT_LT(stats.calls - calls_before, 40u);
}

// A frame whose inference fails inside a batch fails alone.
TEST_F(SharedModel, AFailingFrameDoesNotFailTheOthersInItsBatch) {
  const std::string path = dir_.path() + "/picky.pt";
  ASSERT_TRUE(models::write_script(path, R"(
def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:
    if style == "explode":
        raise RuntimeError("this style explodes")
    return mirage.delay(image, 30)

def forward_batch(self, images: Tensor, styles: List[str], strengths: List[float], seeds: List[int]) -> Tensor:
    for s in styles:
        if s == "explode":
            raise RuntimeError("this style explodes")
    return mirage.delay(images, 30)
)").ok());
  auto runner = acquire(options(path));
  ASSERT_TRUE(runner && runner->batched());
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < 4; ++s)
    threads.emplace_back([&, s] {
      FrameLayout l = FrameLayout::tight(PixelFormat::kRGB, kSize, kSize);
      const auto in = solid(l, 10, 20, 30);
      std::vector<uint8_t> out(l.size);
      for (int i = 0; i < 6; ++i) {
        Status st = runner->process(l, planes_at(l, const_cast<uint8_t*>(in.data())), l, planes_at(l, out.data()),
                                    {s == 0 ? "explode" : "calm", 0.5, 0}, nullptr, 4);
        if (s == 0) {
          failed += !st.ok() && st.message().find("explodes") != std::string::npos;
        } else {
          ok += st.ok();
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed, 6);
  EXPECT_EQ(ok, 18);
}

// A forward_batch() of the wrong type is a contract error at load.
TEST_F(SharedModel, WrongForwardBatchSignatureIsRefused) {
  const std::string path = dir_.path() + "/wrong.pt";
  ASSERT_TRUE(models::write_script(path, R"(
def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:
    return image

def forward_batch(self, images: Tensor, style: str) -> Tensor:
    return images
)").ok());
  std::string error;
  EXPECT_FALSE(ModelRunner::load(options(path), {}, &error));
  EXPECT_NE(error.find("forward_batch() must be"), std::string::npos) << error;
}

}  // namespace
}  // namespace mirage
