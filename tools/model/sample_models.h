// Sample TorchScript models written from C++ (no Python, no weights to
// download): the demo's stylization model, a small genuine diffusion model,
// and a delay model for tests and benchmarks. See docs/model-contract.md.
#pragma once

#include <string>
#include <vector>

#include "status.h"

namespace mirage::models {

// Styles of the `styles` model (and the style embeddings of tiny-diffusion).
const std::vector<std::string>& style_names();

// A hand-written, non-learned image stylization model: every style is a few
// tensor operations (posterize + edges, sobel sketch, sepia matrix, ...).
Status write_styles(const std::string& path);

struct TinyDiffusionConfig {
  int channels = 16;  // base width of the UNet
  int steps = 2;      // DDIM steps of the img2img loop
  int size = 256;     // default_size(), square
  unsigned seed = 1234;
};

// A conv UNet with timestep and style conditioning and deterministic random
// weights, inside a real img2img loop: noise to |strength|, DDIM steps.
Status write_tiny_diffusion(const std::string& path, const TinyDiffusionConfig& config = {});

// Identity that takes |ms| milliseconds per frame (mirage::delay op).
Status write_delay(const std::string& path, int ms);

// Compiles |source| (TorchScript methods, including forward) into a module
// and saves it, for tests that need a model of a particular shape. Buffers
// are not supported; the source must be self-contained. The saved file is
// not checked against the contract.
Status write_script(const std::string& path, const std::string& source);

}  // namespace mirage::models
