#include "webrtc_session.h"

#define GST_USE_UNSTABLE_API  // gst/webrtc (stable in practice since 1.14)
#include <gio/gio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>
#include <nice/agent.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <sstream>

#include "log/log.h"
#include "sent_bytes.h"

namespace mirage::media {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, sep);) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool is_ip(const std::string& text) {
  GInetAddress* a = g_inet_address_new_from_string(text.c_str());
  if (a) g_object_unref(a);
  return a != nullptr;
}

// Waits for a webrtcbin promise; its reply (owned by the promise, null for
// a bare success).
const GstStructure* wait_reply(GstPromise* promise, bool* replied = nullptr) {
  const bool ok = gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED;
  if (replied) *replied = ok;
  return ok ? gst_promise_get_reply(promise) : nullptr;
}

// The error a reply carries; "" for none.
std::string promise_error(const GstStructure* reply) {
  if (!reply) return "";
  GError* error = nullptr;
  if (gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr) && error) {
    std::string message = error->message;
    g_error_free(error);
    return message;
  }
  return "";
}

// The payload types of |media| whose encoding is one of |names| (H.264 only
// with packetization-mode=1), their caps appended to |caps|. Returns the
// first such payload type, or -1.
int accepted_formats(const GstSDPMedia* media, const std::vector<std::string>& names, GstCaps* caps) {
  int first = -1;
  for (guint i = 0; i < gst_sdp_media_formats_len(media); ++i) {
    const int pt = std::atoi(gst_sdp_media_get_format(media, i));
    GstCaps* c = gst_sdp_media_get_caps_from_media(media, pt);
    if (!c) continue;
    GstStructure* s = gst_caps_get_structure(c, 0);
    const char* name = gst_structure_get_string(s, "encoding-name");
    bool ok = false;
    for (const auto& n : names) ok |= name && g_ascii_strcasecmp(name, n.c_str()) == 0;
    if (ok && name && g_ascii_strcasecmp(name, "H264") == 0) {
      const char* mode = gst_structure_get_string(s, "packetization-mode");
      ok = mode && std::string(mode) == "1";
    }
    if (!ok) {
      gst_caps_unref(c);
      continue;
    }
    gst_structure_set_name(s, "application/x-rtp");
    // Only what names the format: the remote's rtcp-fb and extmap fields
    // are not codec preferences.
    for (int f = int(gst_structure_n_fields(s)) - 1; f >= 0; --f) {
      const std::string field = gst_structure_nth_field_name(s, guint(f));
      if (field.rfind("rtcp-fb-", 0) == 0 || field.rfind("extmap-", 0) == 0 || field.rfind("a-", 0) == 0)
        gst_structure_remove_field(s, field.c_str());
    }
    if (first < 0) first = pt;
    gst_caps_append(caps, c);
  }
  return first;
}

// 1:1 NAT: the public address in place of the local one in the candidates.
std::string rewrite_candidates(const std::string& sdp, const std::vector<std::string>& locals, const std::string& ip) {
  if (ip.empty()) return sdp;
  std::string out;
  std::stringstream in(sdp);
  for (std::string line; std::getline(in, line);) {
    const bool cr = !line.empty() && line.back() == '\r';
    if (cr) line.pop_back();
    for (const auto& local : locals) {
      if (line.rfind("a=candidate:", 0) == 0) {
        const auto at = line.find(" " + local + " ");
        if (at != std::string::npos) line.replace(at + 1, local.size(), ip);
      } else if (line == "c=IN IP4 " + local) {
        line = "c=IN IP4 " + ip;
      }
    }
    out += line + (cr ? "\r\n" : "\n");
  }
  return out;
}

}  // namespace

bool parse_ice_settings(const std::string& addresses, const std::string& servers, const std::string& port_range,
                        const std::string& public_ip, IceSettings* out, std::string* error) {
  IceSettings ice;
  ice.addresses = split(addresses, ',');
  for (const auto& a : ice.addresses)
    if (!is_ip(a)) {
      *error = "'ice_addresses' entry '" + a + "' is not an IP address";
      return false;
    }
  ice.servers = split(servers, ',');
  for (const auto& s : ice.servers)
    if (s.rfind("stun://", 0) != 0 && s.rfind("turn://", 0) != 0 && s.rfind("turns://", 0) != 0) {
      *error = "'ice_servers' entry '" + s + "' must be stun://host:port or turn[s]://user:password@host:port";
      return false;
    }
  if (!port_range.empty()) {
    int lo = 0, hi = 0;
    char rest = 0;
    if (std::sscanf(port_range.c_str(), "%d-%d%c", &lo, &hi, &rest) != 2 || lo < 1 || hi > 65535 || lo > hi) {
      *error = "'ice_port_range' must be MIN-MAX (1-65535), not '" + port_range + "'";
      return false;
    }
    ice.min_port = lo;
    ice.max_port = hi;
  }
  if (!public_ip.empty() && !is_ip(public_ip)) {
    *error = "'ice_public_ip' '" + public_ip + "' is not an IP address";
    return false;
  }
  ice.public_ip = public_ip;
  *out = std::move(ice);
  return true;
}

void configure_ice(GstElement* webrtcbin, const IceSettings& ice) {
  GObject* agent_wrapper = nullptr;
  g_object_get(webrtcbin, "ice-agent", &agent_wrapper, nullptr);
  if (agent_wrapper) {
    if (ice.min_port > 0)
      g_object_set(agent_wrapper, "min-rtp-port", guint(ice.min_port), "max-rtp-port", guint(ice.max_port), nullptr);
    g_object_set(agent_wrapper, "ice-tcp", FALSE, nullptr);
    NiceAgent* agent = nullptr;
    g_object_get(agent_wrapper, "agent", &agent, nullptr);
    if (agent) {
      g_object_set(agent, "upnp", FALSE, "ice-tcp", FALSE, nullptr);
      // Only these addresses: libnice otherwise offers every interface's.
      const std::vector<std::string> addresses =
          ice.addresses.empty() ? std::vector<std::string>{"127.0.0.1"} : ice.addresses;
      for (const auto& a : addresses) {
        NiceAddress address;
        nice_address_init(&address);
        if (nice_address_set_from_string(&address, a.c_str())) nice_agent_add_local_address(agent, &address);
      }
      g_object_unref(agent);
    }
    g_object_unref(agent_wrapper);
  }
  for (const auto& s : ice.servers) {
    if (s.rfind("stun://", 0) == 0) {
      g_object_set(webrtcbin, "stun-server", s.c_str(), nullptr);
    } else {
      gboolean ok = FALSE;
      g_signal_emit_by_name(webrtcbin, "add-turn-server", s.c_str(), &ok);
    }
  }
  if (ice.relay_only) g_object_set(webrtcbin, "ice-transport-policy", GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY, nullptr);
}

std::vector<std::string> ice_link_headers(const IceSettings& ice) {
  std::vector<std::string> out;
  for (const auto& s : ice.servers) {
    const auto scheme = s.find("://");
    const std::string kind = s.substr(0, scheme), rest = s.substr(scheme + 3);
    const auto at = rest.rfind('@');
    if (at == std::string::npos) {
      out.push_back("<" + kind + ":" + rest + ">; rel=\"ice-server\"");
      continue;
    }
    const std::string credentials = rest.substr(0, at), host = rest.substr(at + 1);
    const auto colon = credentials.find(':');
    out.push_back("<" + kind + ":" + host + ">; rel=\"ice-server\"; username=\"" + credentials.substr(0, colon) +
                  "\"; credential=\"" + (colon == std::string::npos ? "" : credentials.substr(colon + 1)) +
                  "\"; credential-type=\"password\"");
  }
  return out;
}

struct WebRtcSession::Impl {
  GstElement* pipeline = nullptr;
  GstElement* webrtc = nullptr;
  GstElement* src = nullptr;  // viewer: the H.264 appsrc
  std::mutex mutex;
  std::condition_variable cv;
  bool gathered = false;
  bool caps_set = false;
  std::function<void(const std::string&)> on_frame;
  std::function<void()> on_closed, on_keyframe;
  std::atomic<bool> closed{false}, told_closed{false}, keyframe_seen{false};
  std::atomic<uint64_t> pushed{0}, frames{0};
  GstPad* video_pad = nullptr;  // publisher: webrtcbin's video src pad (PLI goes up it)
};

WebRtcSession::WebRtcSession(Role role) : role_(role), impl_(std::make_unique<Impl>()) {}

WebRtcSession::~WebRtcSession() {
  close();
  if (impl_->video_pad) gst_object_unref(impl_->video_pad);
  if (impl_->pipeline) gst_object_unref(impl_->pipeline);
}

WebRtcSession::Answer WebRtcSession::answer(Role role, const std::string& offer, const IceSettings& ice,
                                            std::shared_ptr<std::atomic<uint64_t>> sent) {
  Answer a;
  std::shared_ptr<WebRtcSession> session(new WebRtcSession(role));
  if (!session->build(offer, ice, std::move(sent), &a.sdp, &a.status, &a.error)) return a;
  a.session = std::move(session);
  return a;
}

bool WebRtcSession::build(const std::string& offer, const IceSettings& ice,
                          std::shared_ptr<std::atomic<uint64_t>> sent, std::string* answer, int* status,
                          std::string* error) {
  auto fail = [&](int code, const std::string& why) {
    *status = code;
    *error = why;
    return false;
  };
  GstSDPMessage* sdp = nullptr;
  gst_sdp_message_new(&sdp);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(offer.data()), guint(offer.size()), sdp) != GST_SDP_OK ||
      gst_sdp_message_medias_len(sdp) == 0 || offer.rfind("v=0", 0) != 0) {
    gst_sdp_message_free(sdp);
    return fail(400, "the body is not an SDP offer with media");
  }
  // What each m-line carries, and what we accept of it.
  struct Line {
    std::string media;
    GstCaps* caps;
    int pt;
  };
  std::vector<Line> lines;
  int video = -1;
  for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
    const GstSDPMedia* m = gst_sdp_message_get_media(sdp, i);
    Line line{gst_sdp_media_get_media(m) ? gst_sdp_media_get_media(m) : "", gst_caps_new_empty(), -1};
    if (line.media == "video")
      line.pt = accepted_formats(m, role_ == Role::kPublisher ? std::vector<std::string>{"H264", "VP8"}
                                                              : std::vector<std::string>{"H264"},
                                 line.caps);
    else if (line.media == "audio" && role_ == Role::kPublisher)
      line.pt = accepted_formats(m, {"OPUS", "PCMU", "PCMA", "G722"}, line.caps);
    if (line.media == "video" && line.pt >= 0 && video < 0) video = int(i);
    lines.push_back(line);
  }
  gst_sdp_message_free(sdp);
  auto free_lines = [&] {
    for (auto& l : lines) gst_caps_unref(l.caps);
  };
  if (video < 0) {
    free_lines();
    return fail(400, role_ == Role::kPublisher ? "the offer has no H.264 (packetization-mode=1) or VP8 video"
                                               : "the offer has no video with H.264 (packetization-mode=1) to receive");
  }

  Impl& d = *impl_;
  d.pipeline = gst_pipeline_new(nullptr);
  if (sent) count_network_sends(d.pipeline, std::move(sent));
  d.webrtc = gst_element_factory_make("webrtcbin", nullptr);
  if (!d.webrtc) {
    free_lines();
    return fail(503, "webrtcbin is not installed (gstreamer1.0-plugins-bad, gstreamer1.0-nice)");
  }
  g_object_set(d.webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", guint(100), nullptr);
  configure_ice(d.webrtc, ice);
  gst_bin_add(GST_BIN(d.pipeline), d.webrtc);
  g_signal_connect(d.webrtc, "notify::ice-gathering-state", G_CALLBACK(+[](GstElement* w, GParamSpec*, gpointer data) {
                     auto* d = static_cast<Impl*>(data);
                     GstWebRTCICEGatheringState state;
                     g_object_get(w, "ice-gathering-state", &state, nullptr);
                     if (state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
                     std::lock_guard<std::mutex> lock(d->mutex);
                     d->gathered = true;
                     d->cv.notify_all();
                   }),
                   &d);
  g_signal_connect(d.webrtc, "notify::connection-state", G_CALLBACK(+[](GstElement* w, GParamSpec*, gpointer data) {
                     auto* d = static_cast<Impl*>(data);
                     GstWebRTCPeerConnectionState state;
                     g_object_get(w, "connection-state", &state, nullptr);
                     if (state != GST_WEBRTC_PEER_CONNECTION_STATE_FAILED &&
                         state != GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED)
                       return;
                     std::function<void()> told;
                     {
                       std::lock_guard<std::mutex> lock(d->mutex);
                       if (d->told_closed.exchange(true)) return;
                       told = d->on_closed;
                     }
                     if (told) told();
                   }),
                   &d);
  if (role_ == Role::kPublisher) {
    // Each incoming stream: video decoded and JPEG-encoded for the stream's
    // ingest, audio dropped.
    g_signal_connect(d.webrtc, "pad-added", G_CALLBACK(+[](GstElement* w, GstPad* pad, gpointer data) {
                       auto* d = static_cast<Impl*>(data);
                       if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
                       // The caps may not say yet; the pad's transceiver does.
                       bool is_video = true;
                       GstWebRTCRTPTransceiver* t = nullptr;
                       g_object_get(pad, "transceiver", &t, nullptr);
                       if (t) {
                         GstWebRTCKind kind = GST_WEBRTC_KIND_UNKNOWN;
                         g_object_get(t, "kind", &kind, nullptr);
                         is_video = kind != GST_WEBRTC_KIND_AUDIO;
                         gst_object_unref(t);
                       }
                       if (GstCaps* caps = gst_pad_get_current_caps(pad)) {
                         const char* media = gst_structure_get_string(gst_caps_get_structure(caps, 0), "media");
                         if (media) is_video = std::string(media) == "video";
                         gst_caps_unref(caps);
                       }
                       GstElement* bin = GST_ELEMENT(gst_element_get_parent(w));
                       if (!is_video) {
                         GstElement* sink = gst_element_factory_make("fakesink", nullptr);
                         g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
                         gst_bin_add(GST_BIN(bin), sink);
                         gst_element_sync_state_with_parent(sink);
                         GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
                         gst_pad_link(pad, sinkpad);
                         gst_object_unref(sinkpad);
                         gst_object_unref(bin);
                         return;
                       }
                       // decodebin (its depayloader and decoder), then JPEG: decodebin's
                       // output pad appears once it knows the codec.
                       GError* error = nullptr;
                       GstElement* encode = gst_parse_bin_from_description(
                           "videoconvert ! jpegenc quality=85 ! appsink name=frames sync=false max-buffers=2 drop=true",
                           TRUE, &error);
                       GstElement* decode = gst_element_factory_make("decodebin", nullptr);
                       if (!encode || !decode) {
                         log::error("webrtc: cannot decode the publisher",
                                    {{"error", error ? error->message : "no decodebin"}});
                         g_clear_error(&error);
                         if (encode) gst_object_unref(encode);
                         if (decode) gst_object_unref(decode);
                         gst_object_unref(bin);
                         return;
                       }
                       GstElement* appsink = gst_bin_get_by_name(GST_BIN(encode), "frames");
                       GstAppSinkCallbacks callbacks = {};
                       callbacks.new_sample = [](GstAppSink* sink, gpointer data) -> GstFlowReturn {
                         auto* d = static_cast<Impl*>(data);
                         GstSample* sample = gst_app_sink_pull_sample(sink);
                         if (!sample) return GST_FLOW_OK;
                         GstMapInfo map;
                         GstBuffer* buffer = gst_sample_get_buffer(sample);
                         if (buffer && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
                           d->frames++;
                           std::function<void(const std::string&)> on_frame;
                           {
                             std::lock_guard<std::mutex> lock(d->mutex);
                             on_frame = d->on_frame;
                           }
                           if (on_frame && !d->closed) on_frame(std::string(reinterpret_cast<const char*>(map.data), map.size));
                           gst_buffer_unmap(buffer, &map);
                         }
                         gst_sample_unref(sample);
                         return GST_FLOW_OK;
                       };
                       gst_app_sink_set_callbacks(GST_APP_SINK(appsink), &callbacks, d, nullptr);
                       gst_object_unref(appsink);
                       gst_bin_add_many(GST_BIN(bin), decode, encode, nullptr);
                       g_signal_connect(decode, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* out, gpointer encode) {
                                          GstPad* in = gst_element_get_static_pad(GST_ELEMENT(encode), "sink");
                                          if (!gst_pad_is_linked(in)) gst_pad_link(out, in);
                                          gst_object_unref(in);
                                        }),
                                        encode);
                       gst_element_sync_state_with_parent(encode);
                       gst_element_sync_state_with_parent(decode);
                       GstPad* sinkpad = gst_element_get_static_pad(decode, "sink");
                       gst_pad_link(pad, sinkpad);
                       gst_object_unref(sinkpad);
                       {
                         std::lock_guard<std::mutex> lock(d->mutex);
                         if (!d->video_pad) d->video_pad = GST_PAD(gst_object_ref(pad));
                       }
                       // A browser sends a keyframe at the start and on PLI only.
                       gst_pad_send_event(pad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
                       gst_object_unref(bin);
                     }),
                     &d);
  } else {
    GError* parse_error = nullptr;
    const std::string description =
        "appsrc name=h264 is-live=true do-timestamp=true format=time max-buffers=30 leaky-type=downstream "
        "! rtph264pay config-interval=-1 aggregate-mode=zero-latency mtu=1200 pt=" +
        std::to_string(lines[size_t(video)].pt) +
        " ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=" +
        std::to_string(lines[size_t(video)].pt) + "\"";  // a trailing caps string would be a link, not an element
    GstElement* send = gst_parse_bin_from_description(description.c_str(), TRUE, &parse_error);
    if (!send) {
      free_lines();
      const std::string why = parse_error ? parse_error->message : "no payloader";
      g_clear_error(&parse_error);
      return fail(503, "cannot build the WHEP sender: " + why);
    }
    gst_bin_add(GST_BIN(d.pipeline), send);
    d.src = gst_bin_get_by_name(GST_BIN(send), "h264");
    // A PLI from the viewer reaches the payloader as an upstream
    // force-key-unit event: the stream's encoder makes a keyframe.
    GstPad* srcpad = gst_element_get_static_pad(d.src, "src");
    gst_pad_add_probe(srcpad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
                      [](GstPad*, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
                        auto* d = static_cast<Impl*>(data);
                        if (gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info))) {
                          std::function<void()> request;
                          {
                            std::lock_guard<std::mutex> lock(d->mutex);
                            request = d->on_keyframe;
                          }
                          if (request) request();
                        }
                        return GST_PAD_PROBE_OK;
                      },
                      &d, nullptr);
    gst_object_unref(srcpad);
  }
  gst_element_set_state(d.pipeline, GST_STATE_PLAYING);

  GstSDPMessage* remote = nullptr;
  gst_sdp_message_new(&remote);
  gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(offer.data()), guint(offer.size()), remote);
  GstWebRTCSessionDescription* desc = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, remote);
  GstPromise* promise = gst_promise_new();
  g_signal_emit_by_name(d.webrtc, "set-remote-description", desc, promise);
  bool replied = false;
  std::string remote_error = promise_error(wait_reply(promise, &replied));
  if (!replied) remote_error = "no reply from webrtcbin";
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(desc);
  if (!remote_error.empty()) {
    free_lines();
    return fail(400, "the offer was refused: " + remote_error);
  }
  // What we take of each m-line, before the answer is made.
  GArray* transceivers = nullptr;
  g_signal_emit_by_name(d.webrtc, "get-transceivers", &transceivers);
  for (guint i = 0; transceivers && i < transceivers->len; ++i) {
    GstWebRTCRTPTransceiver* t = g_array_index(transceivers, GstWebRTCRTPTransceiver*, i);
    guint mline = 0;
    g_object_get(t, "mlineindex", &mline, nullptr);
    if (mline >= lines.size()) continue;
    const Line& line = lines[mline];
    const bool take = line.pt >= 0 && (role_ == Role::kPublisher || int(mline) == video);
    GstWebRTCRTPTransceiverDirection direction =
        !take ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE
              : role_ == Role::kPublisher ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY
                                          : GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY;
    g_object_set(t, "direction", direction, nullptr);
    if (take) g_object_set(t, "codec-preferences", line.caps, nullptr);
  }
  if (transceivers) g_array_unref(transceivers);
  free_lines();
  if (role_ == Role::kViewer) {
    // The sender joins the video m-line's transceiver (the pad's name says which).
    GstPadTemplate* templ = gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(d.webrtc), "sink_%u");
    const std::string name = "sink_" + std::to_string(video);
    GstPad* sinkpad = gst_element_request_pad(d.webrtc, templ, name.c_str(), nullptr);
    GstElement* send = GST_ELEMENT(gst_element_get_parent(d.src));
    GstPad* srcpad = gst_element_get_static_pad(send, "src");
    const bool linked = sinkpad && gst_pad_link(srcpad, sinkpad) == GST_PAD_LINK_OK;
    gst_object_unref(srcpad);
    gst_object_unref(send);
    if (sinkpad) gst_object_unref(sinkpad);
    if (!linked) return fail(500, "could not attach the video sender to the offer's video m-line");
  }

  promise = gst_promise_new();
  g_signal_emit_by_name(d.webrtc, "create-answer", nullptr, promise);
  const GstStructure* reply = wait_reply(promise);
  GstWebRTCSessionDescription* local = nullptr;
  if (reply) gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &local, nullptr);
  const std::string answer_error = local ? "" : promise_error(reply);
  gst_promise_unref(promise);
  if (!local) return fail(400, "no answer to this offer: " + answer_error);
  promise = gst_promise_new();
  g_signal_emit_by_name(d.webrtc, "set-local-description", local, promise);
  wait_reply(promise);
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(local);

  // Non-trickle: the answer goes out with every candidate.
  {
    std::unique_lock<std::mutex> lock(d.mutex);
    if (!d.cv.wait_for(lock, std::chrono::seconds(5), [&] { return d.gathered; }))
      return fail(500, "ICE gathering did not complete within 5 s");
  }
  GstWebRTCSessionDescription* done = nullptr;
  g_object_get(d.webrtc, "local-description", &done, nullptr);
  if (!done) return fail(500, "no local description");
  gchar* text = gst_sdp_message_as_text(done->sdp);
  *answer = rewrite_candidates(text, ice.addresses, ice.public_ip);
  g_free(text);
  gst_webrtc_session_description_free(done);
  return true;
}

void WebRtcSession::set_on_frame(std::function<void(const std::string&)> on_frame) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->on_frame = std::move(on_frame);
}

void WebRtcSession::set_on_closed(std::function<void()> on_closed) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->on_closed = std::move(on_closed);
}

void WebRtcSession::set_on_keyframe_request(std::function<void()> on_request) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->on_keyframe = std::move(on_request);
}

void WebRtcSession::push(GstSample* sample) {
  Impl& d = *impl_;
  if (d.closed || !d.src) return;
  GstBuffer* buffer = gst_sample_get_buffer(sample);
  if (!buffer) return;
  // A decoder can start at a keyframe only.
  if (!d.keyframe_seen) {
    if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT)) return;
    d.keyframe_seen = true;
  }
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    if (!d.caps_set) {
      gst_app_src_set_caps(GST_APP_SRC(d.src), gst_sample_get_caps(sample));
      d.caps_set = true;
    }
  }
  // Its own timestamps (do-timestamp): the stream pipeline's mean nothing here.
  GstBuffer* copy = gst_buffer_copy(buffer);
  GST_BUFFER_PTS(copy) = GST_BUFFER_DTS(copy) = GST_CLOCK_TIME_NONE;
  if (gst_app_src_push_buffer(GST_APP_SRC(d.src), copy) == GST_FLOW_OK) d.pushed++;
}

uint64_t WebRtcSession::pushed() const { return impl_->pushed; }

uint64_t WebRtcSession::frames() const { return impl_->frames; }

void WebRtcSession::tick() {
  GstPad* pad = nullptr;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->video_pad) pad = GST_PAD(gst_object_ref(impl_->video_pad));
  }
  if (!pad) return;
  if (impl_->frames == 0 && !impl_->closed)
    gst_pad_send_event(pad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  gst_object_unref(pad);
}

void WebRtcSession::close() {
  if (impl_->closed.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->on_frame = nullptr;
    impl_->on_closed = nullptr;
    impl_->on_keyframe = nullptr;
  }
  if (impl_->src) gst_app_src_end_of_stream(GST_APP_SRC(impl_->src));
  if (impl_->pipeline) gst_element_set_state(impl_->pipeline, GST_STATE_NULL);
  if (impl_->src) {
    gst_object_unref(impl_->src);
    impl_->src = nullptr;
  }
}

}  // namespace mirage::media
