// One live stream's media: the pipeline composed from pipelines/*.pipeline
// (ingest -> diffusionfilter -> HLS files and JPEG frames for WebSocket
// viewers). The daemon's media server feeds it and reads from it.
//
// Bounded by construction: the ingest appsrc drops its oldest data when
// full (counted: frames_dropped), frames declaring more than max_width x
// max_height are refused from their headers before any decoder sees them
// (JPEG here, H.264 from h264parse's caps, VP8/VP9 key frames in a probe on
// the template's "admit" element), and the bus keeps no message: each is
// handled by a sync handler and dropped.
//
// Thread safety: every method may be called from any thread. The
// destructor blocks (EOS, at most 3 s): callers keep it off threads that
// serve others.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

typedef struct _GstSample GstSample;

namespace mirage::media {

struct PipelineSettings {
  std::string templates_dir;  // the pipelines/ folder
  std::string model;          // TorchScript file for diffusionfilter
  std::string device = "auto";  // diffusionfilter's device
  std::string style;
  double strength = 0.8;
  int width = 640;
  int height = 480;
  int fps = 15;
  std::string hls_dir;  // created; removed when the pipeline stops (unless keep_hls)
  bool keep_hls = false;  // tests read the finished playlist
  // pipelines/ingest-{ingest}.pipeline: jpeg (one frame per push), or a
  // byte stream: webm (MediaRecorder), ts (MPEG-TS over SRT), h264 (RTSP).
  std::string ingest = "jpeg";
  int max_width = 1920;  // declared frame sizes above these are refused
  int max_height = 1080;
};

class StreamPipeline {
 public:
  static constexpr size_t kMaxFrameBytes = 8 << 20;
  // What the ingest queue holds at most before the oldest goes.
  static constexpr size_t kQueueBytes = 16 << 20;
  static constexpr size_t kQueueFrames = 8;  // JPEG frames

  // Composes, parses and starts the pipeline. nullptr and |error| on failure
  // (a bad template, a missing element, a model that does not load).
  static std::unique_ptr<StreamPipeline> start(const PipelineSettings& settings, std::string* error);
  ~StreamPipeline();  // EOS (with a deadline), NULL, HLS files removed

  enum class Push { kOk, kTooLarge, kNotJpeg, kOversized };
  // One JPEG frame. Frames over 8 MiB, data whose headers are no whole
  // decodable JPEG, and frames declaring more than the maximum size are
  // refused and counted; nothing of them reaches the pipeline.
  Push push_jpeg(const uint8_t* data, size_t size);
  // Byte-stream ingests: the next bytes of the stream (at most 8 MiB per push).
  Push push_bytes(const uint8_t* data, size_t size);
  const std::string& ingest_format() const { return settings_.ingest; }

  // diffusionfilter's `style` and `strength` (0-1), while playing: the
  // element applies them from the next frame it processes.
  void set_style(const std::string& style);
  void set_strength(double strength);
  // diffusionfilter's current `style` and `strength` (tests).
  std::string style() const;
  double strength() const;

  // The newest processed frame as JPEG (null before the first), and a
  // number that grows with every new frame.
  std::shared_ptr<const std::string> latest_jpeg(uint64_t* sequence = nullptr) const;
  // Called on a streaming thread for every new processed frame.
  void set_frame_callback(std::function<void()> callback);
  // Called on a streaming thread for every H.264 access unit of the
  // template's appsink "webrtc" (the encoder HLS uses too), if it has one.
  void set_h264_callback(std::function<void(GstSample*)> callback);
  // Asks that encoder for a keyframe (a WHEP viewer joined or sent a PLI).
  void force_keyframe();
  // Elements of the pipeline made by |factory| (e.g. x264enc: one per stream).
  int count_elements(const std::string& factory) const;

  // Refused at ingest: bad or oversized frames (all kinds together).
  uint64_t frames_refused() const { return refused_; }
  // Of those, the frames refused for their declared size.
  uint64_t frames_oversized() const { return oversized_; }
  // Pushes the full ingest queue made room for by dropping its oldest data.
  uint64_t ingest_dropped() const { return dropped_; }
  // Bytes waiting in the ingest queue now.
  uint64_t ingest_queued_bytes() const;
  // Ingest and processing figures as a JSON object: frames received and
  // refused at ingest, ingest fps over the last seconds, and
  // diffusionfilter's last stats (processed fps, inference ms, lag, drops),
  // plus the last error.
  std::string health_json() const;
  // diffusionfilter's counters.
  uint64_t frames_processed() const;
  // The first error the pipeline posted, or empty.
  std::string error() const;
  const std::string& hls_dir() const { return settings_.hls_dir; }
  // Seconds since the last accepted frame (or the start).
  double seconds_since_frame() const;
  // Whether a bus message waits to be popped: never, since each is
  // handled and dropped as it is posted.
  bool bus_has_pending() const;
  // Posts an error on the pipeline's bus, as a failing element would (tests).
  void inject_error(const std::string& message);
  // From now on EOS never reaches the sinks, so the teardown waits out its
  // whole deadline: a slow teardown, on demand (tests).
  void hold_eos_for_test();

 private:
  explicit StreamPipeline(PipelineSettings settings) : settings_(std::move(settings)) {}
  static GstFlowReturn on_sample(GstElement* sink, gpointer self);
  void on_bus(GstMessage* message);
  void push(GstBuffer* buffer);
  void watch_admission();

  const PipelineSettings settings_;
  GstElement* pipeline_ = nullptr;
  GstElement* ingest_ = nullptr;
  GstElement* filter_ = nullptr;
  GstElement* webrtc_ = nullptr;  // appsink of encoded H.264, optional
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> oversized_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> received_{0};  // pushes: JPEG frames or byte-stream chunks
  std::atomic<uint64_t> decoded_{0};   // frames out of the ingest's decoder
  std::atomic<int64_t> last_frame_ns_{0};  // steady clock
  std::atomic<bool> refusing_{false};  // the admit probe drops until a frame of allowed size

  mutable std::mutex mutex_;  // guards the members below
  std::condition_variable eos_cond_;
  bool eos_ = false;
  std::shared_ptr<const std::string> latest_;
  uint64_t sequence_ = 0;
  std::function<void()> callback_;
  std::function<void(GstSample*)> h264_callback_;
  std::string error_;
  // From diffusionfilter's last "diffusionfilter-stats" message.
  double inference_ms_ = 0, lag_ms_ = 0, processed_fps_ = 0, ingest_fps_ = 0;
  uint64_t filter_in_ = 0, filter_processed_ = 0, filter_dropped_ = 0;
  std::vector<double> inference_bounds_ms_;  // the element's histogram: bucket bounds,
  std::vector<uint64_t> inference_counts_;   // counts per bucket (one more: above them)
  double inference_sum_ms_ = 0;
  std::chrono::steady_clock::time_point stats_at_{};
  uint64_t decoded_at_stats_ = 0;
};

}  // namespace mirage::media
