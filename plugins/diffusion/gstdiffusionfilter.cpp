/**
 * SECTION:element-diffusionfilter
 *
 * Runs a TorchScript img2img model (docs/model-contract.md) on live video.
 * Inference may take far longer than a frame interval, so the element keeps
 * a leaky single-buffer queue: the streaming thread never waits for the
 * model, each incoming frame replaces the one waiting (counted as dropped),
 * and a worker thread takes the newest waiting frame whenever the model is
 * free. The lag therefore stays under one model run plus two frame
 * intervals, however long the stream runs.
 *
 * output-mode=hold (default) pushes one output frame per input frame,
 * carrying the newest processed image (a neutral grey placeholder before the
 * first one: never the raw input). output-mode=processed pushes one buffer
 * per processed frame, from the worker thread, with the timestamps of the
 * input it was computed from; the latency query reports the model's time.
 *
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! diffusionfilter model=m.pt style=toon ! videoconvert ! autovideosink
 * ]|
 *
 * Threads and locks (lock order: output_lock, then settings_lock or
 * stats_lock; the slot's own lock is a leaf and never held while calling
 * out). output_lock is held across pushes, which can block in a sink's
 * preroll until the application changes state: so nothing the application
 * thread runs before PAUSED->READY (queries, properties) may take it.
 * - the streaming thread (chain, sink events) puts frames into the slot and,
 *   in hold mode, pushes the held image;
 * - the worker takes frames, runs the model and stores (hold) or pushes
 *   (processed) the result;
 * - the application thread sets properties and changes state.
 */
#include "gstdiffusionfilter.h"

#include <gst/video/video.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "latest_slot.h"
#include "model_runner.h"
#include "moving_average.h"
#include "video_frame.h"

GST_DEBUG_CATEGORY_STATIC(gst_diffusion_filter_debug);
#define GST_CAT_DEFAULT gst_diffusion_filter_debug

#define DEFAULT_DEVICE "auto"
#define DEFAULT_PRECISION "auto"
#define DEFAULT_CUDA_GRAPH "auto"
#define DEFAULT_STYLE ""
#define DEFAULT_STRENGTH 0.5
#define DEFAULT_SEED 0
#define DEFAULT_MAX_BATCH 4
#define MAX_MAX_BATCH 64
#define DEFAULT_OUTPUT_MODE GST_DIFFUSION_FILTER_OUTPUT_HOLD
#define DEFAULT_SIZE 0
#define MIN_MODEL_SIZE 8
#define MAX_MODEL_SIZE 8192

// After this many inference failures in a row the element posts an error.
constexpr int kMaxConsecutiveFailures = 10;
constexpr auto kStatsInterval = std::chrono::seconds(1);

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_STYLE,
  PROP_STRENGTH,
  PROP_SEED,
  PROP_OUTPUT_MODE,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_MAX_BATCH,
  PROP_PRECISION,
  PROP_CUDA_GRAPH,
  PROP_FRAMES_IN,
  PROP_FRAMES_PROCESSED,
  PROP_FRAMES_DROPPED,
  PROP_INFERENCE_MS,
  PROP_STYLES,
  PROP_BATCH_SIZES,
};

#define DIFFUSION_CAPS GST_VIDEO_CAPS_MAKE("{ RGB, RGBA, BGRx, BGRA, I420, NV12 }")

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(DIFFUSION_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(DIFFUSION_CAPS));

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

struct BufferUnref {
  void operator()(GstBuffer* buffer) const { gst_buffer_unref(buffer); }
};
using BufferPtr = std::unique_ptr<GstBuffer, BufferUnref>;

// Property values. The streaming code takes a copy per frame.
struct Settings {
  std::string model;
  std::string device = DEFAULT_DEVICE;
  std::string precision = DEFAULT_PRECISION;
  std::string cuda_graph = DEFAULT_CUDA_GRAPH;
  std::string style = DEFAULT_STYLE;
  double strength = DEFAULT_STRENGTH;
  gint64 seed = DEFAULT_SEED;
  int max_batch = DEFAULT_MAX_BATCH;
  GstDiffusionFilterOutputMode output_mode = DEFAULT_OUTPUT_MODE;
  int width = DEFAULT_SIZE;
  int height = DEFAULT_SIZE;
};

// A frame waiting in the slot for the model.
struct PendingFrame {
  BufferPtr buffer;
  uint64_t caps_epoch;      // which negotiated format the buffer is in
  uint64_t generation;      // the slot's generation when it was put
  Clock::time_point arrival;  // "capture time" for the lag
};

// The negotiated format; a CAPS event starts a new epoch.
struct Format {
  GstVideoInfo info;
  mirage::FrameLayout layout;
  uint64_t epoch = 0;
};

bool layout_from_info(const GstVideoInfo* info, mirage::FrameLayout* layout) {
  switch (GST_VIDEO_INFO_FORMAT(info)) {
    case GST_VIDEO_FORMAT_RGB: layout->format = mirage::PixelFormat::kRGB; break;
    case GST_VIDEO_FORMAT_RGBA: layout->format = mirage::PixelFormat::kRGBA; break;
    case GST_VIDEO_FORMAT_BGRx: layout->format = mirage::PixelFormat::kBGRx; break;
    case GST_VIDEO_FORMAT_BGRA: layout->format = mirage::PixelFormat::kBGRA; break;
    case GST_VIDEO_FORMAT_I420: layout->format = mirage::PixelFormat::kI420; break;
    case GST_VIDEO_FORMAT_NV12: layout->format = mirage::PixelFormat::kNV12; break;
    default: return false;
  }
  layout->width = GST_VIDEO_INFO_WIDTH(info);
  layout->height = GST_VIDEO_INFO_HEIGHT(info);
  for (guint i = 0; i < GST_VIDEO_INFO_N_PLANES(info) && i < 3; ++i) {
    layout->offset[i] = GST_VIDEO_INFO_PLANE_OFFSET(info, i);
    layout->stride[i] = GST_VIDEO_INFO_PLANE_STRIDE(info, i);
  }
  layout->size = GST_VIDEO_INFO_SIZE(info);
  gdouble kr, kb;
  if (gst_video_color_matrix_get_Kr_Kb(info->colorimetry.matrix, &kr, &kb)) {
    layout->matrix.kr = kr;
    layout->matrix.kb = kb;
  }
  layout->matrix.full_range = info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
  return true;
}

// A mapped video frame with its planes in the core's terms.
class MappedFrame {
 public:
  MappedFrame(const GstVideoInfo* info, GstBuffer* buffer, GstMapFlags flags) {
    mapped_ = gst_video_frame_map(&frame_, const_cast<GstVideoInfo*>(info), buffer, flags);
    if (mapped_ && layout_from_info(&frame_.info, &layout_)) {
      for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES(&frame_) && i < 3; ++i)
        planes_.data[i] = static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame_, i));
    }
  }
  ~MappedFrame() {
    if (mapped_) gst_video_frame_unmap(&frame_);
  }
  MappedFrame(const MappedFrame&) = delete;
  MappedFrame& operator=(const MappedFrame&) = delete;

  bool ok() const { return mapped_; }
  const mirage::FrameLayout& layout() const { return layout_; }
  const mirage::Planes& planes() const { return planes_; }

 private:
  GstVideoFrame frame_;
  bool mapped_ = false;
  mirage::FrameLayout layout_;
  mirage::Planes planes_;
};

GstCaps* source_timestamp_caps() {
  static GstCaps* caps = gst_caps_new_empty_simple("timestamp/x-diffusionfilter-source");
  return caps;
}

}  // namespace

// Upper bounds (ms) of the inference-time buckets in the stats message.
constexpr double kInferenceBoundsMs[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
constexpr size_t kInferenceBuckets = std::size(kInferenceBoundsMs) + 1;

struct GstDiffusionFilterPrivate {
  // Guards |settings| and |known_styles|, and the writes of |runner| (the
  // batch-sizes property reads it from any thread).
  std::mutex settings_lock;
  Settings settings;
  std::vector<std::string> known_styles;  // of the loaded model; empty: any

  mirage::LatestSlot<PendingFrame> slot;

  // Created on READY->PAUSED before the worker starts, destroyed on
  // PAUSED->READY after it joined; only the worker uses them in between
  // (and batch-sizes, under settings_lock).
  std::shared_ptr<mirage::ModelRunner> runner;
  std::thread worker;
  int consecutive_failures = 0;
  // Fixed while PAUSED or PLAYING (output-mode is a READY-only property).
  GstDiffusionFilterOutputMode mode = DEFAULT_OUTPUT_MODE;

  // Guards the members below up to the counters. Held while pushing on the
  // src pad so that buffers and serialized events leave in order whichever
  // thread sends them. Never held by the FLUSH_START path, which must be
  // able to unblock a push.
  std::mutex output_lock;
  bool have_format = false;
  Format format;
  uint64_t epoch_counter = 0;
  BufferPtr held;  // newest processed image (hold mode), in format.epoch
  Clock::time_point held_arrival;
  BufferPtr placeholder;  // neutral frame in format.epoch, made on demand

  // Duration of one frame at the negotiated framerate (0 when variable).
  // Atomic rather than under output_lock: the latency query runs on the
  // application thread while a push may hold output_lock, blocked in preroll.
  std::atomic<GstClockTime> frame_interval{0};

  std::atomic<guint64> frames_in{0};
  std::atomic<guint64> frames_processed{0};
  std::atomic<guint64> frames_dropped{0};
  // The worker's last push result, returned by chain so upstream learns of
  // errors, EOS or not-linked in processed mode.
  std::atomic<GstFlowReturn> worker_flow{GST_FLOW_OK};

  // Guards the timing statistics below.
  std::mutex stats_lock;
  mirage::MovingAverage inference_ms;  // forward() alone
  mirage::MovingAverage frame_ms;      // conversion + forward() + conversion
  // Every processed frame's forward() time, counted in kInferenceBoundsMs
  // buckets (the last: above them), and their sum: the stats message
  // carries them, cumulative since the element started (a Prometheus
  // histogram).
  std::array<guint64, kInferenceBuckets> inference_counts{};
  double inference_sum_ms = 0;
  double lag_ms = 0;                   // of the newest output frame
  double warmup_ms = 0;
  double announced_latency_ms = 0;     // processed mode, last latency message
  Clock::time_point last_stats;
};

struct _GstDiffusionFilter {
  GstElement parent;
  GstPad* sinkpad;
  GstPad* srcpad;
  GstDiffusionFilterPrivate* priv;
};

G_DEFINE_TYPE(GstDiffusionFilter, gst_diffusion_filter, GST_TYPE_ELEMENT)

GType gst_diffusion_filter_output_mode_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_DIFFUSION_FILTER_OUTPUT_HOLD,
       "One output per input frame, carrying the newest processed image", "hold"},
      {GST_DIFFUSION_FILTER_OUTPUT_PROCESSED, "One output per processed frame", "processed"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstDiffusionFilterOutputMode", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

static Settings settings_snapshot(GstDiffusionFilterPrivate* priv) {
  std::lock_guard<std::mutex> lock(priv->settings_lock);
  return priv->settings;
}

/* --- statistics ---------------------------------------------------------- */

static void post_stats(GstDiffusionFilter* self) {
  GstDiffusionFilterPrivate* priv = self->priv;
  double inference, frame, lag, inference_sum;
  std::array<guint64, kInferenceBuckets> counts;
  {
    std::lock_guard<std::mutex> lock(priv->stats_lock);
    priv->last_stats = Clock::now();
    inference = priv->inference_ms.value();
    frame = priv->frame_ms.value();
    lag = priv->lag_ms;
    counts = priv->inference_counts;
    inference_sum = priv->inference_sum_ms;
  }
  // inference-bounds-ms / inference-counts: the histogram (counts per
  // bucket, not cumulative; one more count than bounds), inference-sum-ms.
  GValue bounds = G_VALUE_INIT, values = G_VALUE_INIT, item = G_VALUE_INIT;
  gst_value_array_init(&bounds, std::size(kInferenceBoundsMs));
  gst_value_array_init(&values, kInferenceBuckets);
  g_value_init(&item, G_TYPE_DOUBLE);
  for (double b : kInferenceBoundsMs) {
    g_value_set_double(&item, b);
    gst_value_array_append_value(&bounds, &item);
  }
  g_value_unset(&item);
  g_value_init(&item, G_TYPE_UINT64);
  for (guint64 c : counts) {
    g_value_set_uint64(&item, c);
    gst_value_array_append_value(&values, &item);
  }
  g_value_unset(&item);
  GstStructure* s = gst_structure_new(
      "diffusionfilter-stats", "frames-in", G_TYPE_UINT64, priv->frames_in.load(),
      "frames-processed", G_TYPE_UINT64, priv->frames_processed.load(), "frames-dropped",
      G_TYPE_UINT64, priv->frames_dropped.load(), "inference-ms", G_TYPE_DOUBLE, inference,
      "overhead-ms", G_TYPE_DOUBLE, frame > inference ? frame - inference : 0.0, "lag-ms",
      G_TYPE_DOUBLE, lag, "inference-sum-ms", G_TYPE_DOUBLE, inference_sum, nullptr);
  gst_structure_take_value(s, "inference-bounds-ms", &bounds);
  gst_structure_take_value(s, "inference-counts", &values);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

static void maybe_post_stats(GstDiffusionFilter* self) {
  {
    std::lock_guard<std::mutex> lock(self->priv->stats_lock);
    if (Clock::now() - self->priv->last_stats < kStatsInterval) return;
  }
  post_stats(self);
}

static void record_lag(GstDiffusionFilterPrivate* priv, Clock::time_point arrival) {
  std::lock_guard<std::mutex> lock(priv->stats_lock);
  priv->lag_ms = ms_between(arrival, Clock::now());
}

// What processed mode adds to the pipeline latency: the time a frame can
// spend waiting for the model (up to one frame interval) plus a model run,
// with a margin for jitter.
static GstClockTime processing_latency(GstDiffusionFilter* self) {
  GstDiffusionFilterPrivate* priv = self->priv;
  double model_ms;
  {
    std::lock_guard<std::mutex> lock(priv->stats_lock);
    model_ms = priv->frame_ms.count() > 0 ? priv->frame_ms.value() : priv->warmup_ms;
  }
  return GstClockTime(model_ms * 1.25 * GST_MSECOND) + priv->frame_interval.load();
}

// Processed mode: tell the pipeline when the model became much slower than
// the latency it was configured with, so sync=true sinks do not drop.
static void maybe_announce_latency(GstDiffusionFilter* self, double frame_ms) {
  GstDiffusionFilterPrivate* priv = self->priv;
  if (priv->mode != GST_DIFFUSION_FILTER_OUTPUT_PROCESSED) return;
  {
    std::lock_guard<std::mutex> lock(priv->stats_lock);
    if (frame_ms <= priv->announced_latency_ms * 1.2) return;
    priv->announced_latency_ms = frame_ms;
  }
  GST_INFO_OBJECT(self, "model now takes %.1f ms a frame: latency changed", frame_ms);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
}

/* --- the worker ---------------------------------------------------------- */

// What the shared model had to say (a CUDA graph capture that failed, say),
// as a warning on the bus of whichever element hears it first.
static void post_notices(GstDiffusionFilter* self, mirage::ModelRunner& runner) {
  for (const auto& notice : runner.take_notices())
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("%s", notice.c_str()), ("model %s", runner.device().c_str()));
}

static void handle_inference_failure(GstDiffusionFilter* self, const std::string& reason) {
  GstDiffusionFilterPrivate* priv = self->priv;
  priv->frames_dropped++;
  int failures = ++priv->consecutive_failures;
  if (failures >= kMaxConsecutiveFailures) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED,
                      ("Inference failed %d times in a row: %s", failures, reason.c_str()),
                      ("last error: %s", reason.c_str()));
    priv->worker_flow = GST_FLOW_ERROR;
  } else {
    GST_ELEMENT_WARNING(self, STREAM, FAILED,
                        ("Inference failed, keeping the last good image: %s", reason.c_str()),
                        ("%d consecutive failures", failures));
  }
}

static void process_frame(GstDiffusionFilter* self, PendingFrame& frame) {
  GstDiffusionFilterPrivate* priv = self->priv;
  GstVideoInfo info;
  {
    std::lock_guard<std::mutex> lock(priv->output_lock);
    if (!priv->have_format || priv->format.epoch != frame.caps_epoch) {
      priv->frames_dropped++;  // caps changed while it waited
      return;
    }
    info = priv->format.info;
  }
  const Settings settings = settings_snapshot(priv);
  const mirage::InferenceParams params{settings.style, settings.strength, settings.seed};

  BufferPtr out(gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr));
  mirage::FrameTiming timing;
  mirage::Status status = mirage::Status::Error("could not map the frame");
  {
    MappedFrame in(&info, frame.buffer.get(), GST_MAP_READ);
    MappedFrame dst(&info, out.get(), GST_MAP_WRITE);
    if (in.ok() && dst.ok())
      status = priv->runner->process(in.layout(), in.planes(), dst.layout(), dst.planes(), params,
                                     &timing, settings.max_batch);
  }
  post_notices(self, *priv->runner);
  if (!status.ok()) {
    handle_inference_failure(self, status.message());
    return;
  }
  priv->consecutive_failures = 0;
  priv->frames_processed++;
  double frame_ms;
  {
    std::lock_guard<std::mutex> lock(priv->stats_lock);
    priv->inference_ms.add(timing.model_ms);
    priv->frame_ms.add(timing.total_ms);
    size_t bucket = 0;
    while (bucket < std::size(kInferenceBoundsMs) && timing.model_ms > kInferenceBoundsMs[bucket]) bucket++;
    priv->inference_counts[bucket]++;
    priv->inference_sum_ms += timing.model_ms;
    frame_ms = priv->frame_ms.value();
  }
  maybe_announce_latency(self, frame_ms);

  gst_buffer_copy_into(out.get(), frame.buffer.get(),
                       GstBufferCopyFlags(GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS), 0, -1);
  if (GST_BUFFER_PTS_IS_VALID(frame.buffer.get()))
    gst_buffer_add_reference_timestamp_meta(out.get(), source_timestamp_caps(),
                                            GST_BUFFER_PTS(frame.buffer.get()), GST_CLOCK_TIME_NONE);

  std::lock_guard<std::mutex> lock(priv->output_lock);
  if (priv->format.epoch != frame.caps_epoch || priv->slot.generation() != frame.generation)
    return;  // flushed or renegotiated while the model ran: the result is stale
  if (priv->mode == GST_DIFFUSION_FILTER_OUTPUT_HOLD) {
    priv->held = std::move(out);
    priv->held_arrival = frame.arrival;
    return;
  }
  record_lag(priv, frame.arrival);
  GstFlowReturn ret = gst_pad_push(self->srcpad, out.release());
  if (ret != GST_FLOW_OK && ret != GST_FLOW_FLUSHING) {
    GST_DEBUG_OBJECT(self, "push from worker returned %s", gst_flow_get_name(ret));
    priv->worker_flow = ret;
  }
}

static void worker_loop(GstDiffusionFilter* self) {
  GstDiffusionFilterPrivate* priv = self->priv;
  // Named for top, gdb and the tests (at most 15 characters).
  pthread_setname_np(pthread_self(), "diffusionworker");
  while (std::optional<PendingFrame> frame = priv->slot.take()) {
    process_frame(self, *frame);
    frame.reset();  // release the input before saying we are idle
    priv->slot.done();
  }
}

/* --- streaming thread ---------------------------------------------------- */

// Hold mode: the newest processed image (or the placeholder) with the
// timestamps of |input|. Called with output_lock held.
static GstFlowReturn push_held(GstDiffusionFilter* self, GstBuffer* input) {
  GstDiffusionFilterPrivate* priv = self->priv;
  GstBuffer* image = priv->held.get();
  if (image) {
    record_lag(priv, priv->held_arrival);
  } else {
    if (!priv->placeholder) {
      const GstVideoInfo* info = &priv->format.info;
      priv->placeholder.reset(gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(info), nullptr));
      GstMapInfo map;
      if (gst_buffer_map(priv->placeholder.get(), &map, GST_MAP_WRITE)) {
        mirage::fill_neutral(priv->format.layout, map.data);
        gst_buffer_unmap(priv->placeholder.get(), &map);
      }
    }
    image = priv->placeholder.get();
  }
  // A shallow copy: the pixels are shared, only the metadata is new.
  GstBuffer* out = gst_buffer_copy(image);
  GST_BUFFER_PTS(out) = GST_BUFFER_PTS(input);
  GST_BUFFER_DTS(out) = GST_BUFFER_DTS(input);
  GST_BUFFER_DURATION(out) = GST_BUFFER_DURATION(input);
  GST_BUFFER_OFFSET(out) = GST_BUFFER_OFFSET(input);
  GST_BUFFER_OFFSET_END(out) = GST_BUFFER_OFFSET_END(input);
  if (GST_BUFFER_IS_DISCONT(input))
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
  else
    GST_BUFFER_FLAG_UNSET(out, GST_BUFFER_FLAG_DISCONT);
  return gst_pad_push(self->srcpad, out);
}

static GstFlowReturn gst_diffusion_filter_chain(GstPad*, GstObject* parent, GstBuffer* buffer) {
  GstDiffusionFilter* self = GST_DIFFUSION_FILTER(parent);
  GstDiffusionFilterPrivate* priv = self->priv;
  BufferPtr input(buffer);
  priv->frames_in++;

  GstFlowReturn worker_ret = priv->worker_flow.load();
  if (worker_ret != GST_FLOW_OK) {
    priv->frames_dropped++;
    return worker_ret;
  }
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(priv->output_lock);
    if (!priv->have_format) {
      priv->frames_dropped++;
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("buffer before caps"));
      return GST_FLOW_NOT_NEGOTIATED;
    }
    epoch = priv->format.epoch;
  }

  PendingFrame frame{BufferPtr(gst_buffer_ref(input.get())), epoch, priv->slot.generation(),
                     Clock::now()};
  if (priv->slot.put(std::move(frame)) != mirage::LatestSlot<PendingFrame>::PutResult::kStored)
    priv->frames_dropped++;

  GstFlowReturn ret = GST_FLOW_OK;
  if (priv->mode == GST_DIFFUSION_FILTER_OUTPUT_HOLD) {
    std::lock_guard<std::mutex> lock(priv->output_lock);
    ret = push_held(self, input.get());
  }
  maybe_post_stats(self);
  return ret;
}

static gboolean set_format(GstDiffusionFilter* self, GstCaps* caps) {
  GstDiffusionFilterPrivate* priv = self->priv;
  Format format;
  if (!gst_video_info_from_caps(&format.info, caps) || !layout_from_info(&format.info, &format.layout)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("unsupported caps %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  // Called with output_lock held.
  format.epoch = ++priv->epoch_counter;
  priv->format = format;
  priv->have_format = true;
  priv->frame_interval = GST_VIDEO_INFO_FPS_N(&format.info) > 0
                             ? gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&format.info),
                                                         GST_VIDEO_INFO_FPS_N(&format.info))
                             : 0;
  priv->held.reset();  // in the old format: the placeholder shows until the next result
  priv->placeholder.reset();
  if (priv->slot.discard()) priv->frames_dropped++;
  GST_INFO_OBJECT(self, "format %s %dx%d", mirage::to_string(format.layout.format),
                  format.layout.width, format.layout.height);
  return TRUE;
}

static gboolean gst_diffusion_filter_sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  GstDiffusionFilter* self = GST_DIFFUSION_FILTER(parent);
  GstDiffusionFilterPrivate* priv = self->priv;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps* caps;
      gst_event_parse_caps(event, &caps);
      std::lock_guard<std::mutex> lock(priv->output_lock);
      if (!set_format(self, caps)) {
        gst_event_unref(event);
        return FALSE;
      }
      return gst_pad_push_event(self->srcpad, event);
    }
    case GST_EVENT_FLUSH_START: {
      // Downstream first: that unblocks a worker stuck in a push.
      gboolean ret = gst_pad_push_event(self->srcpad, event);
      if (priv->slot.set_flushing(true)) priv->frames_dropped++;
      return ret;
    }
    case GST_EVENT_FLUSH_STOP: {
      priv->slot.set_flushing(false);
      priv->worker_flow = GST_FLOW_OK;
      std::lock_guard<std::mutex> lock(priv->output_lock);
      return gst_pad_push_event(self->srcpad, event);
    }
    case GST_EVENT_EOS: {
      // Drain: the waiting frame is processed (and pushed, in processed
      // mode) before EOS leaves.
      priv->slot.wait_drained();
      post_stats(self);
      std::lock_guard<std::mutex> lock(priv->output_lock);
      return gst_pad_push_event(self->srcpad, event);
    }
    default:
      break;
  }
  if (GST_EVENT_IS_SERIALIZED(event)) {
    std::lock_guard<std::mutex> lock(priv->output_lock);
    return gst_pad_event_default(pad, parent, event);
  }
  return gst_pad_event_default(pad, parent, event);
}

static gboolean gst_diffusion_filter_src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  GstDiffusionFilter* self = GST_DIFFUSION_FILTER(parent);
  if (GST_QUERY_TYPE(query) != GST_QUERY_LATENCY) return gst_pad_query_default(pad, parent, query);

  if (!gst_pad_peer_query(self->sinkpad, query)) return FALSE;
  if (self->priv->mode == GST_DIFFUSION_FILTER_OUTPUT_PROCESSED) {
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency(query, &live, &min, &max);
    const GstClockTime ours = processing_latency(self);
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID(max)) max += ours;
    GST_DEBUG_OBJECT(self, "latency: adding %" GST_TIME_FORMAT, GST_TIME_ARGS(ours));
    gst_query_set_latency(query, live, min, max);
  }
  return TRUE;
}

/* --- state changes ------------------------------------------------------- */

static void warn_if_unknown_style(GstDiffusionFilter* self) {
  std::string style, known;
  {
    std::lock_guard<std::mutex> lock(self->priv->settings_lock);
    const auto& styles = self->priv->known_styles;
    style = self->priv->settings.style;
    if (styles.empty() || style.empty() ||
        std::find(styles.begin(), styles.end(), style) != styles.end())
      return;
    for (const auto& s : styles) known += (known.empty() ? "" : ", ") + s;
  }
  GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                      ("Unknown style '%s'; the model knows: %s", style.c_str(), known.c_str()),
                      ("the model decides what an unknown style does"));
}

static gboolean start(GstDiffusionFilter* self) {
  GstDiffusionFilterPrivate* priv = self->priv;
  const Settings settings = settings_snapshot(priv);
  mirage::ModelOptions options;
  options.path = settings.model;
  options.device = settings.device;
  options.precision = settings.precision;
  options.cuda_graph = settings.cuda_graph;
  options.width = settings.width;
  options.height = settings.height;
  std::string error;
  // Shared with every element of this process that runs the same model.
  auto runner = mirage::acquire_model(options, {settings.style, settings.strength, settings.seed}, &error);
  if (!runner) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not load %s", error.c_str()),
                      ("device=%s", settings.device.c_str()));
    return FALSE;
  }
  GST_INFO_OBJECT(self, "loaded '%s' (%s, %s) on %s at %dx%d, warm-up %.1f ms%s", settings.model.c_str(),
                  runner->format().c_str(), runner->precision().c_str(), runner->device().c_str(), runner->width(),
                  runner->height(), runner->warmup_ms(), runner->cuda_frame_path() ? ", CUDA frame path" : "");
  post_notices(self, *runner);
  {
    std::lock_guard<std::mutex> lock(priv->settings_lock);
    priv->known_styles = runner->styles();
  }
  {
    std::lock_guard<std::mutex> lock(priv->stats_lock);
    priv->inference_ms.reset();
    priv->frame_ms.reset();
    priv->lag_ms = 0;
    priv->warmup_ms = runner->warmup_ms();
    priv->announced_latency_ms = runner->warmup_ms();
    priv->last_stats = Clock::now();
  }
  {
    std::lock_guard<std::mutex> lock(priv->settings_lock);
    priv->runner = std::move(runner);
  }
  priv->mode = settings.output_mode;
  priv->frames_in = 0;
  priv->frames_processed = 0;
  priv->frames_dropped = 0;
  priv->worker_flow = GST_FLOW_OK;
  priv->consecutive_failures = 0;
  priv->slot.reopen();
  priv->worker = std::thread(worker_loop, self);
  warn_if_unknown_style(self);
  return TRUE;
}

static void stop(GstDiffusionFilter* self) {
  GstDiffusionFilterPrivate* priv = self->priv;
  if (priv->slot.close()) priv->frames_dropped++;
  // The pads are inactive by now, so a push from the worker returns
  // FLUSHING at once; the join waits at most for one model run.
  if (priv->worker.joinable()) priv->worker.join();
  std::shared_ptr<mirage::ModelRunner> runner;
  {
    std::lock_guard<std::mutex> lock(priv->settings_lock);
    runner = std::move(priv->runner);
  }
  runner.reset();  // the last holder unloads the model: not under the lock
  std::lock_guard<std::mutex> lock(priv->output_lock);
  priv->held.reset();
  priv->placeholder.reset();
  priv->have_format = false;
}

static GstStateChangeReturn gst_diffusion_filter_change_state(GstElement* element,
                                                              GstStateChange transition) {
  GstDiffusionFilter* self = GST_DIFFUSION_FILTER(element);
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start(self))
    return GST_STATE_CHANGE_FAILURE;

  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_diffusion_filter_parent_class)->change_state(element, transition);

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    stop(self);
  return ret;
}

/* --- properties ---------------------------------------------------------- */

// Properties that shape the model (file, device, size, output mode) apply on
// the next READY->PAUSED; changing them later would silently do nothing.
static bool can_change_model_settings(GstDiffusionFilter* self, GParamSpec* pspec) {
  GstState state;
  GST_OBJECT_LOCK(self);
  state = GST_STATE(self);
  if (GST_STATE_PENDING(self) > state) state = GST_STATE_PENDING(self);
  GST_OBJECT_UNLOCK(self);
  if (state <= GST_STATE_READY) return true;
  g_warning("diffusionfilter: '%s' can only be changed in the NULL or READY state; ignored",
            pspec->name);
  return false;
}

static void gst_diffusion_filter_set_property(GObject* object, guint prop_id, const GValue* value,
                                              GParamSpec* pspec) {
  GstDiffusionFilter* self = GST_DIFFUSION_FILTER(object);
  GstDiffusionFilterPrivate* priv = self->priv;
  switch (prop_id) {
    case PROP_MODEL:
    case PROP_DEVICE:
    case PROP_PRECISION:
    case PROP_CUDA_GRAPH:
    case PROP_OUTPUT_MODE:
    case PROP_WIDTH:
    case PROP_HEIGHT:
      if (!can_change_model_settings(self, pspec)) return;
      break;
    default:
      break;
  }

  std::unique_lock<std::mutex> lock(priv->settings_lock);
  Settings& s = priv->settings;
  switch (prop_id) {
    case PROP_MODEL: {
      const gchar* path = g_value_get_string(value);
      s.model = path ? path : "";
      break;
    }
    case PROP_DEVICE: {
      const gchar* device = g_value_get_string(value);
      if (!device || !mirage::is_valid_device(device)) {
        g_warning("diffusionfilter: invalid device '%s' (expected auto, cpu, cuda or cuda:N); ignored",
                  device ? device : "(null)");
        return;
      }
      s.device = device;
      break;
    }
    case PROP_PRECISION:
    case PROP_CUDA_GRAPH: {
      const gchar* v = g_value_get_string(value);
      const bool precision = prop_id == PROP_PRECISION;
      if (!v || !(precision ? mirage::is_valid_precision(v) : mirage::is_valid_cuda_graph_mode(v))) {
        g_warning("diffusionfilter: invalid %s '%s' (expected %s); ignored", pspec->name, v ? v : "(null)",
                  precision ? "auto, fp32 or fp16" : "auto, on or off");
        return;
      }
      (precision ? s.precision : s.cuda_graph) = v;
      break;
    }
    case PROP_STYLE: {
      const gchar* style = g_value_get_string(value);
      s.style = style ? style : "";
      lock.unlock();
      warn_if_unknown_style(self);
      break;
    }
    case PROP_STRENGTH:
      s.strength = g_value_get_double(value);
      break;
    case PROP_SEED:
      s.seed = g_value_get_int64(value);
      break;
    case PROP_MAX_BATCH:
      s.max_batch = g_value_get_int(value);
      break;
    case PROP_OUTPUT_MODE:
      s.output_mode = GstDiffusionFilterOutputMode(g_value_get_enum(value));
      break;
    case PROP_WIDTH:
    case PROP_HEIGHT: {
      int size = g_value_get_int(value);
      if (size != 0 && size < MIN_MODEL_SIZE) {
        g_warning("diffusionfilter: '%s' must be 0 (the model's default) or %d..%d, not %d; ignored",
                  pspec->name, MIN_MODEL_SIZE, MAX_MODEL_SIZE, size);
        return;
      }
      (prop_id == PROP_WIDTH ? s.width : s.height) = size;
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_diffusion_filter_get_property(GObject* object, guint prop_id, GValue* value,
                                              GParamSpec* pspec) {
  GstDiffusionFilter* self = GST_DIFFUSION_FILTER(object);
  GstDiffusionFilterPrivate* priv = self->priv;
  switch (prop_id) {
    case PROP_FRAMES_IN: g_value_set_uint64(value, priv->frames_in.load()); return;
    case PROP_FRAMES_PROCESSED: g_value_set_uint64(value, priv->frames_processed.load()); return;
    case PROP_FRAMES_DROPPED: g_value_set_uint64(value, priv->frames_dropped.load()); return;
    case PROP_INFERENCE_MS: {
      std::lock_guard<std::mutex> lock(priv->stats_lock);
      g_value_set_double(value, priv->inference_ms.value());
      return;
    }
    case PROP_STYLES: {
      std::vector<const char*> names;
      std::lock_guard<std::mutex> lock(priv->settings_lock);
      for (const auto& s : priv->known_styles) names.push_back(s.c_str());
      names.push_back(nullptr);
      g_value_set_boxed(value, names.data());  // copied
      return;
    }
    case PROP_BATCH_SIZES: {
      mirage::BatchStats stats;
      {
        std::lock_guard<std::mutex> lock(priv->settings_lock);
        if (priv->runner) stats = priv->runner->batch_stats();
      }
      GValue item = G_VALUE_INIT;
      g_value_init(&item, G_TYPE_UINT64);
      for (size_t n = 1; n < stats.calls_by_size.size(); ++n) {
        g_value_set_uint64(&item, stats.calls_by_size[n]);
        gst_value_array_append_value(value, &item);
      }
      g_value_unset(&item);
      return;
    }
    default:
      break;
  }
  const Settings s = settings_snapshot(priv);
  switch (prop_id) {
    case PROP_MODEL: g_value_set_string(value, s.model.empty() ? nullptr : s.model.c_str()); break;
    case PROP_DEVICE: g_value_set_string(value, s.device.c_str()); break;
    case PROP_PRECISION: g_value_set_string(value, s.precision.c_str()); break;
    case PROP_CUDA_GRAPH: g_value_set_string(value, s.cuda_graph.c_str()); break;
    case PROP_STYLE: g_value_set_string(value, s.style.c_str()); break;
    case PROP_STRENGTH: g_value_set_double(value, s.strength); break;
    case PROP_SEED: g_value_set_int64(value, s.seed); break;
    case PROP_MAX_BATCH: g_value_set_int(value, s.max_batch); break;
    case PROP_OUTPUT_MODE: g_value_set_enum(value, s.output_mode); break;
    case PROP_WIDTH: g_value_set_int(value, s.width); break;
    case PROP_HEIGHT: g_value_set_int(value, s.height); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

/* --- GObject boilerplate ------------------------------------------------- */

static void gst_diffusion_filter_init(GstDiffusionFilter* self) {
  self->priv = new GstDiffusionFilterPrivate();

  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_diffusion_filter_chain));
  gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_diffusion_filter_sink_event));
  GST_PAD_SET_PROXY_CAPS(self->sinkpad);
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_query_function(self->srcpad, GST_DEBUG_FUNCPTR(gst_diffusion_filter_src_query));
  GST_PAD_SET_PROXY_CAPS(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

static void gst_diffusion_filter_finalize(GObject* object) {
  GstDiffusionFilter* self = GST_DIFFUSION_FILTER(object);
  stop(self);  // no-op unless disposed without going to NULL first
  delete self->priv;
  G_OBJECT_CLASS(gst_diffusion_filter_parent_class)->finalize(object);
}

static void gst_diffusion_filter_class_init(GstDiffusionFilterClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(gst_diffusion_filter_debug, "diffusionfilter", 0, "Mirage diffusion filter");

  gobject_class->set_property = gst_diffusion_filter_set_property;
  gobject_class->get_property = gst_diffusion_filter_get_property;
  gobject_class->finalize = gst_diffusion_filter_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_diffusion_filter_change_state);

  const auto rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  const auto ready = GParamFlags(rw | GST_PARAM_MUTABLE_READY);
  const auto playing = GParamFlags(rw | GST_PARAM_MUTABLE_PLAYING | GST_PARAM_CONTROLLABLE);
  const auto stat = GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_property(gobject_class, PROP_MODEL,
      g_param_spec_string("model", "Model",
          "Path of the model file (docs/model-contract.md): TorchScript (.pt), or an AOTInductor "
          "package (.pt2) where the libtorch can load one. Loaded, checked and "
          "warmed up on READY->PAUSED; a missing or broken file fails that state change. "
          "Changeable in NULL or READY only.",
          nullptr, ready));
  g_object_class_install_property(gobject_class, PROP_DEVICE,
      g_param_spec_string("device", "Device",
          "Where the model runs: auto (CUDA when available, else CPU), cpu, cuda or cuda:N. "
          "Changeable in NULL or READY only.",
          DEFAULT_DEVICE, ready));
  g_object_class_install_property(gobject_class, PROP_PRECISION,
      g_param_spec_string("precision", "Precision",
          "What the model computes in: auto (what the file was exported for), fp32 or fp16. A "
          "TorchScript model exported otherwise is converted (every floating parameter and "
          "buffer); an AOTInductor package must have been compiled so. Changeable in NULL or "
          "READY only.",
          DEFAULT_PRECISION, ready));
  g_object_class_install_property(gobject_class, PROP_CUDA_GRAPH,
      g_param_spec_string("cuda-graph", "CUDA graph",
          "On a CUDA device: auto or on capture the conversion, the model and the conversion "
          "back in a CUDA graph for each batch shape and parameters, and replay it (no "
          "allocation, one launch per frame); a model that cannot be captured runs without, "
          "with one warning saying why. off never captures. Ignored on the CPU (on posts a "
          "warning there). Changeable in NULL or READY only.",
          DEFAULT_CUDA_GRAPH, ready));
  g_object_class_install_property(gobject_class, PROP_STYLE,
      g_param_spec_string("style", "Style",
          "Style passed to the model; the model's styles() lists the known ones (an unknown "
          "style posts a warning). Changeable at any time, applied from the next inference.",
          DEFAULT_STYLE, playing));
  g_object_class_install_property(gobject_class, PROP_STRENGTH,
      g_param_spec_double("strength", "Strength",
          "How far the model may move away from the input, 0 (not at all) to 1 (fully). "
          "Changeable at any time, applied from the next inference.",
          0.0, 1.0, DEFAULT_STRENGTH, playing));
  g_object_class_install_property(gobject_class, PROP_SEED,
      g_param_spec_int64("seed", "Seed",
          "Seed of the model's noise; the same seed every frame keeps the output steady. "
          "Changeable at any time, applied from the next inference.",
          0, G_MAXINT64, DEFAULT_SEED, playing));
  g_object_class_install_property(gobject_class, PROP_OUTPUT_MODE,
      g_param_spec_enum("output-mode", "Output mode",
          "hold: one output per input frame carrying the newest processed image (a grey "
          "placeholder before the first), for a steady framerate; processed: one output per "
          "processed frame. Changeable in NULL or READY only.",
          GST_TYPE_DIFFUSION_FILTER_OUTPUT_MODE, DEFAULT_OUTPUT_MODE, ready));
  g_object_class_install_property(gobject_class, PROP_WIDTH,
      g_param_spec_int("width", "Model width",
          "Width in pixels the model runs at; 0 takes the model's default_size() or 512. The "
          "element scales in and out. Changeable in NULL or READY only.",
          0, MAX_MODEL_SIZE, DEFAULT_SIZE, ready));
  g_object_class_install_property(gobject_class, PROP_HEIGHT,
      g_param_spec_int("height", "Model height",
          "Height in pixels the model runs at; 0 takes the model's default_size() or 512. "
          "Changeable in NULL or READY only.",
          0, MAX_MODEL_SIZE, DEFAULT_SIZE, ready));
  g_object_class_install_property(gobject_class, PROP_MAX_BATCH,
      g_param_spec_int("max-batch", "Max batch",
          "Elements of one process that name the same model file, device and size share one "
          "loaded model and one model thread. When several of them have a frame waiting and the "
          "model has forward_batch(), up to this many frames run as one batch (the smallest "
          "max-batch among them); 1 keeps this element's frames out of batches. Changeable at "
          "any time.",
          1, MAX_MAX_BATCH, DEFAULT_MAX_BATCH, playing));
  g_object_class_install_property(gobject_class, PROP_FRAMES_IN,
      g_param_spec_uint64("frames-in", "Frames in",
          "Frames received since the last READY->PAUSED", 0, G_MAXUINT64, 0, stat));
  g_object_class_install_property(gobject_class, PROP_FRAMES_PROCESSED,
      g_param_spec_uint64("frames-processed", "Frames processed",
          "Frames the model turned into an output image", 0, G_MAXUINT64, 0, stat));
  g_object_class_install_property(gobject_class, PROP_FRAMES_DROPPED,
      g_param_spec_uint64("frames-dropped", "Frames dropped",
          "Frames that never became an output image: replaced while waiting for the model, "
          "discarded by a flush or a caps change, or failed in the model",
          0, G_MAXUINT64, 0, stat));
  g_object_class_install_property(gobject_class, PROP_INFERENCE_MS,
      g_param_spec_double("inference-ms", "Inference time",
          "Moving average of the model's forward() time in milliseconds", 0, G_MAXDOUBLE, 0, stat));
  g_object_class_install_property(gobject_class, PROP_STYLES,
      g_param_spec_boxed("styles", "Styles",
          "The styles the loaded model offers (its styles() method); empty before READY->PAUSED "
          "and for a model that declares none", G_TYPE_STRV, stat));
  g_object_class_install_property(gobject_class, PROP_BATCH_SIZES,
      gst_param_spec_array("batch-sizes", "Batch sizes",
          "Calls of the loaded model by batch size: entry i counts the forward() or "
          "forward_batch() calls that ran i + 1 frames. The model is shared (see max-batch), "
          "so these are every sharing element's calls since the model was loaded, not this "
          "element's alone; empty before READY->PAUSED. Grows as frames are processed.",
          g_param_spec_uint64("calls", "Calls", "Calls of one batch size", 0, G_MAXUINT64, 0, stat), stat));

  gst_element_class_set_static_metadata(element_class, "Diffusion filter", "Filter/Effect/Video",
      "Transforms live video with a TorchScript img2img model through a leaky single-buffer "
      "queue: the lag never grows",
      "Mirage developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_type_mark_as_plugin_api(GST_TYPE_DIFFUSION_FILTER_OUTPUT_MODE, GstPluginAPIFlags(0));
}
