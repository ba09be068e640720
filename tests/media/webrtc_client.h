// Real WebRTC peers for the WHIP/WHEP tests and the bench, on webrtcbin
// with the daemon's own ICE restrictions (configure_ice: loopback only,
// UPnP off): a publisher of a live test pattern (H.264 or VP8) and a viewer
// that decodes what it receives. Non-trickle, like the WHIP/WHEP clients
// the worker expects: offer() returns once ICE gathering completed.
#pragma once

#define GST_USE_UNSTABLE_API
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "media/webrtc_session.h"

namespace mirage::test {

class WebRtcClient {
 public:
  enum class Kind { kPublisher, kViewer };
  WebRtcClient(Kind kind, const media::IceSettings& ice, const std::string& codec = "h264",
               const std::string& pattern = "ball") {
    std::string description;
    if (kind == Kind::kPublisher) {
      const std::string encode =
          codec == "vp8" ? "vp8enc deadline=1 keyframe-max-dist=15 ! rtpvp8pay pt=97 ! "
                           "application/x-rtp,media=video,encoding-name=VP8,payload=97,clock-rate=90000"
                         : "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
                           "! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 "
                           "aggregate-mode=zero-latency pt=96 ! application/x-rtp,media=video,encoding-name=H264,"
                           "payload=96,clock-rate=90000,packetization-mode=(string)1";
      description = "videotestsrc is-live=true pattern=" + pattern +
                    " ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! " + encode +
                    " ! webrtcbin name=w bundle-policy=max-bundle";
      pipeline_ = gst_parse_launch(description.c_str(), nullptr);
      webrtc_ = gst_bin_get_by_name(GST_BIN(pipeline_), "w");
    } else {
      pipeline_ = gst_pipeline_new(nullptr);
      webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
      g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
      gst_bin_add(GST_BIN(pipeline_), GST_ELEMENT(gst_object_ref(webrtc_)));
    }
    media::configure_ice(webrtc_, ice);
    g_signal_connect(webrtc_, "notify::ice-gathering-state", G_CALLBACK(+[](GstElement* w, GParamSpec*, gpointer d) {
                       GstWebRTCICEGatheringState s;
                       g_object_get(w, "ice-gathering-state", &s, nullptr);
                       auto* self = static_cast<WebRtcClient*>(d);
                       std::lock_guard<std::mutex> lock(self->mutex_);
                       if (s == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) self->gathered_ = true;
                       self->cv_.notify_all();
                     }),
                     this);
    if (kind == Kind::kViewer) {
      GstCaps* caps = gst_caps_from_string(
          "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
          "packetization-mode=(string)1,profile-level-id=(string)42e01f");
      GstWebRTCRTPTransceiver* t = nullptr;
      g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &t);
      gst_caps_unref(caps);
      if (t) gst_object_unref(t);
      g_signal_connect(webrtc_, "pad-added", G_CALLBACK(+[](GstElement* w, GstPad* pad, gpointer d) {
                         if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
                         auto* self = static_cast<WebRtcClient*>(d);
                         // decodebin as an element of its own (linked into a parsed bin the
                         // RTP pad refuses the link: not-negotiated), then RGB frames.
                         GstElement* parent = GST_ELEMENT(gst_element_get_parent(w));
                         GstElement* in = gst_element_factory_make("queue", nullptr);
                         GstElement* decode = gst_element_factory_make("decodebin", nullptr);
                         GstElement* out = gst_parse_bin_from_description(
                             "videoconvert ! video/x-raw,format=RGB ! appsink name=out sync=false max-buffers=2 drop=true",
                             TRUE, nullptr);
                         GstElement* sink = gst_bin_get_by_name(GST_BIN(out), "out");
                         GstAppSinkCallbacks cb{};
                         cb.new_sample = [](GstAppSink* s, gpointer d) -> GstFlowReturn {
                           auto* self = static_cast<WebRtcClient*>(d);
                           GstSample* sample = gst_app_sink_pull_sample(s);
                           if (!sample) return GST_FLOW_OK;
                           GstMapInfo map;
                           GstBuffer* b = gst_sample_get_buffer(sample);
                           if (gst_buffer_map(b, &map, GST_MAP_READ)) {
                             double sum = 0;
                             for (gsize i = 0; i < map.size; i += 3) sum += map.data[i];
                             std::lock_guard<std::mutex> lock(self->mutex_);
                             self->red_ = map.size ? sum / double(map.size / 3) : 0;
                             self->frames_++;
                             gst_buffer_unmap(b, &map);
                           }
                           gst_sample_unref(sample);
                           return GST_FLOW_OK;
                         };
                         gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, self, nullptr);
                         gst_object_unref(sink);
                         // Stop reading: drop every RTP packet from now on.
                         GstPad* inpad = gst_element_get_static_pad(in, "sink");
                         gst_pad_add_probe(inpad, GST_PAD_PROBE_TYPE_BUFFER,
                                           [](GstPad*, GstPadProbeInfo* info, gpointer d) {
                                             auto* self = static_cast<WebRtcClient*>(d);
                                             self->bytes_ += gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
                                             return self->deaf_ ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
                                           },
                                           self, nullptr);
                         gst_bin_add_many(GST_BIN(parent), in, decode, out, nullptr);
                         gst_element_link(in, decode);
                         g_signal_connect(decode, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* p, gpointer out) {
                                            GstPad* sinkpad = gst_element_get_static_pad(GST_ELEMENT(out), "sink");
                                            if (!gst_pad_is_linked(sinkpad)) gst_pad_link(p, sinkpad);
                                            gst_object_unref(sinkpad);
                                          }),
                                          out);
                         gst_element_sync_state_with_parent(out);
                         gst_element_sync_state_with_parent(decode);
                         gst_element_sync_state_with_parent(in);
                         gst_pad_link(pad, inpad);
                         gst_object_unref(inpad);
                         gst_object_unref(parent);
                       }),
                       this);
    }
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  }
  ~WebRtcClient() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(webrtc_);
    gst_object_unref(pipeline_);
  }
  WebRtcClient(const WebRtcClient&) = delete;
  WebRtcClient& operator=(const WebRtcClient&) = delete;

  // The complete offer (every candidate in it), or "" after 5 s.
  std::string offer() {
    GstPromise* p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "create-offer", nullptr, p);
    gst_promise_wait(p);
    GstWebRTCSessionDescription* offer = nullptr;
    const GstStructure* reply = gst_promise_get_reply(p);
    if (reply) gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
    gst_promise_unref(p);
    if (!offer) return "";
    p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-local-description", offer, p);
    gst_promise_wait(p);
    gst_promise_unref(p);
    gst_webrtc_session_description_free(offer);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return gathered_; })) return "";
    }
    GstWebRTCSessionDescription* local = nullptr;
    g_object_get(webrtc_, "local-description", &local, nullptr);
    gchar* text = gst_sdp_message_as_text(local->sdp);
    std::string sdp = text;
    g_free(text);
    gst_webrtc_session_description_free(local);
    return sdp;
  }
  bool set_answer(const std::string& sdp) {
    GstSDPMessage* message = nullptr;
    gst_sdp_message_new(&message);
    if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(sdp.data()), guint(sdp.size()), message) != GST_SDP_OK)
      return false;
    GstWebRTCSessionDescription* answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, message);
    GstPromise* p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-remote-description", answer, p);
    gst_promise_wait(p);
    gst_promise_unref(p);
    gst_webrtc_session_description_free(answer);
    return true;
  }
  bool connected() const {
    GstWebRTCPeerConnectionState s;
    g_object_get(webrtc_, "connection-state", &s, nullptr);
    return s == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED;
  }
  int frames() {
    std::lock_guard<std::mutex> lock(mutex_);
    return frames_;
  }
  double red() {  // mean red of the last frame
    std::lock_guard<std::mutex> lock(mutex_);
    return red_;
  }
  void stop_reading() { deaf_ = true; }
  uint64_t bytes() const { return bytes_; }  // RTP received (decrypted), all headers included

 private:
  GstElement* pipeline_ = nullptr;
  GstElement* webrtc_ = nullptr;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool gathered_ = false;
  int frames_ = 0;
  double red_ = 0;
  std::atomic<bool> deaf_{false};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace mirage::test
