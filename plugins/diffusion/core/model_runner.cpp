// The only translation unit of the plugin that includes libtorch.
#include "model_runner.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/library.h>
#include <torch/script.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

namespace mirage {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// mirage::delay(x, ms) returns x after sleeping |ms| milliseconds: the cost
// model of `mirage-model delay`. Registered here so every process that can
// run models (the plugin, the tools, the tests) knows it.
at::Tensor delay_op(const at::Tensor& x, int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return x;
}

TORCH_LIBRARY(mirage, m) {
  // CONSERVATIVE: the sleep is the point, so the JIT must not remove or
  // reorder the call.
  m.def(torch::schema("mirage::delay(Tensor x, int ms) -> Tensor",
                      c10::AliasAnalysisKind::CONSERVATIVE),
        &delay_op);
}

// First line of a libtorch message: the rest is a C++ or TorchScript
// backtrace that helps nobody reading a GStreamer error.
std::string first_line(const std::string& what) {
  auto end = what.find('\n');
  std::string line = what.substr(0, end);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line.empty() ? what : line;
}

// The message of a TorchScript exception: the line that names the error
// ("RuntimeError: ..."), else the first line.
std::string describe(const std::exception& e) {
  std::string what = e.what();
  std::istringstream lines(what);
  std::string line, last_error;
  while (std::getline(lines, line)) {
    if (line.rfind("RuntimeError:", 0) == 0 || line.rfind("Exception:", 0) == 0 ||
        line.rfind("ValueError:", 0) == 0)
      last_error = line;
  }
  return last_error.empty() ? first_line(what) : last_error;
}

void configure_threads_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // libtorch defaults to one intra-op thread on Debian; use the cores
    // unless the user chose with OMP_NUM_THREADS.
    if (std::getenv("OMP_NUM_THREADS") == nullptr) {
      unsigned n = std::thread::hardware_concurrency();
      if (n > 0) at::set_num_threads(int(n));
    }
  });
}

// A view of one plane as a [rows, cols, channels] uint8 tensor (no copy).
at::Tensor wrap(uint8_t* plane, int rows, int cols, int channels, int stride) {
  return torch::from_blob(plane, {rows, cols, channels},
                          {stride, channels, 1}, torch::kUInt8);
}

// Resizes a float NCHW tensor with bilinear filtering, antialiased when
// shrinking so that downscaled camera frames do not alias.
at::Tensor resize(const at::Tensor& x, int height, int width) {
  if (x.size(2) == height && x.size(3) == width) return x;
  const bool shrinking = height < x.size(2) || width < x.size(3);
  if (shrinking) return at::_upsample_bilinear2d_aa(x, {height, width}, false);
  return at::upsample_bilinear2d(x, {height, width}, false);
}

struct YuvScale {
  double y_offset, y_scale, c_scale;
};

YuvScale yuv_scale(const YuvMatrix& m) {
  return m.full_range ? YuvScale{0.0, 255.0, 255.0} : YuvScale{16.0, 219.0, 224.0};
}

at::Tensor to_byte(const at::Tensor& x) { return x.round().clamp(0, 255).to(torch::kUInt8); }

}  // namespace

bool is_valid_device(const std::string& device) {
  static const std::regex pattern("auto|cpu|cuda|cuda:[0-9]{1,2}");
  return std::regex_match(device, pattern);
}

struct ModelRunner::Impl {
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  std::string device_name;
  std::vector<std::string> styles;
  int width = 512;
  int height = 512;
  double warmup_ms = 0;

  // Raw frame -> [1,3,height,width] float RGB in [0,1] on |device|.
  at::Tensor to_model(const FrameLayout& l, const Planes& in) const {
    at::Tensor rgb;
    switch (l.format) {
      case PixelFormat::kRGB:
      case PixelFormat::kRGBA:
      case PixelFormat::kBGRx:
      case PixelFormat::kBGRA: {
        const int channels = l.format == PixelFormat::kRGB ? 3 : 4;
        at::Tensor t = wrap(in.data[0], l.height, l.width, channels, l.stride[0]).narrow(2, 0, 3);
        if (l.format == PixelFormat::kBGRx || l.format == PixelFormat::kBGRA) t = t.flip(2);
        t = t.permute({2, 0, 1}).unsqueeze(0).to(device).to(torch::kFloat).div_(255.0);
        return resize(t, height, width).clamp(0, 1);
      }
      case PixelFormat::kI420:
      case PixelFormat::kNV12: {
        at::Tensor y = wrap(in.data[0], l.height, l.width, 1, l.stride[0]);
        at::Tensor uv;
        if (l.format == PixelFormat::kI420) {
          at::Tensor u = wrap(in.data[1], l.chroma_height(), l.chroma_width(), 1, l.stride[1]);
          at::Tensor v = wrap(in.data[2], l.chroma_height(), l.chroma_width(), 1, l.stride[2]);
          uv = torch::cat({u, v}, 2);
        } else {
          uv = wrap(in.data[1], l.chroma_height(), l.chroma_width(), 2, l.stride[1]);
        }
        // Scale the planes to the model's size first, then convert: the
        // colour maths then runs once per model pixel, not per camera pixel.
        const YuvScale s = yuv_scale(l.matrix);
        at::Tensor yf = y.permute({2, 0, 1}).unsqueeze(0).to(device).to(torch::kFloat);
        at::Tensor cf = uv.permute({2, 0, 1}).unsqueeze(0).to(device).to(torch::kFloat);
        yf = resize(yf, height, width).sub_(s.y_offset).div_(s.y_scale);
        cf = resize(cf, height, width).sub_(128.0).div_(s.c_scale);
        at::Tensor pb = cf.narrow(1, 0, 1);
        at::Tensor pr = cf.narrow(1, 1, 1);
        const double kr = l.matrix.kr, kb = l.matrix.kb, kg = 1.0 - kr - kb;
        at::Tensor r = yf + pr * (2.0 * (1.0 - kr));
        at::Tensor b = yf + pb * (2.0 * (1.0 - kb));
        at::Tensor g = (yf - r * kr - b * kb) / kg;
        rgb = torch::cat({r, g, b}, 1);
        return rgb.clamp(0, 1);
      }
    }
    return rgb;
  }

  // [1,3,h,w] float RGB in [0,1] -> raw frame laid out as |l|, in |out|.
  void from_model(const at::Tensor& image, const FrameLayout& l, const Planes& out) const {
    switch (l.format) {
      case PixelFormat::kRGB:
      case PixelFormat::kRGBA:
      case PixelFormat::kBGRx:
      case PixelFormat::kBGRA: {
        at::Tensor rgb = to_byte(resize(image, l.height, l.width).mul(255.0));
        rgb = rgb.squeeze(0).permute({1, 2, 0});  // HWC
        if (l.format == PixelFormat::kBGRx || l.format == PixelFormat::kBGRA) rgb = rgb.flip(2);
        const int channels = l.format == PixelFormat::kRGB ? 3 : 4;
        at::Tensor dst = wrap(out.data[0], l.height, l.width, channels, l.stride[0]);
        dst.narrow(2, 0, 3).copy_(rgb);
        if (channels == 4) dst.select(2, 3).fill_(255);
        return;
      }
      case PixelFormat::kI420:
      case PixelFormat::kNV12: {
        const YuvScale s = yuv_scale(l.matrix);
        const double kr = l.matrix.kr, kb = l.matrix.kb, kg = 1.0 - kr - kb;
        auto luma = [&](const at::Tensor& x) {
          return x.narrow(1, 0, 1) * kr + x.narrow(1, 1, 1) * kg + x.narrow(1, 2, 1) * kb;
        };
        at::Tensor full = resize(image, l.height, l.width);
        at::Tensor y = to_byte(luma(full).mul_(s.y_scale).add_(s.y_offset));
        at::Tensor half = resize(image, l.chroma_height(), l.chroma_width());
        at::Tensor yc = luma(half);
        at::Tensor u = to_byte((half.narrow(1, 2, 1) - yc).div_(2.0 * (1.0 - kb)).mul_(s.c_scale).add_(128.0));
        at::Tensor v = to_byte((half.narrow(1, 0, 1) - yc).div_(2.0 * (1.0 - kr)).mul_(s.c_scale).add_(128.0));
        wrap(out.data[0], l.height, l.width, 1, l.stride[0]).copy_(y.squeeze(0).permute({1, 2, 0}));
        if (l.format == PixelFormat::kI420) {
          wrap(out.data[1], l.chroma_height(), l.chroma_width(), 1, l.stride[1])
              .copy_(u.squeeze(0).permute({1, 2, 0}));
          wrap(out.data[2], l.chroma_height(), l.chroma_width(), 1, l.stride[2])
              .copy_(v.squeeze(0).permute({1, 2, 0}));
        } else {
          at::Tensor uv = torch::cat({u, v}, 1).squeeze(0).permute({1, 2, 0});
          wrap(out.data[1], l.chroma_height(), l.chroma_width(), 2, l.stride[1]).copy_(uv);
        }
        return;
      }
    }
  }

  // Runs forward() and checks the result against the contract.
  at::Tensor forward(const at::Tensor& image, const InferenceParams& p) {
    c10::InferenceMode inference_mode;
    std::vector<c10::IValue> inputs{image, p.style, p.strength, p.seed};
    c10::IValue result = module.forward(inputs);
    if (!result.isTensor()) {
      throw std::runtime_error("forward() returned " + result.tagKind() + ", expected a Tensor");
    }
    at::Tensor out = result.toTensor();
    if (out.dim() != 4 || out.size(0) != 1 || out.size(1) != 3 || out.size(2) != height ||
        out.size(3) != width) {
      std::ostringstream msg;
      msg << "forward() returned a tensor of shape " << out.sizes() << ", expected [1, 3, "
          << height << ", " << width << "]";
      throw std::runtime_error(msg.str());
    }
    return out.to(torch::kFloat).clamp(0, 1);
  }
};

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRunner::~ModelRunner() = default;

std::unique_ptr<ModelRunner> ModelRunner::load(const ModelOptions& options,
                                               const InferenceParams& warmup, std::string* error) {
  auto fail = [&](const std::string& reason) -> std::unique_ptr<ModelRunner> {
    if (error) *error = "model '" + options.path + "': " + reason;
    return nullptr;
  };
  if (options.path.empty()) return fail("no model file given (set the 'model' property)");
  if (!is_valid_device(options.device)) return fail("unknown device '" + options.device + "'");
  {
    std::ifstream probe(options.path, std::ios::binary);
    if (!probe) return fail(std::string("cannot open the file: ") + std::strerror(errno));
  }
  configure_threads_once();

  auto impl = std::make_unique<Impl>();
  // Device.
  if (options.device == "auto") {
    impl->device = torch::cuda::is_available() ? torch::Device("cuda:0") : torch::Device(torch::kCPU);
  } else {
    try {
      impl->device = torch::Device(options.device);
    } catch (const std::exception& e) {
      return fail("unknown device '" + options.device + "': " + first_line(e.what()));
    }
    if (impl->device.is_cuda()) {
      if (!torch::cuda::is_available()) return fail("device '" + options.device + "' asked for, but CUDA is not available");
      if (impl->device.has_index() && impl->device.index() >= int(torch::cuda::device_count()))
        return fail("device '" + options.device + "' does not exist (" +
                    std::to_string(torch::cuda::device_count()) + " CUDA devices)");
      if (!impl->device.has_index()) impl->device = torch::Device(torch::kCUDA, 0);
    }
  }
  impl->device_name = impl->device.str();

  // File.
  try {
    impl->module = torch::jit::load(options.path, impl->device);
  } catch (const std::exception& e) {
    return fail("not a loadable TorchScript file: " + first_line(e.what()));
  }
  impl->module.eval();

  // Contract: forward(image: Tensor, style: str, strength: float, seed: int) -> Tensor.
  auto forward = impl->module.find_method("forward");
  if (!forward) return fail("the module has no forward() method");
  const auto& schema = forward->function().getSchema();
  const auto& args = schema.arguments();
  auto arg_is = [&](size_t i, const c10::TypePtr& type) {
    return i < args.size() && args[i].type()->isSubtypeOf(*type);
  };
  if (args.size() != 5 || !arg_is(1, c10::TensorType::get()) || !arg_is(2, c10::StringType::get()) ||
      !arg_is(3, c10::FloatType::get()) || !arg_is(4, c10::IntType::get())) {
    std::ostringstream msg;
    msg << "forward() must be forward(image: Tensor, style: str, strength: float, seed: int) -> "
           "Tensor, but it is "
        << schema;
    return fail(msg.str());
  }
  try {
    if (auto styles = impl->module.find_method("styles")) {
      c10::IValue list = (*styles)({});
      if (!list.isList()) return fail("styles() must return List[str]");
      for (const auto& item : list.toListRef()) {
        if (!item.isString()) return fail("styles() must return List[str]");
        impl->styles.push_back(item.toStringRef());
      }
    }
    if (auto size = impl->module.find_method("default_size")) {
      c10::IValue tuple = (*size)({});
      if (!tuple.isTuple() || tuple.toTupleRef().elements().size() != 2)
        return fail("default_size() must return Tuple[int, int] (width, height)");
      const auto& wh = tuple.toTupleRef().elements();
      if (!wh[0].isInt() || !wh[1].isInt() || wh[0].toInt() < 8 || wh[1].toInt() < 8 ||
          wh[0].toInt() > 8192 || wh[1].toInt() > 8192)
        return fail("default_size() must return two ints between 8 and 8192");
      impl->width = int(wh[0].toInt());
      impl->height = int(wh[1].toInt());
    }
  } catch (const std::exception& e) {
    return fail("calling styles() or default_size() failed: " + describe(e));
  }
  if (options.width > 0) impl->width = options.width;
  if (options.height > 0) impl->height = options.height;

  // Warm-up: one run at the working size proves the contract end to end
  // and pays the JIT's first-run costs before the first real frame.
  try {
    InferenceParams params = warmup;
    if (!impl->styles.empty() &&
        std::find(impl->styles.begin(), impl->styles.end(), params.style) == impl->styles.end())
      params.style = impl->styles.front();
    auto start = Clock::now();
    at::Tensor gray = torch::full({1, 3, impl->height, impl->width}, 0.5,
                                  torch::TensorOptions().device(impl->device));
    impl->forward(gray, params).cpu();
    impl->warmup_ms = ms_since(start);
  } catch (const std::exception& e) {
    return fail("warm-up run failed: " + describe(e));
  }
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
}

Status ModelRunner::process(const FrameLayout& in_layout, const Planes& in,
                            const FrameLayout& out_layout, const Planes& out,
                            const InferenceParams& params, FrameTiming* timing) {
  if (in_layout.format != out_layout.format || in_layout.width != out_layout.width ||
      in_layout.height != out_layout.height)
    return Status::Error("input and output frames differ in format or size");
  try {
    c10::InferenceMode inference_mode;
    const auto start = Clock::now();
    at::Tensor image = impl_->to_model(in_layout, in);
    const auto model_start = Clock::now();
    at::Tensor result = impl_->forward(image, params);
    if (impl_->device.is_cuda()) result = result.cpu();  // waits for the GPU: honest timing
    const double model_ms = ms_since(model_start);
    impl_->from_model(result, out_layout, out);
    if (timing) {
      timing->model_ms = model_ms;
      timing->total_ms = ms_since(start);
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::Error(describe(e));
  }
}

const std::vector<std::string>& ModelRunner::styles() const { return impl_->styles; }
int ModelRunner::width() const { return impl_->width; }
int ModelRunner::height() const { return impl_->height; }
const std::string& ModelRunner::device() const { return impl_->device_name; }
double ModelRunner::warmup_ms() const { return impl_->warmup_ms; }

}  // namespace mirage
