// mirage-bench: the benchmarks behind `./dev bench`. Prints tables that put
// designs side by side, measured in one run on this machine.
//
//   mirage-bench [--lag-seconds N] [--frames N] [--sharing-seconds N]
//
// 1. Per-frame overhead of diffusionfilter with an identity model: the
//    worker's conversion cost around forward(), and the streaming thread's
//    cost per input frame against GStreamer's own identity element.
// 2. Lag of a live 30 fps stream into a 500 ms model over time:
//    diffusionfilter (processed and hold) against the naive design, an
//    unbounded queue before a filter that blocks for the model's time.
// 3. Many streams on one model: 1 to 8 live streams in this process share
//    one loaded model with a fixed cost per call, with batching on and off.
#include <gst/gst.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lag_probe.h"
#include "sample_models.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Pipeline {
  GstElement* element = nullptr;
  explicit Pipeline(const std::string& description) {
    GError* error = nullptr;
    element = gst_parse_launch(description.c_str(), &error);
    if (!element) {
      std::fprintf(stderr, "mirage-bench: %s\n  in: %s\n", error->message, description.c_str());
      std::exit(1);
    }
  }
  ~Pipeline() {
    gst_element_set_state(element, GST_STATE_NULL);
    gst_object_unref(element);
  }
  GstElement* child(const char* name) const { return gst_bin_get_by_name(GST_BIN(element), name); }

  // Plays until EOS; returns the wall time in seconds.
  double run_to_eos() {
    auto start = Clock::now();
    gst_element_set_state(element, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(element);
    GstMessage* m = gst_bus_timed_pop_filtered(bus, 600 * GST_SECOND,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (!m || GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      std::fprintf(stderr, "mirage-bench: pipeline failed\n");
      std::exit(1);
    }
    gst_message_unref(m);
    gst_object_unref(bus);
    return std::chrono::duration<double>(Clock::now() - start).count();
  }
};

struct Stats {
  guint64 in = 0, processed = 0, dropped = 0;
  double inference_ms = 0, overhead_ms = 0;
};

// The last diffusionfilter-stats message before EOS.
Stats run_and_collect(Pipeline& p) {
  Stats stats;
  gst_element_set_state(p.element, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p.element);
  while (GstMessage* m = gst_bus_timed_pop_filtered(
             bus, 600 * GST_SECOND,
             GstMessageType(GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS | GST_MESSAGE_ERROR))) {
    const bool done = GST_MESSAGE_TYPE(m) != GST_MESSAGE_ELEMENT;
    if (gst_message_has_name(m, "diffusionfilter-stats")) {
      const GstStructure* s = gst_message_get_structure(m);
      gst_structure_get(s, "frames-in", G_TYPE_UINT64, &stats.in, "frames-processed", G_TYPE_UINT64,
                        &stats.processed, "frames-dropped", G_TYPE_UINT64, &stats.dropped,
                        "inference-ms", G_TYPE_DOUBLE, &stats.inference_ms, "overhead-ms",
                        G_TYPE_DOUBLE, &stats.overhead_ms, nullptr);
    }
    gst_message_unref(m);
    if (done) break;
  }
  gst_object_unref(bus);
  return stats;
}

// Steady-state time per buffer at the sink: from the first buffer to the
// last, so set-up, model warm-up and the EOS drain are not counted.
double us_per_buffer(const std::string& description) {
  Pipeline p(description);
  GstElement* sink = p.child("sink");
  GstPad* pad = gst_element_get_static_pad(sink, "sink");
  struct Times {
    Clock::time_point first, last;
    guint64 count = 0;
  } times;
  gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo*, gpointer data) {
        auto* t = static_cast<Times*>(data);
        t->last = Clock::now();
        if (t->count++ == 0) t->first = t->last;
        return GST_PAD_PROBE_OK;
      },
      &times, nullptr);
  p.run_to_eos();
  gst_object_unref(pad);
  gst_object_unref(sink);
  if (times.count < 2) return 0;
  return std::chrono::duration<double, std::micro>(times.last - times.first).count() / double(times.count - 1);
}

void overhead_table(const std::string& dir, int frames) {
  const std::string identity = dir + "/identity.pt";
  const std::string slow = dir + "/delay1000.pt";
  std::printf("\n## Per-frame overhead (identity model at 512x512, CPU, %u threads)\n\n",
              std::thread::hardware_concurrency());
  std::printf("| input | format | processed of %d (60 fps live) | worker ms/frame | of which forward() | "
              "conversion in+out | streaming thread us/frame: identity | diffusionfilter hold |\n",
              frames);
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
  struct Case {
    int width, height;
    const char* format;
  };
  for (Case c : {Case{512, 512, "RGB"}, Case{512, 512, "I420"}, Case{1280, 720, "RGB"},
                 Case{1280, 720, "I420"}}) {
    char caps[160];
    std::snprintf(caps, sizeof caps, "video/x-raw,format=%s,width=%d,height=%d", c.format, c.width,
                  c.height);
    // The worker: a 60 fps camera, so the worker runs most frames and its
    // averages (over the last ~20 frames) are the cost of one processed frame.
    Pipeline worker("videotestsrc is-live=true num-buffers=" + std::to_string(frames) +
                    " pattern=smpte ! " + caps + ",framerate=60/1 ! diffusionfilter model=" + identity +
                    " output-mode=processed width=512 height=512 ! fakesink");
    Stats s = run_and_collect(worker);

    // The streaming thread: a flood of frames through GStreamer's identity,
    // and through diffusionfilter in hold mode with a model too slow to
    // matter (almost every frame takes the put-and-push path only).
    const std::string src = "videotestsrc num-buffers=" + std::to_string(frames * 4) + " ! " + caps +
                            ",framerate=30/1 ! ";
    const double base_us = us_per_buffer(src + "identity ! fakesink name=sink");
    const double hold_us =
        us_per_buffer(src + "diffusionfilter model=" + slow + " width=64 height=64 ! fakesink name=sink");
    std::printf("| %dx%d | %s | %llu | %.2f | %.2f | %.2f | %.1f | %.1f |\n", c.width, c.height,
                c.format, (unsigned long long)s.processed, s.inference_ms + s.overhead_ms,
                s.inference_ms, s.overhead_ms, base_us, hold_us);
    std::fflush(stdout);
  }
  std::printf("\nworker: the element's own averages (diffusionfilter-stats). Streaming thread: "
              "steady-state time per frame of videotestsrc ! X ! fakesink, the source's cost "
              "included; the difference between the columns is what diffusionfilter adds.\n");
}

void lag_table(const std::string& dir, int seconds) {
  const std::string model = dir + "/delay500.pt";
  const std::string source =
      "videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ";
  std::printf("\n## Lag of a live 30 fps stream into a 500 ms model (ms; mean over each second)\n\n");
  struct Design {
    const char* name;
    std::string description;
    bool source_meta;
  };
  std::vector<Design> designs = {
      {"diffusionfilter processed", source + "diffusionfilter model=" + model +
                                        " width=64 height=64 output-mode=processed ! fakesink name=sink sync=false",
       true},
      {"diffusionfilter hold", source + "diffusionfilter model=" + model +
                                   " width=64 height=64 ! fakesink name=sink sync=false",
       true},
      {"naive: queue ! blocking filter",
       source + "queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! identity sleep-time=500000 ! "
                "fakesink name=sink sync=false",
       false},
  };
  // All three run at once, against the same wall clock.
  std::vector<std::unique_ptr<Pipeline>> pipelines;
  std::vector<std::unique_ptr<mirage::bench::LagProbe>> probes;
  for (const Design& d : designs) {
    pipelines.push_back(std::make_unique<Pipeline>(d.description));
    GstElement* sink = pipelines.back()->child("sink");
    GstPad* pad = gst_element_get_static_pad(sink, "sink");
    probes.push_back(std::make_unique<mirage::bench::LagProbe>(pipelines.back()->element, pad, d.source_meta));
    gst_object_unref(pad);
    gst_object_unref(sink);
  }
  for (auto& p : pipelines) gst_element_set_state(p->element, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipelines[0]->element);
  GstMessage* error = gst_bus_timed_pop_filtered(bus, seconds * GST_SECOND, GST_MESSAGE_ERROR);
  if (error) {
    std::fprintf(stderr, "mirage-bench: lag pipeline failed\n");
    std::exit(1);
  }
  gst_object_unref(bus);
  for (auto& p : pipelines) gst_element_set_state(p->element, GST_STATE_NULL);

  std::printf("| design |");
  const int step = seconds >= 30 ? 10 : 2;
  for (int t = step; t <= seconds; t += step) std::printf(" %d s |", t);
  std::printf(" outputs/s |\n|---|");
  for (int t = step; t <= seconds; t += step) std::printf("---:|");
  std::printf("---:|\n");
  for (size_t i = 0; i < designs.size(); ++i) {
    auto samples = probes[i]->samples();
    std::printf("| %s |", designs[i].name);
    for (int t = step; t <= seconds; t += step) {
      double sum = 0;
      int n = 0;
      for (const auto& s : samples)
        if (s.at_s > t - 1 && s.at_s <= t) sum += s.lag_ms, ++n;
      if (n) std::printf(" %.0f |", sum / n);
      else std::printf(" - |");
    }
    std::printf(" %.1f |\n", samples.size() / double(seconds));
  }
  std::printf("\nlag = running time a buffer reaches the sink - capture running time of the frame its "
              "image came from.\n");
}

void sharing_table(const std::string& dir, int seconds) {
  const std::string model = dir + "/delay100.pt";
  std::printf("\n## Streams sharing one model (live 30 fps each, a model costing 100 ms per call whatever the "
              "batch, %d s per row)\n\n", seconds);
  std::printf("| streams | batching | processed fps per stream, least | most | total fps | "
              "mean lag ms | worst stream's p95 lag ms |\n|---:|---|---:|---:|---:|---:|---:|\n");
  for (int n : {1, 2, 4, 8})
    for (bool batching : {false, true}) {
      std::vector<std::unique_ptr<Pipeline>> pipelines;
      std::vector<std::unique_ptr<mirage::bench::LagProbe>> probes;
      std::vector<GstElement*> filters;
      for (int i = 0; i < n; ++i) {
        pipelines.push_back(std::make_unique<Pipeline>(
            "videotestsrc is-live=true pattern=ball ! video/x-raw,format=RGB,width=64,height=64,framerate=30/1 "
            "! diffusionfilter name=f output-mode=processed width=64 height=64 max-batch=" +
            std::string(batching ? "8" : "1") + " model=" + model + " ! fakesink name=sink sync=false"));
        GstElement* sink = pipelines.back()->child("sink");
        GstPad* pad = gst_element_get_static_pad(sink, "sink");
        probes.push_back(std::make_unique<mirage::bench::LagProbe>(pipelines.back()->element, pad, true));
        gst_object_unref(pad);
        gst_object_unref(sink);
        filters.push_back(pipelines.back()->child("f"));
      }
      for (auto& p : pipelines) gst_element_set_state(p->element, GST_STATE_PLAYING);
      std::this_thread::sleep_for(std::chrono::seconds(seconds));
      std::vector<double> fps;
      double lag_sum = 0, worst_p95 = 0;
      size_t lag_n = 0;
      for (int i = 0; i < n; ++i) {
        guint64 processed = 0;
        g_object_get(filters[size_t(i)], "frames-processed", &processed, nullptr);
        fps.push_back(double(processed) / seconds);
        std::vector<double> lags;
        for (const auto& sample : probes[size_t(i)]->samples())
          if (sample.at_s > 1) lags.push_back(sample.lag_ms);  // after the start-up
        for (double l : lags) lag_sum += l;
        lag_n += lags.size();
        std::sort(lags.begin(), lags.end());
        if (!lags.empty()) worst_p95 = std::max(worst_p95, lags[std::min(lags.size() - 1, lags.size() * 95 / 100)]);
      }
      for (auto& p : pipelines) gst_element_set_state(p->element, GST_STATE_NULL);
      for (auto* f : filters) gst_object_unref(f);
      double total = 0;
      for (double f : fps) total += f;
      std::printf("| %d | %s | %.1f | %.1f | %.1f | %.0f | %.0f |\n", n, batching ? "on (max-batch=8)" : "off",
                  *std::min_element(fps.begin(), fps.end()), *std::max_element(fps.begin(), fps.end()), total, lag_n ? lag_sum / double(lag_n) : 0.0, worst_p95);
      std::fflush(stdout);
    }
  std::printf("\nOne model load and one model thread in every row. A fixed cost per call is how a GPU behaves "
              "at small batches; on a CPU a real model's cost grows with the batch.\n");
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int lag_seconds = 60, frames = 180, sharing_seconds = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--lag-seconds")) lag_seconds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--frames")) frames = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--sharing-seconds")) sharing_seconds = std::atoi(argv[i + 1]);
  }
  char dir_template[] = "/tmp/mirage-bench-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  for (auto [name, ms] : {std::pair{"identity", 0}, {"delay100", 100}, {"delay500", 500}, {"delay1000", 1000}}) {
    mirage::Status s = mirage::models::write_delay(dir + "/" + name + ".pt", ms);
    if (!s.ok()) {
      std::fprintf(stderr, "mirage-bench: %s\n", s.message().c_str());
      return 1;
    }
  }
  std::printf("# mirage-bench (%u hardware threads)\n", std::thread::hardware_concurrency());
  overhead_table(dir, frames);
  lag_table(dir, lag_seconds);
  sharing_table(dir, sharing_seconds);
  std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
