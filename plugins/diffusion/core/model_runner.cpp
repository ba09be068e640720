// The plugin's main libtorch translation unit (with cuda_frame_path.cpp in
// CUDA builds and aoti_model.cpp where the libtorch has the package loader).
#include "model_runner.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/library.h>
#include <torch/script.h>

#include "frame_convert.h"
#include "model_backend.h"
#ifdef MIRAGE_HAVE_CUDA
#include "cuda_frame_path.h"
#endif

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

// The floating type of a TorchScript module's parameters (else buffers):
// the precision it was exported for.
at::ScalarType exported_dtype(const torch::jit::Module& module) {
  for (const auto& p : module.parameters())
    if (p.is_floating_point()) return p.scalar_type();
  for (const auto& b : module.buffers())
    if (b.is_floating_point()) return b.scalar_type();
  return at::kFloat;
}

const char* precision_name(at::ScalarType t) { return t == at::kHalf ? "fp16" : "fp32"; }

// A TorchScript module meeting docs/model-contract.md.
class TorchScriptBackend : public ModelBackend {
 public:
  torch::jit::Module module;
  bool has_batch = false;  // forward_batch() present and well typed

  bool batched() const override { return has_batch; }

  at::Tensor run(const at::Tensor& images, const std::vector<std::string>& styles_in,
                 const std::vector<double>& strengths, const std::vector<int64_t>& seeds) override {
    const int64_t n = images.size(0);
    c10::IValue result;
    const char* method = "forward()";
    if (n == 1) {
      result = module.forward({images, styles_in[0], strengths[0], seeds[0]});
    } else {
      method = "forward_batch()";
      c10::List<std::string> s;
      c10::List<double> st;
      c10::List<int64_t> se;
      for (int64_t i = 0; i < n; ++i) {
        s.push_back(styles_in[size_t(i)]);
        st.push_back(strengths[size_t(i)]);
        se.push_back(seeds[size_t(i)]);
      }
      result = module.get_method("forward_batch")({images, s, st, se});
    }
    if (!result.isTensor()) throw std::runtime_error(std::string(method) + " returned " + result.tagKind() + ", expected a Tensor");
    at::Tensor out = result.toTensor();
    if (out.dim() != 4 || out.size(0) != n || out.size(1) != 3 || out.size(2) != images.size(2) ||
        out.size(3) != images.size(3)) {
      std::ostringstream msg;
      msg << method << " returned a tensor of shape " << out.sizes() << ", expected [" << n << ", 3, "
          << images.size(2) << ", " << images.size(3) << "]";
      throw std::runtime_error(msg.str());
    }
    return out.to(torch::kFloat).clamp(0, 1);
  }
};

}  // namespace

bool is_valid_device(const std::string& device) {
  static const std::regex pattern("auto|cpu|cuda|cuda:[0-9]{1,2}");
  return std::regex_match(device, pattern);
}

bool is_valid_precision(const std::string& p) { return p == "auto" || p == "fp32" || p == "fp16"; }
bool is_valid_cuda_graph_mode(const std::string& m) { return m == "auto" || m == "on" || m == "off"; }

bool cuda_frame_path_available() {
#ifdef MIRAGE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

bool aoti_packages_available() {
#ifdef MIRAGE_HAVE_AOTI
  return aoti_supported();
#else
  return false;
#endif
}

std::atomic<uint64_t> g_model_loads{0};

struct ModelRunner::Impl {
  std::unique_ptr<ModelBackend> model;
  torch::Device device{torch::kCPU};
  std::string device_name;
  int width = 512;
  int height = 512;
  double warmup_ms = 0;
#ifdef MIRAGE_HAVE_CUDA
  std::unique_ptr<CudaFramePath> cuda;  // frames take the CUDA frame path when set
#endif
  bool on_cuda_path() const {
#ifdef MIRAGE_HAVE_CUDA
    return cuda != nullptr;
#else
    return false;
#endif
  }

  // The model thread and its queue: one request per waiting caller.
  struct Request {
    at::Tensor image;  // [1,3,h,w] on the device (the CPU path)
    FrameLayout in_layout, out_layout;  // the CUDA path: the frame is in staging
#ifdef MIRAGE_HAVE_CUDA
    std::shared_ptr<Staging> staging;
#endif
    InferenceParams params;
    int max_batch = 1;
    at::Tensor result;
    std::string error;
    double model_ms = 0;
    int batch = 1;
    bool done = false;
  };
  std::mutex queue_lock;  // guards the members up to |notices|
  std::condition_variable queue_cv, done_cv;
  std::deque<Request*> queue;
  bool stopping = false;
  BatchStats stats;
  double last_call_ms = 0;
  std::vector<std::string> notices;
  std::atomic<int> holders{0};  // streams holding this runner through acquire_model()
  // When each thread (a stream's worker) last queued a frame: only streams
  // that send frames are waited for, not a holder that sends none (the
  // daemon's probe element, a stream whose publisher is silent).
  std::map<std::thread::id, Clock::time_point> last_frame;
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
    last_frame[std::this_thread::get_id()] = Clock::now();
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
        const int most = std::min(std::max(1, queue.front()->max_batch), model->max_batch());
        const size_t want = size_t(std::min({most, holders.load(), streams_sending()}));
        const bool batched = model->batched();
        if (batched && queue.size() < want) {
          stats.waits++;
          const auto window = std::chrono::duration<double, std::milli>(std::min(20.0, last_call_ms / 4));
          queue_cv.wait_for(lock, window, [&] { return stopping || queue.size() >= want; });
        }
        // Arrival order; each stream has at most one frame waiting, so
        // streams take turns and none starves.
        size_t limit = batched ? size_t(most) : 1;
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
        if (stats.calls_by_size.size() <= batch.size()) stats.calls_by_size.resize(batch.size() + 1);
        stats.calls_by_size[batch.size()]++;
        for (Request* r : batch) r->done = true;
      }
      done_cv.notify_all();
    }
  }

  // Streams (threads) that queued a frame lately: within a second, or four
  // calls when calls are slower (each comes back one call after the last).
  // Under queue_lock; forgets the others.
  int streams_sending() {
    const auto now = Clock::now();
    const auto window = std::chrono::duration<double, std::milli>(std::max(1000.0, 4 * last_call_ms));
    for (auto it = last_frame.begin(); it != last_frame.end();)
      it = now - it->second > window ? last_frame.erase(it) : std::next(it);
    return int(last_frame.size());
  }

  // One forward call for |batch| (on the CUDA path: upload, conversions
  // and download too).
  void call(const std::vector<Request*>& batch) {
#ifdef MIRAGE_HAVE_CUDA
    if (cuda) {
      std::vector<CudaFramePath::Job> jobs;
      for (Request* r : batch)
        jobs.push_back({r->in_layout, r->out_layout, r->staging, r->params.style, r->params.strength, r->params.seed});
      cuda->run(*model, jobs);
      return;
    }
#endif
    std::vector<at::Tensor> images;
    std::vector<std::string> styles;
    std::vector<double> strengths;
    std::vector<int64_t> seeds;
    for (Request* r : batch) {
      images.push_back(r->image);
      styles.push_back(r->params.style);
      strengths.push_back(r->params.strength);
      seeds.push_back(r->params.seed);
    }
    at::Tensor out = model->run(images.size() == 1 ? images[0] : torch::cat(images, 0), styles, strengths, seeds);
    if (device.is_cuda()) out = out.cpu();  // waits for the GPU: honest timing
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = out.narrow(0, int64_t(i), 1);
  }

  void run_batch(const std::vector<Request*>& batch) {
    c10::InferenceMode inference_mode;
    const auto start = Clock::now();
    if (batch.size() > 1) {
      try {
        call(batch);
        const double ms = ms_since(start);
        for (Request* r : batch) {
          r->model_ms = ms;
          r->batch = int(batch.size());
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
        call({r});
      } catch (const std::exception& e) {
        r->error = describe(e);
      }
      r->model_ms = ms_since(one);
    }
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

  if (!is_valid_precision(options.precision))
    return fail("unknown precision '" + options.precision + "' (auto, fp32 or fp16)");
  if (!is_valid_cuda_graph_mode(options.cuda_graph))
    return fail("unknown cuda-graph mode '" + options.cuda_graph + "' (auto, on or off)");

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

  const bool package = options.path.size() > 4 && options.path.compare(options.path.size() - 4, 4, ".pt2") == 0;
  if (package) {
    // An AOTInductor package: compiled for a device, size and precision.
#ifdef MIRAGE_HAVE_AOTI
    std::string why;
    impl->model = load_aoti_package(options.path, impl->device, &why);
    if (!impl->model) return fail(why);
#else
    return fail("this build's libtorch cannot load AOTInductor packages (.pt2): build against PyTorch 2.6 or "
                "newer (docs/gpu.md), or use the TorchScript export (.pt)");
#endif
    const char* has = precision_name(impl->model->dtype);
    if (options.precision != "auto" && options.precision != has)
      return fail(std::string("the package was compiled for ") + has + "; export one with --precision " +
                  options.precision);
  } else {
    auto ts = std::make_unique<TorchScriptBackend>();
    ts->format = "torchscript";
    // File.
    try {
      ts->module = torch::jit::load(options.path, impl->device);
    } catch (const std::exception& e) {
      return fail("not a loadable TorchScript file: " + first_line(e.what()));
    }
    ts->module.eval();

    // Contract: forward(image: Tensor, style: str, strength: float, seed: int) -> Tensor.
    auto forward = ts->module.find_method("forward");
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
      if (auto styles = ts->module.find_method("styles")) {
        c10::IValue list = (*styles)({});
        if (!list.isList()) return fail("styles() must return List[str]");
        for (const auto& item : list.toListRef()) {
          if (!item.isString()) return fail("styles() must return List[str]");
          ts->styles.push_back(item.toStringRef());
        }
      }
      if (auto size = ts->module.find_method("default_size")) {
        c10::IValue tuple = (*size)({});
        if (!tuple.isTuple() || tuple.toTupleRef().elements().size() != 2)
          return fail("default_size() must return Tuple[int, int] (width, height)");
        const auto& wh = tuple.toTupleRef().elements();
        if (!wh[0].isInt() || !wh[1].isInt() || wh[0].toInt() < 8 || wh[1].toInt() < 8 ||
            wh[0].toInt() > 8192 || wh[1].toInt() > 8192)
          return fail("default_size() must return two ints between 8 and 8192");
        ts->width = int(wh[0].toInt());
        ts->height = int(wh[1].toInt());
      }
    } catch (const std::exception& e) {
      return fail("calling styles() or default_size() failed: " + describe(e));
    }
    // Optional: forward_batch(images: Tensor, styles: List[str],
    // strengths: List[float], seeds: List[int]) -> Tensor.
    if (auto batch = ts->module.find_method("forward_batch")) {
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
      ts->has_batch = true;
    }
    // Precision: as exported, unless asked otherwise.
    ts->dtype = exported_dtype(ts->module);
    if (options.precision != "auto") {
      const at::ScalarType want = options.precision == "fp16" ? at::kHalf : at::kFloat;
      if (want != ts->dtype) {
        try {
          ts->module.to(want);
        } catch (const std::exception& e) {
          return fail(std::string("cannot convert the model to ") + options.precision + ": " + first_line(e.what()));
        }
        ts->dtype = want;
      }
    }
    ts->input_dtype = ts->dtype;
    impl->model = std::move(ts);
  }
  impl->width = options.width > 0 ? options.width : impl->model->width;
  impl->height = options.height > 0 ? options.height : impl->model->height;

  // Warm-up: one run at the working size proves the contract end to end
  // and pays the JIT's first-run costs before the first real frame.
  try {
    c10::InferenceMode inference_mode;
    InferenceParams params = warmup;
    const auto& styles = impl->model->styles;
    if (!styles.empty() && std::find(styles.begin(), styles.end(), params.style) == styles.end())
      params.style = styles.front();
    auto start = Clock::now();
    at::Tensor gray = torch::full({1, 3, impl->height, impl->width}, 0.5,
                                  torch::TensorOptions().device(impl->device).dtype(impl->model->input_dtype));
    impl->model->run(gray, {params.style}, {params.strength}, {params.seed}).cpu();
    impl->warmup_ms = ms_since(start);
  } catch (const std::exception& e) {
    return fail(std::string("warm-up run failed (") + precision_name(impl->model->dtype) + " on " + impl->device_name +
                "): " + describe(e));
  }
#ifdef MIRAGE_HAVE_CUDA
  if (impl->device.is_cuda()) {
    std::string why;
    impl->cuda = CudaFramePath::create(impl->device, impl->width, impl->height,
                                       options.cuda_graph == "off" ? CudaFramePath::Graphs::kOff
                                                                   : CudaFramePath::Graphs::kOn,
                                       &why);
    if (!impl->cuda) impl->notices.push_back(why + "; frames go through the generic path");
  }
#endif
  if (!impl->device.is_cuda() && options.cuda_graph == "on")
    impl->notices.push_back("cuda-graph=on has no effect on " + impl->device_name + ": CUDA graphs need a CUDA device");
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
                          std::to_string(options.height) + "\n" + options.precision + "\n" + options.cuda_graph;
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
    request.params = params;
    request.max_batch = max_batch;
#ifdef MIRAGE_HAVE_CUDA
    if (impl_->cuda) {
      // The frame's planes into pinned staging; the rest happens on the model thread.
      request.in_layout = in_layout;
      request.out_layout = out_layout;
      request.staging = impl_->cuda->acquire_staging(in_layout.size, out_layout.size);
      uint8_t* staged = request.staging->in.data_ptr<uint8_t>();
      for (int i = 0; i < in_layout.plane_count(); ++i) {
        const int rows = i == 0 || !in_layout.is_yuv() ? in_layout.height : in_layout.chroma_height();
        std::memcpy(staged + in_layout.offset[size_t(i)], in.data[size_t(i)], size_t(in_layout.stride[size_t(i)]) * size_t(rows));
      }
      impl_->run(&request);  // on the model thread, perhaps in a batch
      if (!request.error.empty()) return Status::Error(request.error);
      const uint8_t* result = request.staging->out.data_ptr<uint8_t>();
      for (int i = 0; i < out_layout.plane_count(); ++i) {
        const int rows = i == 0 || !out_layout.is_yuv() ? out_layout.height : out_layout.chroma_height();
        std::memcpy(out.data[size_t(i)], result + out_layout.offset[size_t(i)], size_t(out_layout.stride[size_t(i)]) * size_t(rows));
      }
    } else
#endif
    {
      auto planes = convert::host_planes(in_layout, in);
      if (impl_->device.is_cuda())
        for (auto& p : planes)
          if (p.defined()) p = p.to(impl_->device);
      request.image = convert::to_model(in_layout, planes, impl_->height, impl_->width).to(impl_->model->input_dtype);
      impl_->run(&request);  // on the model thread, perhaps in a batch
      if (!request.error.empty()) return Status::Error(request.error);
      convert::from_model(request.result, out_layout, convert::host_planes(out_layout, out));
    }
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

bool ModelRunner::batched() const { return impl_->model->batched(); }
BatchStats ModelRunner::batch_stats() const {
  std::lock_guard<std::mutex> lock(impl_->queue_lock);
  return impl_->stats;
}
const std::vector<std::string>& ModelRunner::styles() const { return impl_->model->styles; }
int ModelRunner::width() const { return impl_->width; }
int ModelRunner::height() const { return impl_->height; }
const std::string& ModelRunner::device() const { return impl_->device_name; }
double ModelRunner::warmup_ms() const { return impl_->warmup_ms; }
std::string ModelRunner::precision() const { return precision_name(impl_->model->dtype); }
const std::string& ModelRunner::format() const { return impl_->model->format; }
bool ModelRunner::cuda_frame_path() const { return impl_->on_cuda_path(); }

bool ModelRunner::cuda_graphs() const {
#ifdef MIRAGE_HAVE_CUDA
  return impl_->cuda && impl_->cuda->graphs_on();
#else
  return false;
#endif
}

CudaMemory ModelRunner::cuda_memory() const {
  CudaMemory m;
#ifdef MIRAGE_HAVE_CUDA
  if (impl_->cuda) {
    const CudaMemoryStats s = impl_->cuda->memory();
    m = {s.available, s.allocation_requests, s.segments, s.allocated_bytes, s.peak_bytes, s.graph_captures,
         s.graph_replays};
  }
#endif
  return m;
}

std::vector<std::string> ModelRunner::take_notices() {
  std::vector<std::string> out;
  {
    std::lock_guard<std::mutex> lock(impl_->queue_lock);
    out.swap(impl_->notices);
  }
#ifdef MIRAGE_HAVE_CUDA
  if (impl_->cuda)
    for (auto& n : impl_->cuda->take_notices()) out.push_back(std::move(n));
#endif
  return out;
}

}  // namespace mirage
