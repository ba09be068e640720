// ModelRunner: loads a TorchScript img2img model that meets
// docs/model-contract.md and runs it on raw video frames.
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
  std::string path;             // TorchScript file
  std::string device = "auto";  // auto, cpu, cuda, cuda:N (see is_valid_device)
  int width = 0;                // model resolution; 0: the model's default_size() or 512
  int height = 0;
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

// What the model thread has run since the load.
struct BatchStats {
  uint64_t calls = 0;   // forward() or forward_batch() calls
  uint64_t frames = 0;  // frames served by them
  int largest = 0;      // largest batch
};

// True for the device names the element accepts: auto, cpu, cuda, cuda:N.
bool is_valid_device(const std::string& device);

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
  // Duration of the warm-up run in milliseconds.
  double warmup_ms() const;

 private:
  struct Impl;
  friend std::shared_ptr<ModelRunner> acquire_model(const ModelOptions&, const InferenceParams&, std::string*);
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The process-wide model cache: the loaded runner for (file, device, width,
// height), loading and warming it up on first use; it is unloaded when the
// last holder lets go. Errors as for ModelRunner::load.
std::shared_ptr<ModelRunner> acquire_model(const ModelOptions& options, const InferenceParams& warmup,
                                           std::string* error);
// Models loaded (successfully) by ModelRunner::load in this process.
uint64_t model_loads();

}  // namespace mirage
