// The frame path on CUDA (cuda_frame_path.cpp, built when the libtorch found
// has CUDA). One per ModelRunner on a CUDA device.
//
//   caller thread   frame planes --memcpy--> pinned staging (per frame size, allocated once, pooled)
//   model thread    staging --async H2D--> the batch's device buffers (the runner's own stream)
//                   --> conversion and scaling to the model's RGB (ATen, on the GPU)
//                   --> the model --> conversion to each frame's format --> device buffers
//                   --async D2H--> staging; the stream is waited for
//   caller thread   staging --memcpy--> the output frame's planes
//
// With CUDA graphs (cuda-graph auto or on) the middle part, conversion +
// model + conversion, is captured once per batch shape (the frames'
// layouts) and parameters (style, strength, seed of each item) and
// replayed afterwards: no allocation and one launch per frame. A shape
// seen for the first time runs eagerly, then is captured; a model that
// cannot be captured runs eagerly from then on, with one notice saying why.
//
// Threads: acquire_staging()/release_staging() and memory() from any
// thread; run() on the model thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model_backend.h"
#include "video_frame.h"

namespace mirage {

struct CudaMemoryStats {
  bool available = false;
  uint64_t allocation_requests = 0;  // served by the caching allocator since the start (cumulative)
  uint64_t segments = 0;             // cudaMalloc calls behind them (cumulative)
  int64_t allocated_bytes = 0;       // now
  int64_t peak_bytes = 0;
  uint64_t graph_captures = 0;
  uint64_t graph_replays = 0;
};

// Pinned host memory for one frame in and out.
struct Staging {
  at::Tensor in, out;  // uint8, pinned, sizes of the input and output layouts
};

class CudaFramePath {
 public:
  enum class Graphs { kOff, kOn };

  // Null and |error| when CUDA cannot be used here.
  static std::unique_ptr<CudaFramePath> create(const torch::Device& device, int width, int height, Graphs graphs,
                                               std::string* error);
  ~CudaFramePath();

  // Staging for frames of these sizes: from the pool, or allocated (the
  // first frames of a size only).
  std::shared_ptr<Staging> acquire_staging(size_t in_bytes, size_t out_bytes);

  struct Job {
    FrameLayout in_layout, out_layout;
    std::shared_ptr<Staging> staging;  // the frame is in staging->in; the result goes to staging->out
    std::string style;
    double strength = 0;
    int64_t seed = 0;
  };
  // Runs |jobs| as one batch through |model|; returns when every result is
  // in its staging. Throws on failure.
  void run(ModelBackend& model, const std::vector<Job>& jobs);

  CudaMemoryStats memory() const;
  // Notices for the element to post as warnings (a capture that failed),
  // each once.
  std::vector<std::string> take_notices();
  bool graphs_on() const;

  struct Impl;

 private:
  explicit CudaFramePath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether this build has the CUDA frame path.
bool cuda_frame_path_built();

}  // namespace mirage
