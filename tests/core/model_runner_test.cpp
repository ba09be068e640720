// ModelRunner against small TorchScript models written by the test itself:
// the model contract checks and the pixel conversions of every format.
#include "model_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "sample_models.h"
#include "test_models.h"

namespace mirage {
namespace {

using test::kForward;
using test::kRedDetector;

struct Rgb {
  double r, g, b;
};

// Encodes a solid colour independently of the code under test (BT.601).
std::vector<uint8_t> solid(const FrameLayout& l, Rgb c) {
  std::vector<uint8_t> data(l.size, 0xAA);  // 0xAA marks padding
  auto byte = [](double v) { return uint8_t(std::lround(std::min(255.0, std::max(0.0, v)))); };
  const double y = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
  const double ys = l.matrix.full_range ? 255 : 219, yo = l.matrix.full_range ? 0 : 16;
  const double cs = l.matrix.full_range ? 255 : 224;
  const uint8_t Y = byte(yo + ys * y), U = byte(128 + cs * (c.b - y) / 1.772),
                V = byte(128 + cs * (c.r - y) / 1.402);
  for (int row = 0; row < l.height; ++row) {
    uint8_t* p = data.data() + l.offset[0] + size_t(l.stride[0]) * row;
    for (int x = 0; x < l.width; ++x) {
      switch (l.format) {
        case PixelFormat::kRGB: p[x * 3] = byte(c.r * 255); p[x * 3 + 1] = byte(c.g * 255); p[x * 3 + 2] = byte(c.b * 255); break;
        case PixelFormat::kRGBA: p[x * 4] = byte(c.r * 255); p[x * 4 + 1] = byte(c.g * 255); p[x * 4 + 2] = byte(c.b * 255); p[x * 4 + 3] = 255; break;
        case PixelFormat::kBGRx:
        case PixelFormat::kBGRA: p[x * 4] = byte(c.b * 255); p[x * 4 + 1] = byte(c.g * 255); p[x * 4 + 2] = byte(c.r * 255); p[x * 4 + 3] = 255; break;
        default: p[x] = Y; break;
      }
    }
  }
  for (int row = 0; l.is_yuv() && row < l.chroma_height(); ++row) {
    for (int x = 0; x < l.chroma_width(); ++x) {
      if (l.format == PixelFormat::kI420) {
        data[l.offset[1] + size_t(l.stride[1]) * row + x] = U;
        data[l.offset[2] + size_t(l.stride[2]) * row + x] = V;
      } else {
        data[l.offset[1] + size_t(l.stride[1]) * row + 2 * x] = U;
        data[l.offset[1] + size_t(l.stride[1]) * row + 2 * x + 1] = V;
      }
    }
  }
  return data;
}

// Largest difference between the pixel bytes of two frames (padding ignored).
int max_difference(const FrameLayout& l, const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int worst = 0;
  auto plane = [&](int i, int rows, int bytes_per_row) {
    for (int row = 0; row < rows; ++row)
      for (int x = 0; x < bytes_per_row; ++x) {
        size_t at = l.offset[i] + size_t(l.stride[i]) * row + x;
        worst = std::max(worst, std::abs(int(a[at]) - int(b[at])));
      }
  };
  switch (l.format) {
    case PixelFormat::kRGB: plane(0, l.height, l.width * 3); break;
    case PixelFormat::kI420: plane(0, l.height, l.width); plane(1, l.chroma_height(), l.chroma_width()); plane(2, l.chroma_height(), l.chroma_width()); break;
    case PixelFormat::kNV12: plane(0, l.height, l.width); plane(1, l.chroma_height(), l.chroma_width() * 2); break;
    default: plane(0, l.height, l.width * 4); break;
  }
  return worst;
}

class ModelRunnerTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& source) {
    std::string path = dir_.path() + "/" + name + ".pt";
    Status s = models::write_script(path, source);
    EXPECT_TRUE(s.ok()) << s.message();
    return path;
  }

  std::unique_ptr<ModelRunner> load(const std::string& path, std::string* error = nullptr, int size = 0) {
    ModelOptions options;
    options.path = path;
    options.device = "cpu";
    options.width = options.height = size;
    std::string local;
    return ModelRunner::load(options, InferenceParams{}, error ? error : &local);
  }

  std::string load_error(const std::string& path) {
    std::string error;
    EXPECT_FALSE(load(path, &error));
    return error;
  }

  test::TempDir dir_;
};

TEST_F(ModelRunnerTest, MissingFileIsAClearError) {
  std::string error = load_error(dir_.path() + "/absent.pt");
  EXPECT_NE(error.find("absent.pt"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

TEST_F(ModelRunnerTest, CorruptFileIsAClearError) {
  std::string path = dir_.path() + "/corrupt.pt";
  std::ofstream(path) << "this is not a zip archive, let alone TorchScript";
  std::string error = load_error(path);
  EXPECT_NE(error.find("corrupt.pt"), std::string::npos) << error;
  EXPECT_NE(error.find("not a loadable TorchScript file"), std::string::npos) << error;
}

TEST_F(ModelRunnerTest, TruncatedModelIsAClearError) {
  std::string good = dir_.path() + "/good.pt";
  ASSERT_TRUE(models::write_styles(good).ok());
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string path = dir_.path() + "/truncated.pt";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_NE(load_error(path).find("not a loadable TorchScript file"), std::string::npos);
}

TEST_F(ModelRunnerTest, WrongForwardSignatureIsAContractError) {
  std::string path = write("sig", "def forward(self, image: Tensor) -> Tensor:\n    return image\n");
  std::string error = load_error(path);
  EXPECT_NE(error.find("sig.pt"), std::string::npos) << error;
  EXPECT_NE(error.find("forward() must be"), std::string::npos) << error;
}

TEST_F(ModelRunnerTest, WrongOutputShapeIsAContractError) {
  std::string path = write("shape", std::string(kForward) + "    return image[:, :, 1:, :]\n");
  std::string error = load_error(path);
  EXPECT_NE(error.find("warm-up"), std::string::npos) << error;
  EXPECT_NE(error.find("expected [1, 3, 512, 512]"), std::string::npos) << error;
}

TEST_F(ModelRunnerTest, WrongStylesTypeIsAContractError) {
  std::string path = write("styles", std::string(kForward) +
                                         "    return image\n"
                                         "def styles(self) -> List[int]:\n    return [1, 2]\n");
  EXPECT_NE(load_error(path).find("styles() must return List[str]"), std::string::npos);
}

TEST_F(ModelRunnerTest, ModelThatRaisesInWarmUpIsRefused) {
  std::string path = write("raise", std::string(kForward) + "    raise RuntimeError(\"no weights\")\n");
  std::string error = load_error(path);
  EXPECT_NE(error.find("no weights"), std::string::npos) << error;
}

TEST_F(ModelRunnerTest, UnknownDeviceAndMissingCudaAreErrors) {
  std::string path = write("id", std::string(kForward) + "    return image\n");
  ModelOptions options;
  options.path = path;
  std::string error;
  options.device = "gpu";
  EXPECT_FALSE(ModelRunner::load(options, {}, &error));
  EXPECT_NE(error.find("unknown device 'gpu'"), std::string::npos) << error;
  options.device = "cuda:7";
  auto runner = ModelRunner::load(options, {}, &error);
  // Either CUDA is absent (CI) or device 7 does not exist.
  EXPECT_FALSE(runner);
  EXPECT_NE(error.find("cuda:7"), std::string::npos) << error;
}

// Precision and CUDA-graph options on the CPU: names checked, the model's
// own precision reported, a conversion done (fp32 <- fp32 is none), an
// AOTInductor package refused with the reason where the libtorch cannot
// load one, and cuda-graph=on said to have no effect here.
TEST_F(ModelRunnerTest, PrecisionAndCudaGraphOptions) {
  for (const char* ok : {"auto", "fp32", "fp16"}) EXPECT_TRUE(is_valid_precision(ok)) << ok;
  for (const char* bad : {"", "fp8", "FP16", "half"}) EXPECT_FALSE(is_valid_precision(bad)) << bad;
  for (const char* ok : {"auto", "on", "off"}) EXPECT_TRUE(is_valid_cuda_graph_mode(ok)) << ok;
  for (const char* bad : {"", "yes", "ON"}) EXPECT_FALSE(is_valid_cuda_graph_mode(bad)) << bad;

  const std::string tiny = dir_.path() + "/tiny.pt";
  models::TinyDiffusionConfig config;
  config.size = 32;
  config.channels = 4;
  ASSERT_TRUE(models::write_tiny_diffusion(tiny, config).ok());
  ModelOptions options;
  options.path = tiny;
  options.device = "cpu";
  std::string error;
  auto runner = ModelRunner::load(options, {}, &error);
  ASSERT_TRUE(runner) << error;
  EXPECT_EQ(runner->precision(), "fp32");
  EXPECT_EQ(runner->format(), "torchscript");
  EXPECT_FALSE(runner->cuda_frame_path());
  EXPECT_FALSE(runner->cuda_graphs());
  EXPECT_FALSE(runner->cuda_memory().available);
  EXPECT_TRUE(runner->take_notices().empty());

  options.precision = "fp32";
  options.cuda_graph = "on";
  runner = ModelRunner::load(options, {}, &error);
  ASSERT_TRUE(runner) << error;
  auto notices = runner->take_notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("CUDA graphs need a CUDA device"), std::string::npos) << notices[0];
  EXPECT_TRUE(runner->take_notices().empty());  // each once

  options.precision = "fp8";
  EXPECT_FALSE(ModelRunner::load(options, {}, &error));
  EXPECT_NE(error.find("unknown precision 'fp8'"), std::string::npos) << error;
  options.precision = "auto";
  options.cuda_graph = "sometimes";
  EXPECT_FALSE(ModelRunner::load(options, {}, &error));
  EXPECT_NE(error.find("unknown cuda-graph mode 'sometimes'"), std::string::npos) << error;

  // fp16 on this CPU: converted, then either it runs (newer libtorch) or the
  // warm-up says why it cannot, naming the precision.
  options.cuda_graph = "auto";
  options.precision = "fp16";
  runner = ModelRunner::load(options, {}, &error);
  if (runner) EXPECT_EQ(runner->precision(), "fp16");
  else EXPECT_NE(error.find("fp16"), std::string::npos) << error;

  const std::string package = dir_.path() + "/model.pt2";
  std::ofstream(package) << "not a package";
  options.path = package;
  options.precision = "auto";
  EXPECT_FALSE(ModelRunner::load(options, {}, &error));
  if (!aoti_packages_available())
    EXPECT_NE(error.find("cannot load AOTInductor packages"), std::string::npos) << error;
  else
    EXPECT_NE(error.find("not a loadable AOTInductor package"), std::string::npos) << error;
}

TEST_F(ModelRunnerTest, DeviceNames) {
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:12"}) EXPECT_TRUE(is_valid_device(ok)) << ok;
  for (const char* bad : {"", "gpu", "cuda:", "cuda:x", "CPU", "cpu "}) EXPECT_FALSE(is_valid_device(bad)) << bad;
}

TEST_F(ModelRunnerTest, ReadsStylesAndDefaultSize) {
  std::string path = write("meta", std::string(kForward) +
                                       "    return image\n"
                                       "def styles(self) -> List[str]:\n    return [\"a\", \"b\"]\n"
                                       "def default_size(self) -> Tuple[int, int]:\n    return (64, 32)\n");
  auto runner = load(path);
  ASSERT_TRUE(runner);
  EXPECT_EQ(runner->styles(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(runner->width(), 64);
  EXPECT_EQ(runner->height(), 32);
  EXPECT_EQ(runner->device(), "cpu");
  auto resized = load(path, nullptr, 48);
  ASSERT_TRUE(resized);
  EXPECT_EQ(resized->width(), 48);
}

// Every format, in and out: a solid red frame must reach the model as red
// and the model's red must come back encoded as red in the same format.
TEST_F(ModelRunnerTest, ColourSurvivesEveryFormat) {
  auto runner = load(write("red", kRedDetector), nullptr, 16);
  ASSERT_TRUE(runner);
  for (PixelFormat f : {PixelFormat::kRGB, PixelFormat::kRGBA, PixelFormat::kBGRx,
                        PixelFormat::kBGRA, PixelFormat::kI420, PixelFormat::kNV12}) {
    FrameLayout l = FrameLayout::tight(f, 30, 22);
    std::vector<uint8_t> in = solid(l, {1, 0, 0});
    std::vector<uint8_t> out(l.size, 0xAA);
    Status s = runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), {});
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_LE(max_difference(l, in, out), 2) << to_string(f);
  }
}

TEST_F(ModelRunnerTest, IdentityRoundTripWithScaling) {
  auto runner = load(write("id", std::string(kForward) + "    return image\n"), nullptr, 64);
  ASSERT_TRUE(runner);
  for (PixelFormat f : {PixelFormat::kRGB, PixelFormat::kBGRA, PixelFormat::kI420, PixelFormat::kNV12}) {
    // Smooth content survives a 128x96 -> 64x64 -> 128x96 trip closely.
    FrameLayout l = FrameLayout::tight(f, 128, 96);
    std::vector<uint8_t> in = solid(l, {0.2, 0.6, 0.4});
    std::vector<uint8_t> out(l.size, 0);
    ASSERT_TRUE(runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), {}).ok());
    EXPECT_LE(max_difference(l, in, out), 2) << to_string(f);
  }
}

TEST_F(ModelRunnerTest, RespectsStridesAndLeavesPaddingAlone) {
  auto runner = load(write("id", std::string(kForward) + "    return image\n"), nullptr, 16);
  ASSERT_TRUE(runner);
  FrameLayout in_l = FrameLayout::tight(PixelFormat::kRGB, 10, 6);
  FrameLayout out_l = in_l;
  out_l.stride[0] = 64;  // wider rows than needed
  out_l.size = 64 * 6;
  std::vector<uint8_t> in = solid(in_l, {0, 0, 1});
  std::vector<uint8_t> out(out_l.size, 0xAA);
  ASSERT_TRUE(runner->process(in_l, planes_at(in_l, in.data()), out_l, planes_at(out_l, out.data()), {}).ok());
  for (int row = 0; row < 6; ++row) {
    const uint8_t* p = out.data() + 64 * row;
    EXPECT_EQ(p[2], 255);        // blue
    EXPECT_EQ(p[30], 0xAA);      // padding after 10 pixels untouched
  }
}

TEST_F(ModelRunnerTest, FullRangeAndLimitedRangeDiffer) {
  auto runner = load(write("id", std::string(kForward) + "    return image\n"), nullptr, 16);
  ASSERT_TRUE(runner);
  for (bool full : {false, true}) {
    FrameLayout l = FrameLayout::tight(PixelFormat::kI420, 16, 16, YuvMatrix{0.299, 0.114, full});
    std::vector<uint8_t> in = solid(l, {1, 1, 1});
    std::vector<uint8_t> out(l.size, 0);
    ASSERT_TRUE(runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), {}).ok());
    EXPECT_NEAR(out[0], full ? 255 : 235, 1);
  }
}

TEST_F(ModelRunnerTest, InferenceErrorIsAStatusAndTheRunnerGoesOn) {
  auto runner = load(write("boom", std::string(kForward) +
                                       "    if style == \"boom\":\n"
                                       "        raise RuntimeError(\"boom style\")\n"
                                       "    return image\n"),
                     nullptr, 16);
  ASSERT_TRUE(runner);
  FrameLayout l = FrameLayout::tight(PixelFormat::kRGB, 16, 16);
  std::vector<uint8_t> in = solid(l, {0, 1, 0}), out(l.size, 0);
  InferenceParams boom{"boom", 0.5, 0};
  Status s = runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), boom);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("boom style"), std::string::npos) << s.message();
  FrameTiming timing;
  EXPECT_TRUE(runner->process(l, planes_at(l, in.data()), l, planes_at(l, out.data()), {}, &timing).ok());
  EXPECT_LE(timing.model_ms, timing.total_ms);
}

TEST_F(ModelRunnerTest, MismatchedFramesAreRefused) {
  auto runner = load(write("id", std::string(kForward) + "    return image\n"), nullptr, 16);
  ASSERT_TRUE(runner);
  FrameLayout a = FrameLayout::tight(PixelFormat::kRGB, 16, 16);
  FrameLayout b = FrameLayout::tight(PixelFormat::kRGB, 8, 16);
  std::vector<uint8_t> in(a.size), out(a.size);
  EXPECT_FALSE(runner->process(a, planes_at(a, in.data()), b, planes_at(b, out.data()), {}).ok());
}

}  // namespace
}  // namespace mirage
