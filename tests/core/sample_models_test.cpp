// The sample models that mirage-model writes: contract, styles that really
// transform the image, a deterministic diffusion loop.
#include "sample_models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model_runner.h"
#include "test_models.h"

namespace mirage {
namespace {

// A 64x64 RGB test card: gradients and a bright square, so every style has
// edges, colours and flat areas to work on.
std::vector<uint8_t> test_card(const FrameLayout& l) {
  std::vector<uint8_t> data(l.size);
  for (int y = 0; y < l.height; ++y)
    for (int x = 0; x < l.width; ++x) {
      uint8_t* p = data.data() + size_t(l.stride[0]) * y + 3 * x;
      bool square = x > 20 && x < 44 && y > 20 && y < 44;
      p[0] = square ? 250 : uint8_t(x * 4);
      p[1] = square ? 240 : uint8_t(y * 4);
      p[2] = square ? 30 : 128;
    }
  return data;
}

double mean_abs_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
  return sum / double(a.size()) / 255.0;
}

class SampleModels : public ::testing::Test {
 protected:
  std::unique_ptr<ModelRunner> load(const std::string& path) {
    ModelOptions options;
    options.path = path;
    options.device = "cpu";
    options.width = options.height = 64;
    std::string error;
    auto runner = ModelRunner::load(options, {}, &error);
    EXPECT_TRUE(runner) << error;
    return runner;
  }

  std::vector<uint8_t> run(ModelRunner& runner, const InferenceParams& params) {
    std::vector<uint8_t> in = test_card(layout_), out(layout_.size);
    Status s = runner.process(layout_, planes_at(layout_, in.data()), layout_,
                              planes_at(layout_, out.data()), params);
    EXPECT_TRUE(s.ok()) << s.message();
    return out;
  }

  test::TempDir dir_;
  FrameLayout layout_ = FrameLayout::tight(PixelFormat::kRGB, 64, 64);
};

TEST_F(SampleModels, StylesModelListsAndAppliesEveryStyle) {
  std::string path = dir_.path() + "/styles.pt";
  ASSERT_TRUE(models::write_styles(path).ok());
  auto runner = load(path);
  ASSERT_TRUE(runner);
  ASSERT_GE(runner->styles().size(), 6u);
  EXPECT_EQ(runner->styles(), models::style_names());
  const std::vector<uint8_t> original = test_card(layout_);
  std::vector<std::vector<uint8_t>> outputs;
  for (const std::string& style : runner->styles()) {
    std::vector<uint8_t> out = run(*runner, {style, 1.0, 0});
    // Visibly transformed: on average more than 5% of the range away.
    EXPECT_GT(mean_abs_difference(out, original), 0.05) << style;
    for (size_t i = 0; i < outputs.size(); ++i)
      EXPECT_GT(mean_abs_difference(out, outputs[i]), 0.02) << style << " looks like " << runner->styles()[i];
    outputs.push_back(out);
  }
  // strength 0 leaves the image alone; an unknown style is the identity.
  EXPECT_LT(mean_abs_difference(run(*runner, {"toon", 0.0, 0}), original), 0.01);
  EXPECT_LT(mean_abs_difference(run(*runner, {"no-such-style", 1.0, 0}), original), 0.01);
}

TEST_F(SampleModels, TinyDiffusionIsDeterministicPerSeed) {
  std::string path = dir_.path() + "/tiny.pt";
  models::TinyDiffusionConfig config;
  config.channels = 8;
  config.size = 64;
  ASSERT_TRUE(models::write_tiny_diffusion(path, config).ok());
  auto runner = load(path);
  ASSERT_TRUE(runner);
  EXPECT_EQ(runner->styles(), models::style_names());
  const std::vector<uint8_t> original = test_card(layout_);
  auto a = run(*runner, {"toon", 0.5, 1});
  auto b = run(*runner, {"toon", 0.5, 1});
  auto other_seed = run(*runner, {"toon", 0.5, 2});
  auto other_style = run(*runner, {"sepia", 0.5, 1});
  EXPECT_EQ(a, b);
  EXPECT_GT(mean_abs_difference(a, other_seed), 0.01);
  EXPECT_GT(mean_abs_difference(a, other_style), 0.001);
  EXPECT_GT(mean_abs_difference(a, original), 0.01);
  // More strength, more noise added, further from the input.
  auto weak = run(*runner, {"toon", 0.1, 1});
  EXPECT_LT(mean_abs_difference(weak, original), mean_abs_difference(a, original));
  EXPECT_EQ(run(*runner, {"toon", 0.0, 1}), original);
}

TEST_F(SampleModels, DelayModelIsAnIdentityThatTakesItsTime) {
  std::string path = dir_.path() + "/delay.pt";
  ASSERT_TRUE(models::write_delay(path, 30).ok());
  auto runner = load(path);
  ASSERT_TRUE(runner);
  EXPECT_GE(runner->warmup_ms(), 30.0);
  std::vector<uint8_t> in = test_card(layout_), out(layout_.size);
  FrameTiming timing;
  ASSERT_TRUE(runner->process(layout_, planes_at(layout_, in.data()), layout_,
                              planes_at(layout_, out.data()), {}, &timing).ok());
  EXPECT_GE(timing.model_ms, 30.0);  // a sleep never ends early
  EXPECT_LT(mean_abs_difference(in, out), 0.005);
  EXPECT_FALSE(models::write_delay(dir_.path() + "/neg.pt", -1).ok());
}

}  // namespace
}  // namespace mirage
