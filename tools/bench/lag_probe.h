// LagProbe: measures lag where buffers leave a pipeline, as the foundation
// issue defines it: (time the output leaves) - (capture time of the input it
// was computed from), both as running time on the pipeline clock.
//
// The capture time is the buffer's PTS (a live source stamps its capture
// running time) or, for diffusionfilter, the source PTS it attaches as a
// GstReferenceTimestampMeta with caps timestamp/x-diffusionfilter-source:
// in hold mode the output carries the input's timing but an older image.
// Shared by tests/element/live_lag_test.cpp and the benchmark.
#pragma once

#include <gst/gst.h>

#include <mutex>
#include <vector>

namespace mirage::bench {

struct LagSample {
  double at_s;    // running time of the output, seconds
  double lag_ms;  // output running time minus capture running time
};

class LagProbe {
 public:
  // Watches buffers arriving at |pad| (typically a sink's sink pad).
  // |from_source_meta|: read the capture time from diffusionfilter's meta;
  // buffers without it (hold mode's placeholder) are not counted.
  LagProbe(GstElement* pipeline, GstPad* pad, bool from_source_meta)
      : pipeline_(pipeline), from_meta_(from_source_meta) {
    source_caps_ = gst_caps_new_empty_simple("timestamp/x-diffusionfilter-source");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &LagProbe::on_buffer, this, nullptr);
  }
  ~LagProbe() { gst_caps_unref(source_caps_); }
  LagProbe(const LagProbe&) = delete;
  LagProbe& operator=(const LagProbe&) = delete;

  std::vector<LagSample> samples() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return samples_;
  }

 private:
  static GstPadProbeReturn on_buffer(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<LagProbe*>(data);
    GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    GstClockTime capture = GST_BUFFER_PTS(buffer);
    if (self->from_meta_) {
      GstReferenceTimestampMeta* meta =
          gst_buffer_get_reference_timestamp_meta(buffer, self->source_caps_);
      capture = meta ? meta->timestamp : GST_CLOCK_TIME_NONE;
    }
    GstClock* clock = gst_element_get_clock(self->pipeline_);
    if (!clock || !GST_CLOCK_TIME_IS_VALID(capture)) {
      if (clock) gst_object_unref(clock);
      return GST_PAD_PROBE_OK;
    }
    const GstClockTime now = gst_clock_get_time(clock) - gst_element_get_base_time(self->pipeline_);
    gst_object_unref(clock);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->samples_.push_back(
        {double(now) / GST_SECOND, (double(now) - double(capture)) / GST_MSECOND});
    return GST_PAD_PROBE_OK;
  }

  GstElement* pipeline_;
  bool from_meta_;
  GstCaps* source_caps_;
  mutable std::mutex mutex_;  // guards samples_ (the probe runs on the streaming thread)
  std::vector<LagSample> samples_;
};

}  // namespace mirage::bench
