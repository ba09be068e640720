// The CUDA frame path (cuda_frame_path.h). Built only when the libtorch
// found has CUDA; the one translation unit with CUDA headers.
#include "cuda_frame_path.h"

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstring>
#include <map>
#include <sstream>

#include "frame_convert.h"

namespace mirage {

namespace {

constexpr size_t kMaxGraphs = 16;       // captured shapes kept; the least recently used goes
constexpr size_t kMaxStagingPerSize = 64;

// A batch's shape and parameters: what a captured graph is valid for.
std::string key_of(const std::vector<CudaFramePath::Job>& jobs) {
  std::ostringstream k;
  k << jobs.size();
  auto layout = [&](const FrameLayout& l) {
    k << '|' << int(l.format) << ':' << l.width << 'x' << l.height << ':' << l.size << ':' << l.matrix.kr << ','
      << l.matrix.kb << ',' << l.matrix.full_range;
    for (int i = 0; i < 3; ++i) k << ':' << l.offset[size_t(i)] << '/' << l.stride[size_t(i)];
  };
  for (const auto& j : jobs) {
    layout(j.in_layout);
    layout(j.out_layout);
    uint64_t strength_bits = 0;
    std::memcpy(&strength_bits, &j.strength, sizeof strength_bits);
    k << '|' << j.style.size() << ':' << j.style << ':' << strength_bits << ':' << j.seed;
  }
  return k.str();
}

std::string first_line(const std::string& what) { return what.substr(0, what.find('\n')); }

}  // namespace

bool cuda_frame_path_built() { return true; }

struct CudaFramePath::Impl {
  torch::Device device{torch::kCUDA, 0};
  int width = 512, height = 512;
  Graphs graphs = Graphs::kOn;
  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool(false, 0);
  at::cuda::MempoolId_t pool{0, 0};

  // One batch shape: device buffers for each frame in and out (the graph
  // reads and writes these, so they stay put), and its graph once captured.
  struct Entry {
    std::vector<at::Tensor> in_raw, out_raw;
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    bool tried = false;
    uint64_t used = 0;
  };
  std::map<std::string, Entry> entries;  // model thread only
  uint64_t tick = 0;
  bool capture_works = true;

  mutable std::mutex mutex;  // guards the members below
  std::map<std::pair<size_t, size_t>, std::vector<std::shared_ptr<Staging>>> free_staging;
  std::vector<std::string> notices;
  uint64_t captures = 0, replays = 0;

  void notice(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    notices.push_back(text);
  }

  Entry& entry(const std::string& key, const std::vector<Job>& jobs) {
    auto it = entries.find(key);
    if (it == entries.end()) {
      if (entries.size() >= kMaxGraphs) {
        auto oldest = entries.begin();
        for (auto e = entries.begin(); e != entries.end(); ++e)
          if (e->second.used < oldest->second.used) oldest = e;
        entries.erase(oldest);
      }
      Entry fresh;
      const auto bytes = at::TensorOptions().dtype(at::kByte).device(device);
      for (const auto& j : jobs) {
        fresh.in_raw.push_back(at::empty({int64_t(j.in_layout.size)}, bytes));
        fresh.out_raw.push_back(at::zeros({int64_t(j.out_layout.size)}, bytes));
      }
      it = entries.emplace(key, std::move(fresh)).first;
    }
    it->second.used = ++tick;
    return it->second;
  }

  // Conversion in, the model, conversion out: from e.in_raw to e.out_raw,
  // all on the GPU. What a graph captures.
  void body(ModelBackend& model, const std::vector<Job>& jobs, Entry& e) {
    std::vector<at::Tensor> images;
    std::vector<std::string> styles;
    std::vector<double> strengths;
    std::vector<int64_t> seeds;
    for (size_t i = 0; i < jobs.size(); ++i) {
      images.push_back(convert::to_model(jobs[i].in_layout, convert::planes_of(e.in_raw[i], jobs[i].in_layout),
                                         height, width));
      styles.push_back(jobs[i].style);
      strengths.push_back(jobs[i].strength);
      seeds.push_back(jobs[i].seed);
    }
    at::Tensor batch = images.size() == 1 ? images[0] : torch::cat(images, 0);
    at::Tensor out = model.run(batch.to(model.input_dtype), styles, strengths, seeds);
    for (size_t i = 0; i < jobs.size(); ++i)
      convert::from_model(out.narrow(0, int64_t(i), 1), jobs[i].out_layout,
                          convert::planes_of(e.out_raw[i], jobs[i].out_layout));
  }

  void capture(ModelBackend& model, const std::vector<Job>& jobs, Entry& e) {
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    graph->capture_begin(pool);
    try {
      body(model, jobs, e);
    } catch (...) {
      try {
        graph->capture_end();  // leaves capture mode; the failed graph is dropped
      } catch (...) {
      }
      throw;
    }
    graph->capture_end();
    e.graph = std::move(graph);
    std::lock_guard<std::mutex> lock(mutex);
    captures++;
  }
};

std::unique_ptr<CudaFramePath> CudaFramePath::create(const torch::Device& device, int width, int height,
                                                     Graphs graphs, std::string* error) {
  if (!device.is_cuda()) {
    *error = "the CUDA frame path needs a CUDA device, not " + device.str();
    return nullptr;
  }
  try {
    auto impl = std::make_unique<Impl>();
    impl->device = device;
    impl->width = width;
    impl->height = height;
    impl->graphs = graphs;
    impl->stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    impl->pool = at::cuda::graph_pool_handle();  // every graph of this runner shares one pool
    return std::unique_ptr<CudaFramePath>(new CudaFramePath(std::move(impl)));
  } catch (const std::exception& e) {
    *error = "CUDA frame path: " + first_line(e.what());
    return nullptr;
  }
}

CudaFramePath::CudaFramePath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CudaFramePath::~CudaFramePath() {
  if (!impl_) return;
  try {
    impl_->stream.synchronize();
  } catch (...) {
  }
}

std::shared_ptr<Staging> CudaFramePath::acquire_staging(size_t in_bytes, size_t out_bytes) {
  const auto key = std::make_pair(in_bytes, out_bytes);
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    auto& list = impl_->free_staging[key];
    if (!list.empty()) {
      auto s = std::move(list.back());
      list.pop_back();
      return std::shared_ptr<Staging>(s.get(), [this, s, key](Staging*) {
        std::lock_guard<std::mutex> lock(impl_->mutex);
        auto& back = impl_->free_staging[key];
        if (back.size() < kMaxStagingPerSize) back.push_back(s);
      });
    }
  }
  // Pinned (page-locked) host memory: the asynchronous copies need it.
  auto s = std::make_shared<Staging>();
  const auto pinned = at::TensorOptions().dtype(at::kByte).pinned_memory(true);
  s->in = at::empty({int64_t(in_bytes)}, pinned);
  s->out = at::empty({int64_t(out_bytes)}, pinned);
  return std::shared_ptr<Staging>(s.get(), [this, s, key](Staging*) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    auto& back = impl_->free_staging[key];
    if (back.size() < kMaxStagingPerSize) back.push_back(s);
  });
}

void CudaFramePath::run(ModelBackend& model, const std::vector<Job>& jobs) {
  Impl& m = *impl_;
  c10::cuda::CUDAGuard device_guard(m.device);
  c10::cuda::CUDAStreamGuard stream_guard(m.stream);
  Impl::Entry& e = m.entry(key_of(jobs), jobs);
  for (size_t i = 0; i < jobs.size(); ++i) e.in_raw[i].copy_(jobs[i].staging->in, /*non_blocking=*/true);
  if (m.graphs == Graphs::kOn && m.capture_works) {
    if (e.graph) {
      e.graph->replay();
      std::lock_guard<std::mutex> lock(m.mutex);
      m.replays++;
    } else {
      m.body(model, jobs, e);  // this frame's result, and the warm-up a capture needs
      if (!e.tried) {
        e.tried = true;
        try {
          m.capture(model, jobs, e);
        } catch (const std::exception& error) {
          m.capture_works = false;
          m.notice("CUDA graph capture failed, running without graphs from now on: " + first_line(error.what()));
        }
      }
    }
  } else {
    m.body(model, jobs, e);
  }
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].staging->out.copy_(e.out_raw[i], /*non_blocking=*/true);
  m.stream.synchronize();
}

CudaMemoryStats CudaFramePath::memory() const {
  CudaMemoryStats s;
  s.available = true;
  // Index 0 of each stat array is the aggregate over pool kinds (StatType::AGGREGATE).
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(impl_->device.index());
  s.allocation_requests = uint64_t(stats.allocation[0].allocated);
  s.segments = uint64_t(stats.segment[0].allocated);
  s.allocated_bytes = stats.allocated_bytes[0].current;
  s.peak_bytes = stats.allocated_bytes[0].peak;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  s.graph_captures = impl_->captures;
  s.graph_replays = impl_->replays;
  return s;
}

std::vector<std::string> CudaFramePath::take_notices() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<std::string> out;
  out.swap(impl_->notices);
  return out;
}

bool CudaFramePath::graphs_on() const { return impl_->graphs == Graphs::kOn && impl_->capture_works; }

}  // namespace mirage
