// gpu-core-bench: the element's frame path measured without GStreamer (the
// GPU machine has none). It drives ModelRunner exactly as diffusionfilter
// does: a leaky single-buffer slot and a worker thread per stream, the
// process-wide shared model and its one model thread, batching through
// max-batch, frames arriving live at 30 fps.
//
//   gpu-core-bench --model M.pt [--model-fp32 M32.pt] [--package M.pt2] [--device cuda]
//                  [--frames 300] [--stream-seconds 8] [--lag-seconds 10]
//                  [--ceiling-ms X] [--json OUT.json]
//
// Tables (markdown): the core path (RGB and NV12 1280x720 camera frames in
// and out, CUDA graphs on and off, each precision given, the AOTI package),
// streams sharing the model (1, 2, 4, 8; batching on and off), the lag over
// time of one live stream, and the CUDA allocator's counters across the
// frames of a row. --ceiling-ms is the plain PyTorch CUDA-graph replay of the
// same module measured by tools/bench/gpu_bench.py in the same run: the
// core rows are compared with it. --device cpu runs everything on the CPU
// (tools/gpu/device-run.sh --dry-run, with a tiny model).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "latest_slot.h"
#include "model_runner.h"

namespace {

using Clock = std::chrono::steady_clock;
using mirage::FrameLayout;
using mirage::PixelFormat;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

// A camera frame: a gradient that moves with |index|, in |layout|.
std::vector<uint8_t> camera_frame(const FrameLayout& l, int index) {
  std::vector<uint8_t> data(l.size);
  for (int y = 0; y < l.height; ++y) {
    uint8_t* row = data.data() + l.offset[0] + size_t(l.stride[0]) * size_t(y);
    const int channels = l.format == PixelFormat::kRGB ? 3 : l.is_yuv() ? 1 : 4;
    for (int x = 0; x < l.width; ++x)
      for (int c = 0; c < channels; ++c) row[x * channels + c] = uint8_t((x + y + index * 7 + c * 60) & 255);
  }
  for (int p = 1; p < l.plane_count(); ++p)
    std::fill(data.begin() + long(l.offset[size_t(p)]),
              data.begin() + long(l.offset[size_t(p)] + size_t(l.stride[size_t(p)]) * size_t(l.chroma_height())), 128);
  return data;
}

struct Options {
  std::string model, model_fp32, package, device = "cuda";
  int frames = 300;
  double stream_seconds = 8, lag_seconds = 10, ceiling_ms = 0;
  std::string json;
};

struct Json {
  std::string text = "{";
  void add(const std::string& key, const std::string& value) {
    if (text.size() > 1) text += ",";
    text += "\"" + key + "\":" + value;
  }
};

std::shared_ptr<mirage::ModelRunner> acquire(const Options& o, const std::string& path, const std::string& graph,
                                             std::string* error) {
  mirage::ModelOptions m;
  m.path = path;
  m.device = o.device;
  m.cuda_graph = graph;
  return mirage::acquire_model(m, {"", 0.5, 0}, error);
}

// Frames back to back through one runner: ms per frame and what the
// allocator did across them.
struct PathRow {
  double fps = 0, ms = 0, model_ms = 0;
  uint64_t allocations = 0, segments = 0, replays = 0;
  int64_t peak_bytes = 0;
  bool graphs = false;
  std::string error;
};

PathRow run_path(mirage::ModelRunner& runner, PixelFormat format, int frames) {
  PathRow row;
  const FrameLayout l = FrameLayout::tight(format, 1280, 720);
  std::vector<std::vector<uint8_t>> inputs;
  for (int i = 0; i < 4; ++i) inputs.push_back(camera_frame(l, i));
  std::vector<uint8_t> out(l.size);
  const mirage::InferenceParams params{runner.styles().empty() ? "" : runner.styles().front(), 0.5, 7};
  for (int i = 0; i < 10; ++i) {  // warm-up: the first frames of a shape run eagerly and are captured
    auto s = runner.process(l, mirage::planes_at(l, inputs[0].data()), l, mirage::planes_at(l, out.data()), params);
    if (!s.ok()) {
      row.error = s.message();
      return row;
    }
  }
  const mirage::CudaMemory before = runner.cuda_memory();
  double model_ms = 0;
  const auto start = Clock::now();
  for (int i = 0; i < frames; ++i) {
    mirage::FrameTiming t;
    auto s = runner.process(l, mirage::planes_at(l, inputs[size_t(i) % inputs.size()].data()), l,
                            mirage::planes_at(l, out.data()), params, &t);
    if (!s.ok()) {
      row.error = s.message();
      return row;
    }
    model_ms += t.model_ms;
  }
  const double total = ms_between(start, Clock::now());
  const mirage::CudaMemory after = runner.cuda_memory();
  row.ms = total / frames;
  row.fps = 1000.0 / row.ms;
  row.model_ms = model_ms / frames;
  row.allocations = after.allocation_requests - before.allocation_requests;
  row.segments = after.segments - before.segments;
  row.replays = after.graph_replays - before.graph_replays;
  row.peak_bytes = after.peak_bytes;
  row.graphs = runner.cuda_graphs();
  return row;
}

// Live streams into one shared model, each as diffusionfilter runs it.
struct StreamsRow {
  double least = 0, most = 0, total = 0, mean_lag = 0, worst_p95 = 0;
  int largest_batch = 0;
};

StreamsRow run_streams(const Options& o, const std::string& path, int n, int max_batch, double seconds) {
  struct Frame {
    int index;
    Clock::time_point captured;
  };
  struct Stream {
    mirage::LatestSlot<Frame> slot;
    std::vector<double> lags;
    int processed = 0;
  };
  std::string error;
  auto probe = acquire(o, path, "auto", &error);
  if (!probe) {
    std::fprintf(stderr, "gpu-core-bench: %s\n", error.c_str());
    return {};
  }
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < n; ++i) streams.push_back(std::make_unique<Stream>());
  const FrameLayout l = FrameLayout::tight(PixelFormat::kNV12, 1280, 720);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto begin = Clock::now() + std::chrono::milliseconds(500);  // measured after a warm-up
  for (int s = 0; s < n; ++s) {
    Stream& st = *streams[size_t(s)];
    threads.emplace_back([&, s] {  // the camera: 30 fps, live
      int index = 0;
      auto next = Clock::now();
      while (!stop) {
        st.slot.put({index++, Clock::now()});
        next += std::chrono::microseconds(33333);
        std::this_thread::sleep_until(next);
      }
      st.slot.close();
      (void)s;
    });
    threads.emplace_back([&, s] {  // the element's worker
      std::string why;
      auto runner = acquire(o, path, "auto", &why);  // the shared one
      std::vector<uint8_t> in = camera_frame(l, s), out(l.size);
      const mirage::InferenceParams params{runner->styles().empty() ? "" : runner->styles()[size_t(s) % runner->styles().size()],
                                           0.5, s};
      while (auto frame = st.slot.take()) {
        runner->process(l, mirage::planes_at(l, in.data()), l, mirage::planes_at(l, out.data()), params, nullptr,
                        max_batch);
        const auto now = Clock::now();
        if (now >= begin) {
          st.lags.push_back(ms_between(frame->captured, now));
          st.processed++;
        }
        st.slot.done();
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500) + std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  StreamsRow row;
  row.least = 1e9;
  double lag_sum = 0;
  size_t lag_n = 0;
  for (auto& st : streams) {
    const double fps = st->processed / seconds;
    row.least = std::min(row.least, fps);
    row.most = std::max(row.most, fps);
    row.total += fps;
    for (double v : st->lags) lag_sum += v;
    lag_n += st->lags.size();
    row.worst_p95 = std::max(row.worst_p95, percentile(st->lags, 0.95));
  }
  row.mean_lag = lag_n ? lag_sum / double(lag_n) : 0;
  row.largest_batch = probe->batch_stats().largest;
  return row;
}

int usage() {
  std::fprintf(stderr, "usage: gpu-core-bench --model M.pt [--model-fp32 M32.pt] [--package M.pt2] [--device D] "
                       "[--frames N] [--stream-seconds S] [--lag-seconds S] [--ceiling-ms X] [--json OUT]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") o.model = v;
    else if (k == "--model-fp32") o.model_fp32 = v;
    else if (k == "--package") o.package = v;
    else if (k == "--device") o.device = v;
    else if (k == "--frames") o.frames = std::atoi(v.c_str());
    else if (k == "--stream-seconds") o.stream_seconds = std::atof(v.c_str());
    else if (k == "--lag-seconds") o.lag_seconds = std::atof(v.c_str());
    else if (k == "--ceiling-ms") o.ceiling_ms = std::atof(v.c_str());
    else if (k == "--json") o.json = v;
    else return usage();
  }
  if (o.model.empty()) return usage();
  Json json;
  std::printf("core: CUDA frame path %s, AOTI packages %s\n", mirage::cuda_frame_path_available() ? "built" : "not built",
              mirage::aoti_packages_available() ? "loadable" : "not loadable");

  // 1. The core path, frames back to back.
  std::printf("\n## Core path: 1280x720 camera frames in and out, one stream, back to back (%d frames a row)\n\n",
              o.frames);
  std::printf("| model | precision | input | CUDA graph | fps | ms/frame | model thread ms | vs. plain graph ceiling | "
              "overhead ms | allocations over the row | cudaMalloc | replays | peak MiB |\n");
  std::printf("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  struct Model {
    std::string label, path;
  };
  std::vector<Model> models = {{"TorchScript", o.model}};
  if (!o.model_fp32.empty()) models.push_back({"TorchScript", o.model_fp32});
  if (!o.package.empty()) models.push_back({"AOTI package", o.package});
  std::string rows_json = "[";
  for (const auto& m : models) {
    for (const char* graph : {"on", "off"}) {
      std::string error;
      auto runner = acquire(o, m.path, graph, &error);
      if (!runner) {
        std::printf("| %s | | | %s | load failed: %s | | | | | | | | |\n", m.label.c_str(), graph, error.c_str());
        continue;
      }
      for (PixelFormat f : {PixelFormat::kRGB, PixelFormat::kNV12}) {
        PathRow r = run_path(*runner, f, o.frames);
        for (const auto& n : runner->take_notices()) std::printf("notice: %s\n", n.c_str());
        if (!r.error.empty()) {
          std::printf("| %s | %s | %s | %s | failed: %s | | | | | | | | |\n", m.label.c_str(), runner->precision().c_str(),
                      mirage::to_string(f), graph, r.error.c_str());
          continue;
        }
        const std::string ratio = o.ceiling_ms > 0 ? std::to_string(o.ceiling_ms / r.ms).substr(0, 4) + "x" : "-";
        char overhead[32] = "-";
        if (o.ceiling_ms > 0) std::snprintf(overhead, sizeof overhead, "%.2f", r.ms - o.ceiling_ms);
        std::printf("| %s | %s | %s 1280x720 | %s%s | %.1f | %.2f | %.2f | %s | %s | %llu | %llu | %llu | %.0f |\n",
                    m.label.c_str(), runner->precision().c_str(), mirage::to_string(f), graph,
                    std::string(graph) == "on" && !r.graphs ? " (not active)" : "", r.fps, r.ms, r.model_ms,
                    ratio.c_str(), overhead, (unsigned long long)r.allocations, (unsigned long long)r.segments,
                    (unsigned long long)r.replays, double(r.peak_bytes) / 1048576.0);
        char row[512];
        std::snprintf(row, sizeof row,
                      "%s{\"model\":\"%s\",\"precision\":\"%s\",\"input\":\"%s\",\"graph\":\"%s\",\"graphs_active\":%s,"
                      "\"fps\":%.2f,\"ms\":%.3f,\"allocations\":%llu,\"segments\":%llu,\"replays\":%llu,\"peak_bytes\":%lld}",
                      rows_json.size() > 1 ? "," : "", m.label.c_str(), runner->precision().c_str(), mirage::to_string(f),
                      graph, r.graphs ? "true" : "false", r.fps, r.ms, (unsigned long long)r.allocations,
                      (unsigned long long)r.segments, (unsigned long long)r.replays, (long long)r.peak_bytes);
        rows_json += row;
      }
    }
  }
  json.add("core_path", rows_json + "]");
  if (o.ceiling_ms > 0)
    std::printf("\nceiling: the plain PyTorch CUDA-graph replay of the same module, %.2f ms a frame "
                "(tools/bench/gpu_bench.py, same run). ms/frame is wall time per frame including the copies in and out.\n",
                o.ceiling_ms);

  // 2. Streams sharing the model.
  std::printf("\n## Streams sharing one model (live 30 fps NV12 1280x720 each, %.0f s a row)\n\n", o.stream_seconds);
  std::printf("| streams | batching | fps per stream, least | most | total fps | mean lag ms | worst p95 lag ms | largest batch |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|---:|\n");
  std::string streams_json = "[";
  for (int n : {1, 2, 4, 8}) {
    for (int max_batch : {8, 1}) {
      StreamsRow r = run_streams(o, o.model, n, max_batch, o.stream_seconds);
      std::printf("| %d | %s | %.1f | %.1f | %.1f | %.0f | %.0f | %d |\n", n, max_batch > 1 ? "on (max-batch 8)" : "off",
                  r.least, r.most, r.total, r.mean_lag, r.worst_p95, r.largest_batch);
      std::fflush(stdout);
      char row[256];
      std::snprintf(row, sizeof row,
                    "%s{\"streams\":%d,\"batching\":%s,\"least\":%.2f,\"most\":%.2f,\"total\":%.2f,\"mean_lag\":%.1f,"
                    "\"worst_p95\":%.1f}",
                    streams_json.size() > 1 ? "," : "", n, max_batch > 1 ? "true" : "false", r.least, r.most, r.total,
                    r.mean_lag, r.worst_p95);
      streams_json += row;
    }
  }
  json.add("streams", streams_json + "]");

  // 3. The lag of one live stream over time (never growing: the leaky slot).
  std::printf("\n## Lag of one live 30 fps stream over time (ms, mean over each second)\n\n|");
  {
    struct Frame {
      Clock::time_point captured;
    };
    mirage::LatestSlot<Frame> slot;
    std::string error;
    auto runner = acquire(o, o.model, "auto", &error);
    if (!runner) {
      std::printf(" load failed: %s |\n", error.c_str());
    } else {
      const FrameLayout l = FrameLayout::tight(PixelFormat::kNV12, 1280, 720);
      std::vector<uint8_t> in = camera_frame(l, 1), out(l.size);
      std::vector<std::pair<double, double>> samples;  // seconds since start, lag
      const auto start = Clock::now();
      std::atomic<bool> stop{false};
      std::thread camera([&] {
        auto next = Clock::now();
        while (!stop) {
          slot.put({Clock::now()});
          next += std::chrono::microseconds(33333);
          std::this_thread::sleep_until(next);
        }
        slot.close();
      });
      std::thread worker([&] {
        while (auto frame = slot.take()) {
          runner->process(l, mirage::planes_at(l, in.data()), l, mirage::planes_at(l, out.data()), {"", 0.5, 0});
          const auto now = Clock::now();
          samples.emplace_back(ms_between(start, now) / 1000.0, ms_between(frame->captured, now));
          slot.done();
        }
      });
      std::this_thread::sleep_for(std::chrono::duration<double>(o.lag_seconds));
      stop = true;
      camera.join();
      worker.join();
      const int seconds = int(o.lag_seconds);
      for (int t = 1; t <= seconds; ++t) std::printf(" %d s |", t);
      std::printf(" outputs/s |\n|");
      for (int t = 0; t <= seconds; ++t) std::printf("---:|");
      std::printf("\n|");
      std::string lag_json = "[";
      for (int t = 1; t <= seconds; ++t) {
        double sum = 0;
        int n = 0;
        for (auto& [at, lag] : samples)
          if (at >= t - 1 && at < t) sum += lag, ++n;
        std::printf(n ? " %.0f |" : " - |", n ? sum / n : 0.0);
        lag_json += (t > 1 ? "," : "") + std::to_string(n ? sum / n : 0.0);
      }
      std::printf(" %.1f |\n", samples.size() / o.lag_seconds);
      json.add("lag_per_second", lag_json + "]");
    }
  }
  json.text += "}";
  if (!o.json.empty()) std::ofstream(o.json) << json.text << "\n";
  return 0;
}
