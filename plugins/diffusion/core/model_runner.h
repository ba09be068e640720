// ModelRunner: loads a TorchScript img2img model that meets
// docs/model-contract.md and runs it on raw video frames.
//
// This header is free of libtorch on purpose: torch headers take ~15 s per
// translation unit to compile, so model_runner.cpp is the one place in the
// plugin that includes them. Every libtorch exception is caught inside and
// returned as a Status.
//
// Thread safety: load() may run on any thread. process() must not be called
// concurrently on the same runner (the element calls it from its one worker).
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
  double model_ms = 0;  // forward() alone
  double total_ms = 0;  // conversion in + forward() + conversion out
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
  Status process(const FrameLayout& in_layout, const Planes& in, const FrameLayout& out_layout,
                 const Planes& out, const InferenceParams& params, FrameTiming* timing = nullptr);

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
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mirage
