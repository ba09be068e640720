// What ModelRunner runs: a model file behind one call, whatever its format.
// A TorchScript module (.pt, model_runner.cpp) or an AOTInductor package
// (.pt2, aoti_model.cpp, when the libtorch has the package loader). Only the
// core's libtorch translation units include this.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

namespace mirage {

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  // images [N,3,H,W] in [0,1], of input_dtype on the model's device; one style,
  // strength and seed per item. Returns [N,3,H,W] float in [0,1]. Throws
  // (std::exception) on failure. Called on the model thread only.
  virtual at::Tensor run(const at::Tensor& images, const std::vector<std::string>& styles,
                         const std::vector<double>& strengths, const std::vector<int64_t>& seeds) = 0;
  // True when run() with N > 1 costs less than N runs of 1.
  virtual bool batched() const = 0;
  // The largest N run() takes.
  virtual int max_batch() const { return 64; }

  std::vector<std::string> styles;  // what the model offers (may be empty)
  int width = 512;                  // default_size()
  int height = 512;
  at::ScalarType dtype = at::kFloat;        // what it computes in (fp32 or fp16)
  at::ScalarType input_dtype = at::kFloat;  // what run() takes
  std::string format;                 // "torchscript" or "aoti"
};

// An AOTInductor package (plugins/diffusion/core/aoti_model.cpp); null and
// |error| when it cannot be loaded, or when this build's libtorch has no
// package loader (PyTorch 2.6 or newer is needed).
std::unique_ptr<ModelBackend> load_aoti_package(const std::string& path, const torch::Device& device,
                                                std::string* error);
// Whether this build can load .pt2 packages at all.
bool aoti_supported();

}  // namespace mirage
