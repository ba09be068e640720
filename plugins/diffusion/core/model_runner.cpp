// The only translation unit of the plugin that includes libtorch.
#include "model_runner.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/library.h>
#include <torch/script.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <pthread.h>
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

std::atomic<uint64_t> g_model_loads{0};

struct ModelRunner::Impl {
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  std::string device_name;
  std::vector<std::string> styles;
  int width = 512;
  int height = 512;
  double warmup_ms = 0;
  bool batched = false;  // forward_batch() present and well typed

  // The model thread and its queue: one request per waiting caller.
  struct Request {
    at::Tensor image;  // [1,3,h,w] on the device
    InferenceParams params;
    int max_batch = 1;
    at::Tensor result;
    std::string error;
    double model_ms = 0;
    int batch = 1;
    bool done = false;
  };
  std::mutex queue_lock;  // guards the members up to |stats|
  std::condition_variable queue_cv, done_cv;
  std::deque<Request*> queue;
  bool stopping = false;
  BatchStats stats;
  double last_call_ms = 0;
  std::atomic<int> holders{0};  // streams holding this runner through acquire_model()
  std::thread thread;

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(queue_lock);
      stopping = true;
    }
    queue_cv.notify_all();
    if (thread.joinable()) thread.join();
  }

  // Queues |r| and waits until the model thread has run it.
  void run(Request* r) {
    std::unique_lock<std::mutex> lock(queue_lock);
    queue.push_back(r);
    queue_cv.notify_one();
    done_cv.wait(lock, [&] { return r->done; });
  }

  void model_thread() {
    pthread_setname_np(pthread_self(), "diffusionmodel");
    for (;;) {
      std::vector<Request*> batch;
      {
        std::unique_lock<std::mutex> lock(queue_lock);
        queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping
        // Streams that just got their result come back a moment later with
        // their next frame. Without waiting for them two streams would take
        // turns forever, never meeting in a batch: so when fewer frames wait
        // than streams are attached, wait a little (a quarter of the last
        // call, at most 20 ms) for the others.
        const size_t want = size_t(std::min(std::max(1, queue.front()->max_batch), holders.load()));
        if (batched && queue.size() < want) {
          const auto window = std::chrono::duration<double, std::milli>(std::min(20.0, last_call_ms / 4));
          queue_cv.wait_for(lock, window, [&] { return stopping || queue.size() >= want; });
        }
        // Arrival order; each stream has at most one frame waiting, so
        // streams take turns and none starves.
        size_t limit = batched ? size_t(std::max(1, queue.front()->max_batch)) : 1;
        while (!queue.empty() && batch.size() < limit) {
          Request* r = queue.front();
          if (!batch.empty() && size_t(std::max(1, r->max_batch)) <= batch.size()) break;
          limit = std::min(limit, size_t(std::max(1, r->max_batch)));
          batch.push_back(r);
          queue.pop_front();
        }
      }
      const auto call_start = Clock::now();
      run_batch(batch);
      {
        std::lock_guard<std::mutex> lock(queue_lock);
        last_call_ms = ms_since(call_start);
        stats.calls++;
        stats.frames += batch.size();
        stats.largest = std::max(stats.largest, int(batch.size()));
        for (Request* r : batch) r->done = true;
      }
      done_cv.notify_all();
    }
  }

  void run_batch(const std::vector<Request*>& batch) {
    c10::InferenceMode inference_mode;
    const auto start = Clock::now();
    if (batch.size() > 1) {
      try {
        at::Tensor results = forward_batch(batch);
        if (device.is_cuda()) results = results.cpu();  // waits for the GPU: honest timing
        const double ms = ms_since(start);
        for (size_t i = 0; i < batch.size(); ++i) {
          batch[i]->result = results.narrow(0, int64_t(i), 1);
          batch[i]->model_ms = ms;
          batch[i]->batch = int(batch.size());
        }
        return;
      } catch (const std::exception&) {
        // One frame's failure must not cost the others theirs: run them
        // one by one, so the error lands on the frame that caused it.
      }
    }
    for (Request* r : batch) {
      const auto one = Clock::now();
      try {
        r->result = forward(r->image, r->params);
        if (device.is_cuda()) r->result = r->result.cpu();
      } catch (const std::exception& e) {
        r->error = describe(e);
      }
      r->model_ms = ms_since(one);
    }
  }

  at::Tensor forward_batch(const std::vector<Request*>& batch) {
    std::vector<at::Tensor> images;
    c10::List<std::string> styles_list;
    c10::List<double> strengths;
    c10::List<int64_t> seeds;
    for (Request* r : batch) {
      images.push_back(r->image);
      styles_list.push_back(r->params.style);
      strengths.push_back(r->params.strength);
      seeds.push_back(r->params.seed);
    }
    const int64_t n = int64_t(batch.size());
    c10::IValue result = module.get_method("forward_batch")({torch::cat(images, 0), styles_list, strengths, seeds});
    if (!result.isTensor()) throw std::runtime_error("forward_batch() returned " + result.tagKind() + ", expected a Tensor");
    at::Tensor out = result.toTensor();
    if (out.dim() != 4 || out.size(0) != n || out.size(1) != 3 || out.size(2) != height || out.size(3) != width) {
      std::ostringstream msg;
      msg << "forward_batch() returned a tensor of shape " << out.sizes() << ", expected [" << n << ", 3, " << height
          << ", " << width << "]";
      throw std::runtime_error(msg.str());
    }
    return out.to(torch::kFloat).clamp(0, 1);
  }

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
  // Optional: forward_batch(images: Tensor, styles: List[str],
  // strengths: List[float], seeds: List[int]) -> Tensor.
  if (auto batch = impl->module.find_method("forward_batch")) {
    const auto& bschema = batch->function().getSchema();
    const auto& bargs = bschema.arguments();
    auto barg_is = [&](size_t i, const c10::TypePtr& type) {
      return i < bargs.size() && bargs[i].type()->isSubtypeOf(*type);
    };
    if (bargs.size() != 5 || !barg_is(1, c10::TensorType::get()) ||
        !barg_is(2, c10::ListType::create(c10::StringType::get())) ||
        !barg_is(3, c10::ListType::create(c10::FloatType::get())) ||
        !barg_is(4, c10::ListType::create(c10::IntType::get()))) {
      std::ostringstream msg;
      msg << "forward_batch() must be forward_batch(images: Tensor, styles: List[str], strengths: List[float], "
             "seeds: List[int]) -> Tensor, but it is "
          << bschema;
      return fail(msg.str());
    }
    impl->batched = true;
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
  impl->thread = std::thread([raw = impl.get()] { raw->model_thread(); });
  g_model_loads++;
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
}

uint64_t model_loads() { return g_model_loads; }

std::shared_ptr<ModelRunner> acquire_model(const ModelOptions& options, const InferenceParams& warmup,
                                           std::string* error) {
  static std::mutex lock;  // held while loading: two streams starting together load once
  static std::map<std::string, std::weak_ptr<ModelRunner>> cache;
  const std::string key = options.path + "\n" + options.device + "\n" + std::to_string(options.width) + "x" +
                          std::to_string(options.height);
  std::lock_guard<std::mutex> guard(lock);
  std::shared_ptr<ModelRunner> runner;
  if (auto it = cache.find(key); it != cache.end()) runner = it->second.lock();
  if (!runner) {
    runner = ModelRunner::load(options, warmup, error);
    if (!runner) return nullptr;
    cache[key] = runner;
  }
  for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
  // Each holder is counted while it holds (the model thread's batching
  // window waits for attached streams only).
  runner->impl_->holders++;
  return std::shared_ptr<ModelRunner>(runner.get(), [runner](ModelRunner* r) { r->impl_->holders--; });
}

Status ModelRunner::process(const FrameLayout& in_layout, const Planes& in,
                            const FrameLayout& out_layout, const Planes& out,
                            const InferenceParams& params, FrameTiming* timing, int max_batch) {
  if (in_layout.format != out_layout.format || in_layout.width != out_layout.width ||
      in_layout.height != out_layout.height)
    return Status::Error("input and output frames differ in format or size");
  try {
    c10::InferenceMode inference_mode;
    const auto start = Clock::now();
    Impl::Request request;
    request.image = impl_->to_model(in_layout, in);
    request.params = params;
    request.max_batch = max_batch;
    impl_->run(&request);  // on the model thread, perhaps in a batch
    if (!request.error.empty()) return Status::Error(request.error);
    impl_->from_model(request.result, out_layout, out);
    if (timing) {
      timing->model_ms = request.model_ms;
      timing->total_ms = ms_since(start);
      timing->batch = request.batch;
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::Error(describe(e));
  }
}

bool ModelRunner::batched() const { return impl_->batched; }
BatchStats ModelRunner::batch_stats() const {
  std::lock_guard<std::mutex> lock(impl_->queue_lock);
  return impl_->stats;
}
const std::vector<std::string>& ModelRunner::styles() const { return impl_->styles; }
int ModelRunner::width() const { return impl_->width; }
int ModelRunner::height() const { return impl_->height; }
const std::string& ModelRunner::device() const { return impl_->device_name; }
double ModelRunner::warmup_ms() const { return impl_->warmup_ms; }

}  // namespace mirage
