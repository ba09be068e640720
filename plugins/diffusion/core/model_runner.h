// ModelRunner: loads an img2img model that meets docs/model-contract.md (a
// TorchScript file, or an AOTInductor package .pt2 when the libtorch has
// the loader) and runs it on raw video frames.
//
// On a CUDA device (and a libtorch built with CUDA) frames take the CUDA
// frame path (cuda_frame_path.h): pinned staging, the runner's own stream,
// conversion on the GPU, and CUDA graphs unless cuda_graph is "off".
//
// This header is free of libtorch on purpose: torch headers take ~15 s per
// translation unit to compile, so model_runner.cpp is the one place in the
// plugin that includes them. Every libtorch exception is caught inside and
// returned as a Status.
//
// Sharing: acquire_model() hands every caller in the process that names the
// same file, device and size one loaded copy (reference counted). Its
// process() may be called from many threads at once (one per stream):
// conversions run on the caller's thread; forward() runs on the runner's
// one model thread, which serves waiting frames in arrival order. When the
// model has the optional batched method (docs/model-contract.md) and
// several frames wait, it runs them as one forward_batch() call, at most
// the smallest |max_batch| among them; otherwise one after another. When
// fewer frames wait than streams hold the model, the thread first waits a
// quarter of the last call (at most 20 ms) for the others' next frames.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "status.h"
#include "video_frame.h"

namespace mirage {

struct ModelOptions {
  std::string path;             // TorchScript file (.pt) or AOTInductor package (.pt2)
  std::string device = "auto";  // auto, cpu, cuda, cuda:N (see is_valid_device)
  int width = 0;                // model resolution; 0: the model's default_size() or 512
  int height = 0;
  // auto: what the file was exported for (its parameters' type); fp32 or
  // fp16: converted to that when it differs (a TorchScript module's every
  // floating parameter and buffer; a package must have been compiled so).
  std::string precision = "auto";
  // CUDA graphs on the CUDA frame path: auto and on capture each batch
  // shape and replay it (a model that cannot be captured runs eagerly, with
  // one notice); off never captures. Ignored on the CPU.
  std::string cuda_graph = "auto";
};

struct InferenceParams {
  std::string style;
  double strength = 0.5;
  int64_t seed = 0;
};

// Where the time of one process() call went, in milliseconds.
struct FrameTiming {
  double model_ms = 0;  // forward() alone (of the whole batch the frame ran in)
  double total_ms = 0;  // conversion in + waiting + forward() + conversion out
  int batch = 1;        // frames in the forward call that served this one
};

// The CUDA caching allocator's counters on the model's device, and the
// graphs of the CUDA frame path (all zero, available false, elsewhere).
struct CudaMemory {
  bool available = false;
  uint64_t allocation_requests = 0;  // cumulative: a frame that allocates nothing leaves it unchanged
  uint64_t segments = 0;             // cudaMalloc calls behind them, cumulative
  int64_t allocated_bytes = 0;
  int64_t peak_bytes = 0;
  uint64_t graph_captures = 0;
  uint64_t graph_replays = 0;
};

// What the model thread has run since the load.
struct BatchStats {
  uint64_t calls = 0;   // forward() or forward_batch() calls
  uint64_t frames = 0;  // frames served by them
  int largest = 0;      // largest batch
  // [n]: the calls that served n frames ([0] stays 0; largest + 1 long).
  // A batch whose forward_batch() failed, its frames then run one by one,
  // counts once, as the batch it was formed as.
  std::vector<uint64_t> calls_by_size;
  // Times the model thread held a call back waiting for more streams'
  // frames (a quarter of the last call, at most 20 ms each).
  uint64_t waits = 0;
};

// True for the device names the element accepts: auto, cpu, cuda, cuda:N.
bool is_valid_device(const std::string& device);
bool is_valid_precision(const std::string& precision);    // auto, fp32, fp16
bool is_valid_cuda_graph_mode(const std::string& mode);   // auto, on, off
// What this build of the core can do: the CUDA frame path, .pt2 packages.
bool cuda_frame_path_available();
bool aoti_packages_available();

class ModelRunner {
 public:
  // Loads, validates the contract and warms the model up once with
  // |warmup|. On failure returns null and sets |error| to a sentence naming
  // the file and the reason.
  static std::unique_ptr<ModelRunner> load(const ModelOptions& options,
                                           const InferenceParams& warmup, std::string* error);
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  // Converts the frame |in| (laid out as |in_layout|) to the model's
  // resolution and RGB, runs the model, and writes the result into |out|,
  // laid out as |out_layout|: the same format and size, strides may differ.
  // |out| may not alias |in|. On failure |out| is left unspecified.
  // |max_batch| 1 keeps this frame out of batches.
  Status process(const FrameLayout& in_layout, const Planes& in, const FrameLayout& out_layout,
                 const Planes& out, const InferenceParams& params, FrameTiming* timing = nullptr,
                 int max_batch = 1);

  // True when the model has forward_batch().
  bool batched() const;
  BatchStats batch_stats() const;

  // Styles the model declares through styles(); empty when it declares none.
  const std::vector<std::string>& styles() const;
  int width() const;
  int height() const;
  // The resolved device, e.g. "cpu" or "cuda:0".
  const std::string& device() const;
  // "fp32" or "fp16": what the model computes in.
  std::string precision() const;
  // "torchscript" or "aoti".
  const std::string& format() const;
  // Whether frames take the CUDA frame path, and replay CUDA graphs there.
  bool cuda_frame_path() const;
  bool cuda_graphs() const;
  CudaMemory cuda_memory() const;
  // Things worth a warning that happened since the last call (a CUDA graph
  // capture that failed, say), each once for the process.
  std::vector<std::string> take_notices();
  // Duration of the warm-up run in milliseconds.
  double warmup_ms() const;

 private:
  struct Impl;
  friend std::shared_ptr<ModelRunner> acquire_model(const ModelOptions&, const InferenceParams&, std::string*);
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The process-wide model cache: the loaded runner for (file, device, width,
// height, precision, cuda_graph), loading and warming it up on first use; it
// is unloaded when the last holder lets go. Errors as for ModelRunner::load.
std::shared_ptr<ModelRunner> acquire_model(const ModelOptions& options, const InferenceParams& warmup,
                                           std::string* error);
// Models loaded (successfully) by ModelRunner::load in this process.
uint64_t model_loads();

}  // namespace mirage
