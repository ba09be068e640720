#include "stream_pipeline.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "frame_header.h"
#include "pipeline_template.h"

namespace mirage::media {

std::unique_ptr<StreamPipeline> StreamPipeline::start(const PipelineSettings& settings, std::string* error) {
  const std::map<std::string, std::string> values = {
      {"width", std::to_string(settings.width)},   {"height", std::to_string(settings.height)},
      {"fps", std::to_string(settings.fps)},       {"model", settings.model},
      {"device", settings.device.empty() ? std::string("auto") : settings.device},
      {"style", settings.style},
      {"strength", std::to_string(settings.strength)}, {"hls_dir", settings.hls_dir},
      {"queue_bytes", std::to_string(kQueueBytes)}, {"queue_frames", std::to_string(kQueueFrames)},
  };
  std::string description;
  if (settings.ingest != "jpeg" && settings.ingest != "webm" && settings.ingest != "ts" && settings.ingest != "h264") {
    *error = "unknown ingest format '" + settings.ingest + "' (jpeg, webm, ts or h264)";
    return nullptr;
  }
  const std::string ingest = "ingest-" + settings.ingest;
  for (const std::string& part : {ingest, std::string("process"), std::string("output-hls"), std::string("output-jpeg")}) {
    auto text = load_template(settings.templates_dir + "/" + part + ".pipeline", error);
    if (!text) return nullptr;
    auto filled = fill_template(*text, values, error);
    if (!filled) return nullptr;
    if (part == ingest) description = *filled;
    else if (part == "process") description += " ! " + *filled + " ! tee name=t";
    else description += " t. ! " + *filled;
  }
  std::error_code ec;
  std::filesystem::create_directories(settings.hls_dir, ec);
  if (ec) {
    *error = "cannot create '" + settings.hls_dir + "': " + ec.message();
    return nullptr;
  }

  std::unique_ptr<StreamPipeline> p(new StreamPipeline(settings));
  p->last_frame_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
  GError* parse_error = nullptr;
  p->pipeline_ = gst_parse_launch(description.c_str(), &parse_error);
  if (!p->pipeline_ || parse_error) {
    *error = std::string("pipeline: ") + (parse_error ? parse_error->message : "parse failed");
    g_clear_error(&parse_error);
    return nullptr;  // the destructor cleans up what exists
  }
  p->ingest_ = gst_bin_get_by_name(GST_BIN(p->pipeline_), "ingest");
  p->filter_ = gst_bin_get_by_name(GST_BIN(p->pipeline_), "filter");
  GstElement* watch = gst_bin_get_by_name(GST_BIN(p->pipeline_), "watch");
  if (!p->ingest_ || !p->filter_ || !watch) {
    if (watch) gst_object_unref(watch);
    *error = "the pipeline templates must name appsrc 'ingest', diffusionfilter 'filter' and appsink 'watch'";
    return nullptr;
  }
  // Ingest fps counts decoded frames before videorate evens them out, the
  // same for every ingest kind (a JPEG per push, or a byte stream).
  GValue item = G_VALUE_INIT;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(p->pipeline_));
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto* element = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* factory = gst_element_get_factory(element);
    if (factory && std::string(GST_OBJECT_NAME(factory)) == "videorate") {
      GstPad* pad = gst_element_get_static_pad(element, "sink");
      gst_pad_add_probe(
          pad, GST_PAD_PROBE_TYPE_BUFFER,
          [](GstPad*, GstPadProbeInfo*, gpointer self) {
            static_cast<StreamPipeline*>(self)->decoded_++;
            return GST_PAD_PROBE_OK;
          },
          p.get(), nullptr);
      gst_object_unref(pad);
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  GstAppSinkCallbacks callbacks{};
  callbacks.new_sample = [](GstAppSink* sink, gpointer self) { return on_sample(GST_ELEMENT(sink), self); };
  gst_app_sink_set_callbacks(GST_APP_SINK(watch), &callbacks, p.get(), nullptr);
  gst_object_unref(watch);
  if ((p->webrtc_ = gst_bin_get_by_name(GST_BIN(p->pipeline_), "webrtc"))) {
    GstAppSinkCallbacks h264{};
    h264.new_sample = [](GstAppSink* sink, gpointer data) -> GstFlowReturn {
      auto* self = static_cast<StreamPipeline*>(data);
      GstSample* sample = gst_app_sink_pull_sample(sink);
      if (!sample) return GST_FLOW_OK;
      std::function<void(GstSample*)> callback;
      {
        std::lock_guard<std::mutex> lock(self->mutex_);
        callback = self->h264_callback_;
      }
      if (callback) callback(sample);
      gst_sample_unref(sample);
      return GST_FLOW_OK;
    };
    gst_app_sink_set_callbacks(GST_APP_SINK(p->webrtc_), &h264, p.get(), nullptr);
  }
  // Every message is handled where it is posted and dropped: nothing pops
  // this bus, so a passed message would stay queued for the stream's life
  // (about three a second), and an old ERROR would end the EOS wait at once.
  GstBus* bus = gst_element_get_bus(p->pipeline_);
  gst_bus_set_sync_handler(
      bus, [](GstBus*, GstMessage* m, gpointer self) -> GstBusSyncReply {
        static_cast<StreamPipeline*>(self)->on_bus(m);
        return GST_BUS_DROP;
      },
      p.get(), nullptr);
  gst_object_unref(bus);
  p->watch_admission();
  if (gst_element_set_state(p->pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    *error = "pipeline failed to start: " + (p->error().empty() ? std::string("state change failed") : p->error());
    return nullptr;
  }
  return p;
}

StreamPipeline::~StreamPipeline() {
  if (pipeline_) {
    // EOS lets hlssink2 finish its playlist; a deadline, because it can hang
    // at EOS (docs: PLATFORM.md).
    if (ingest_) gst_app_src_end_of_stream(GST_APP_SRC(ingest_));
    {
      std::unique_lock<std::mutex> lock(mutex_);
      eos_cond_.wait_for(lock, std::chrono::seconds(3), [this] { return eos_; });
    }
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    GstBus* bus = gst_element_get_bus(pipeline_);
    gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
    gst_object_unref(bus);
  }
  if (ingest_) gst_object_unref(ingest_);
  if (filter_) gst_object_unref(filter_);
  if (webrtc_) gst_object_unref(webrtc_);
  if (pipeline_) gst_object_unref(pipeline_);
  std::error_code ec;
  if (!settings_.hls_dir.empty() && !settings_.keep_hls) std::filesystem::remove_all(settings_.hls_dir, ec);
}

// appsrc (leaky-type=downstream) drops its oldest buffers when this one
// does not fit; counted here, since appsrc 1.22 keeps no count of its own.
void StreamPipeline::push(GstBuffer* buffer) {
  guint64 level = 0, max = 0, buffers = 0, max_buffers = 0;
  g_object_get(ingest_, "current-level-bytes", &level, "max-bytes", &max, "current-level-buffers", &buffers,
               "max-buffers", &max_buffers, nullptr);
  if ((max && level + gst_buffer_get_size(buffer) > max) || (max_buffers && buffers + 1 > max_buffers)) dropped_++;
  gst_app_src_push_buffer(GST_APP_SRC(ingest_), buffer);  // takes the buffer
}

StreamPipeline::Push StreamPipeline::push_jpeg(const uint8_t* data, size_t size) {
  if (size > kMaxFrameBytes) {
    refused_++;
    return Push::kTooLarge;
  }
  // A whole JPEG: headers a decoder can take (SOI ... SOF ... SOS), then EOI.
  std::string why;
  const auto dims = jpeg_dimensions(data, size, &why);
  if (!dims || data[size - 2] != 0xFF || data[size - 1] != 0xD9) {
    refused_++;
    return Push::kNotJpeg;
  }
  if (dims->width > settings_.max_width || dims->height > settings_.max_height) {
    refused_++;
    oversized_++;
    return Push::kOversized;
  }
  received_++;
  last_frame_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
  push(gst_buffer_new_memdup(data, size));
  return Push::kOk;
}

StreamPipeline::Push StreamPipeline::push_bytes(const uint8_t* data, size_t size) {
  if (size > kMaxFrameBytes) {
    refused_++;
    return Push::kTooLarge;
  }
  received_++;
  last_frame_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
  push(gst_buffer_new_memdup(data, size));
  return Push::kOk;
}

// Byte-stream ingests name the element just before their decoder "admit":
// there the declared size is known (H.264: h264parse's caps from the SPS;
// VP8/VP9: the demuxer's caps and each key frame's header) and nothing is
// decoded yet. Frames over the limit, and the caps announcing them, stop
// there; the stream goes on when a frame of allowed size comes.
void StreamPipeline::watch_admission() {
  GstElement* admit = gst_bin_get_by_name(GST_BIN(pipeline_), "admit");
  if (!admit) return;
  GstPad* pad = gst_element_get_static_pad(admit, "sink");
  gst_pad_add_probe(
      pad, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      [](GstPad* pad, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
        auto* self = static_cast<StreamPipeline*>(data);
        auto too_big = [self](int w, int h) { return w > self->settings_.max_width || h > self->settings_.max_height; };
        if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
          GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
          if (GST_EVENT_TYPE(event) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
          GstCaps* caps = nullptr;
          gst_event_parse_caps(event, &caps);
          const GstStructure* s = gst_caps_get_structure(caps, 0);
          int w = 0, h = 0;
          if (s && gst_structure_get_int(s, "width", &w) && gst_structure_get_int(s, "height", &h) && too_big(w, h)) {
            self->refusing_ = true;
            return GST_PAD_PROBE_DROP;
          }
          self->refusing_ = false;
          return GST_PAD_PROBE_OK;
        }
        GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
        std::optional<Dimensions> key;
        if (GstCaps* caps = gst_pad_get_current_caps(pad)) {
          const char* name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
          GstMapInfo map;
          if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
            if (g_str_equal(name, "video/x-vp8")) key = vp8_keyframe_dimensions(map.data, map.size);
            else if (g_str_equal(name, "video/x-vp9")) key = vp9_keyframe_dimensions(map.data, map.size);
            gst_buffer_unmap(buffer, &map);
          }
          gst_caps_unref(caps);
        }
        if (key) self->refusing_ = too_big(key->width, key->height);  // inter frames follow their key frame
        if (!self->refusing_) return GST_PAD_PROBE_OK;
        self->refused_++;
        self->oversized_++;
        return GST_PAD_PROBE_DROP;
      },
      this, nullptr);
  gst_object_unref(pad);
  gst_object_unref(admit);
}

void StreamPipeline::set_style(const std::string& style) { g_object_set(filter_, "style", style.c_str(), nullptr); }
void StreamPipeline::set_strength(double strength) { g_object_set(filter_, "strength", strength, nullptr); }

std::string StreamPipeline::style() const {
  gchar* style = nullptr;
  g_object_get(filter_, "style", &style, nullptr);
  std::string out = style ? style : "";
  g_free(style);
  return out;
}

double StreamPipeline::strength() const {
  double strength = 0;
  g_object_get(filter_, "strength", &strength, nullptr);
  return strength;
}

std::shared_ptr<const std::string> StreamPipeline::latest_jpeg(uint64_t* sequence) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (sequence) *sequence = sequence_;
  return latest_;
}

void StreamPipeline::set_frame_callback(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  callback_ = std::move(callback);
}

void StreamPipeline::set_h264_callback(std::function<void(GstSample*)> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  h264_callback_ = std::move(callback);
}

void StreamPipeline::force_keyframe() {
  // Upstream from the appsink through the tee and h264parse to x264enc.
  if (webrtc_)
    gst_element_send_event(webrtc_, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
}

int StreamPipeline::count_elements(const std::string& factory) const {
  int n = 0;
  GValue item = G_VALUE_INIT;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(pipeline_));
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory* f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f && factory == GST_OBJECT_NAME(f)) ++n;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

uint64_t StreamPipeline::frames_processed() const {
  guint64 n = 0;
  g_object_get(filter_, "frames-processed", &n, nullptr);
  return n;
}

std::string StreamPipeline::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

GstFlowReturn StreamPipeline::on_sample(GstElement* sink, gpointer data) {
  auto* self = static_cast<StreamPipeline*>(data);
  GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink));
  if (!sample) return GST_FLOW_OK;
  GstBuffer* buffer = gst_sample_get_buffer(sample);
  GstMapInfo map;
  std::function<void()> callback;
  if (buffer && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    auto jpeg = std::make_shared<const std::string>(reinterpret_cast<const char*>(map.data), map.size);
    gst_buffer_unmap(buffer, &map);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->latest_ = std::move(jpeg);
    self->sequence_++;
    callback = self->callback_;
  }
  gst_sample_unref(sample);
  if (callback) callback();
  return GST_FLOW_OK;
}

void StreamPipeline::on_bus(GstMessage* message) {
  auto* self = this;
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ELEMENT && gst_message_has_name(message, "diffusionfilter-stats")) {
    const GstStructure* s = gst_message_get_structure(message);
    guint64 in = 0, processed = 0, dropped = 0;
    gdouble inference = 0, lag = 0;
    gst_structure_get(s, "frames-in", G_TYPE_UINT64, &in, "frames-processed", G_TYPE_UINT64, &processed,
                      "frames-dropped", G_TYPE_UINT64, &dropped, "inference-ms", G_TYPE_DOUBLE, &inference,
                      "lag-ms", G_TYPE_DOUBLE, &lag, nullptr);
    const auto now = std::chrono::steady_clock::now();
    const uint64_t decoded = self->decoded_;
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (self->stats_at_ != std::chrono::steady_clock::time_point{}) {
      const double seconds = std::chrono::duration<double>(now - self->stats_at_).count();
      if (seconds > 0) {
        self->processed_fps_ = double(processed - self->filter_processed_) / seconds;
        self->ingest_fps_ = double(decoded - self->decoded_at_stats_) / seconds;
      }
    }
    self->stats_at_ = now;
    self->decoded_at_stats_ = decoded;
    self->filter_in_ = in;
    self->filter_processed_ = processed;
    self->filter_dropped_ = dropped;
    self->inference_ms_ = inference;
    self->lag_ms_ = lag;
    // The per-frame inference histogram (diffusionfilter's stats message).
    const GValue* bounds = gst_structure_get_value(s, "inference-bounds-ms");
    const GValue* counts = gst_structure_get_value(s, "inference-counts");
    if (bounds && counts && GST_VALUE_HOLDS_ARRAY(bounds) && GST_VALUE_HOLDS_ARRAY(counts) &&
        gst_value_array_get_size(counts) == gst_value_array_get_size(bounds) + 1) {
      self->inference_bounds_ms_.clear();
      self->inference_counts_.clear();
      for (guint i = 0; i < gst_value_array_get_size(bounds); ++i)
        self->inference_bounds_ms_.push_back(g_value_get_double(gst_value_array_get_value(bounds, i)));
      for (guint i = 0; i < gst_value_array_get_size(counts); ++i)
        self->inference_counts_.push_back(g_value_get_uint64(gst_value_array_get_value(counts, i)));
      gst_structure_get_double(s, "inference-sum-ms", &self->inference_sum_ms_);
    }
  }
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    GError* error = nullptr;
    gst_message_parse_error(message, &error, nullptr);
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (self->error_.empty()) self->error_ = error ? error->message : "unknown error";
    g_clear_error(&error);
  }
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS) {
    std::lock_guard<std::mutex> lock(mutex_);
    eos_ = true;
    eos_cond_.notify_all();
  }
}

}  // namespace mirage::media

namespace mirage::media {

std::string StreamPipeline::health_json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string error;
  for (char c : error_) {
    if (c == '"' || c == '\\') error += '\\';
    error += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"ingest\":\"%s\",\"frames_received\":%llu,\"frames_decoded\":%llu,\"frames_refused\":%llu,"
                "\"frames_oversized\":%llu,\"ingest_dropped\":%llu,\"ingest_fps\":%.1f,\"processed_fps\":%.1f,"
                "\"frames_processed\":%llu,\"frames_dropped\":%llu,\"inference_ms\":%.1f,\"lag_ms\":%.1f,",
                settings_.ingest.c_str(), (unsigned long long)received_.load(), (unsigned long long)decoded_.load(),
                (unsigned long long)refused_.load(), (unsigned long long)oversized_.load(),
                (unsigned long long)dropped_.load(), ingest_fps_,
                processed_fps_, (unsigned long long)filter_processed_, (unsigned long long)filter_dropped_,
                inference_ms_, lag_ms_);
  // "inference_histogram": {"le_ms":[...], "counts":[...one more...], "sum_ms":S}
  std::string histogram = "{\"le_ms\":[";
  for (size_t i = 0; i < inference_bounds_ms_.size(); ++i)
    histogram += (i ? "," : "") + std::to_string(inference_bounds_ms_[i]);
  histogram += "],\"counts\":[";
  for (size_t i = 0; i < inference_counts_.size(); ++i)
    histogram += (i ? "," : "") + std::to_string(inference_counts_[i]);
  histogram += "],\"sum_ms\":" + std::to_string(inference_sum_ms_) + "}";
  return std::string(buf) + "\"inference_histogram\":" + histogram + ",\"last_error\":" +
         (error.empty() ? "null" : "\"" + error + "\"") + "}";
}

}  // namespace mirage::media

namespace mirage::media {

double StreamPipeline::seconds_since_frame() const {
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  return double(now - last_frame_ns_.load()) / 1e9;
}

uint64_t StreamPipeline::ingest_queued_bytes() const {
  guint64 level = 0;
  g_object_get(ingest_, "current-level-bytes", &level, nullptr);
  return level;
}

bool StreamPipeline::bus_has_pending() const {
  GstBus* bus = gst_element_get_bus(pipeline_);
  const bool pending = gst_bus_have_pending(bus);
  gst_object_unref(bus);
  return pending;
}

void StreamPipeline::hold_eos_for_test() {
  GstPad* pad = gst_element_get_static_pad(filter_, "src");
  gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      [](GstPad*, GstPadProbeInfo* info, gpointer) {
        return GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
      },
      nullptr, nullptr);
  gst_object_unref(pad);
}

void StreamPipeline::inject_error(const std::string& message) {
  GError* error = g_error_new_literal(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED, message.c_str());
  gst_element_post_message(filter_, gst_message_new_error(GST_OBJECT(filter_), error, "injected"));
  g_error_free(error);
}

}  // namespace mirage::media
