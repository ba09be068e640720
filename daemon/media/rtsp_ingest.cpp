#include "rtsp_ingest.h"

#include <gst/app/gstappsink.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <cstdio>
#include <cstring>

#include "log/log.h"

namespace mirage::media {

namespace {

constexpr const char* kPrefix = "/ingest/";

// The media of one RECORD session: RTP H.264 in, access units out.
constexpr const char* kLaunch =
    "( rtph264depay name=depay0 ! h264parse config-interval=-1 "
    "! video/x-h264,stream-format=byte-stream,alignment=au "
    "! appsink name=sink sync=false max-buffers=64 drop=true )";

// "/ingest/alice" or "/ingest/alice/stream=0" -> "alice".
std::string user_of(const GstRTSPUrl* url) {
  if (!url || !url->abspath || !g_str_has_prefix(url->abspath, kPrefix)) return "";
  std::string rest = url->abspath + std::strlen(kPrefix);
  return rest.substr(0, rest.find('/'));
}

struct MediaCtx {
  std::function<void(const std::string&, const uint8_t*, size_t)> data;
  std::string username;
};

}  // namespace

RtspIngest::RtspIngest(Hooks hooks) : hooks_(std::move(hooks)) {}

RtspIngest::~RtspIngest() {
  if (!server_) return;
  gst_rtsp_server_client_filter(
      server_,
      [](GstRTSPServer*, GstRTSPClient* client, gpointer) {
        gst_rtsp_client_close(client);
        return GST_RTSP_FILTER_REMOVE;
      },
      nullptr);
  if (source_) {
    g_source_destroy(source_);
    g_source_unref(source_);
  }
  g_object_unref(server_);
  g_object_unref(auth_);
}

bool RtspIngest::start(const std::string& addr, GMainContext* context, std::string* error) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) {
    *error = "bad RTSP listen address '" + addr + "' (want address:port)";
    return false;
  }
  server_ = gst_rtsp_server_new();
  auth_ = gst_rtsp_auth_new();
  gst_rtsp_auth_set_supported_methods(auth_, GST_RTSP_AUTH_BASIC);
  gst_rtsp_server_set_auth(server_, auth_);
  gst_rtsp_server_set_address(server_, addr.substr(0, colon).c_str());
  gst_rtsp_server_set_service(server_, addr.substr(colon + 1).c_str());
  g_signal_connect(server_, "client-connected", G_CALLBACK(+[](GstRTSPServer*, GstRTSPClient* client, gpointer self) {
                     g_signal_connect(client, "pre-announce-request", G_CALLBACK(on_announce), self);
                     g_signal_connect(client, "pre-setup-request", G_CALLBACK(on_setup_or_record), self);
                     g_signal_connect(client, "pre-record-request", G_CALLBACK(on_setup_or_record), self);
                     g_signal_connect(client, "closed", G_CALLBACK(+[](GstRTSPClient* c, gpointer data) {
                                        auto* self = static_cast<RtspIngest*>(data);
                                        auto it = self->admitted_.find(c);
                                        if (it == self->admitted_.end()) return;
                                        const std::string user = it->second;
                                        self->admitted_.erase(it);
                                        self->hooks_.closed(user);
                                      }),
                                      self);
                   }),
                   this);
  GError* attach_error = nullptr;
  GSource* source = gst_rtsp_server_create_source(server_, nullptr, &attach_error);
  if (!source) {
    *error = "RTSP cannot listen on " + addr + ": " + (attach_error ? attach_error->message : "unknown error");
    g_clear_error(&attach_error);
    return false;
  }
  g_source_attach(source, context);
  source_ = source;
  port_ = uint16_t(gst_rtsp_server_get_bound_port(server_));
  return true;
}

int RtspIngest::on_announce(GstRTSPClient* client, void* ctx_ptr, void* data) {
  auto* self = static_cast<RtspIngest*>(data);
  auto* ctx = static_cast<GstRTSPContext*>(ctx_ptr);
  // gst-rtsp-server has checked the credentials against the mount's role.
  const std::string user = user_of(ctx->uri);
  if (user.empty()) return GST_RTSP_STS_NOT_FOUND;
  const int verdict = self->hooks_.admit(user);
  if (verdict != 0) {
    log::warn("RTSP ANNOUNCE refused", {{"user", user}, {"status", verdict}});
    return verdict;
  }
  self->admitted_[client] = user;
  self->hooks_.connected(user);
  return GST_RTSP_STS_OK;
}

int RtspIngest::on_setup_or_record(GstRTSPClient* client, void* ctx_ptr, void* data) {
  auto* self = static_cast<RtspIngest*>(data);
  auto* ctx = static_cast<GstRTSPContext*>(ctx_ptr);
  auto it = self->admitted_.find(client);
  return it != self->admitted_.end() && it->second == user_of(ctx->uri) ? GST_RTSP_STS_OK : GST_RTSP_STS_UNAUTHORIZED;
}

void RtspIngest::add(const std::string& username, const std::string& secret) {
  // Basic credentials username:secret carry the role named after the user;
  // the user's mount admits that role only.
  const std::string pair = username + ":" + secret;
  gchar* basic = g_base64_encode(reinterpret_cast<const guchar*>(pair.data()), pair.size());
  GstRTSPToken* token = gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, username.c_str(), nullptr);
  gst_rtsp_auth_add_basic(auth_, basic, token);
  gst_rtsp_token_unref(token);
  credentials_[username] = basic;
  g_free(basic);
  GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
  gst_rtsp_media_factory_add_role(factory, username.c_str(), GST_RTSP_PERM_MEDIA_FACTORY_ACCESS, G_TYPE_BOOLEAN, TRUE,
                                  GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN, TRUE, nullptr);
  gst_rtsp_media_factory_set_launch(factory, kLaunch);
  gst_rtsp_media_factory_set_transport_mode(factory, GST_RTSP_TRANSPORT_MODE_RECORD);
  gst_rtsp_media_factory_set_latency(factory, 100);
  auto* ctx = new MediaCtx{hooks_.data, username};
  g_signal_connect_data(
      factory, "media-configure", G_CALLBACK(+[](GstRTSPMediaFactory*, GstRTSPMedia* media, gpointer data) {
        auto* ctx = static_cast<MediaCtx*>(data);
        GstElement* bin = gst_rtsp_media_get_element(media);
        GstElement* sink = gst_bin_get_by_name(GST_BIN(bin), "sink");
        GstAppSinkCallbacks callbacks{};
        callbacks.new_sample = [](GstAppSink* appsink, gpointer data) -> GstFlowReturn {
          auto* ctx = static_cast<MediaCtx*>(data);
          GstSample* sample = gst_app_sink_pull_sample(appsink);
          if (!sample) return GST_FLOW_EOS;
          GstMapInfo map;
          GstBuffer* buffer = gst_sample_get_buffer(sample);
          if (buffer && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
            ctx->data(ctx->username, map.data, map.size);
            gst_buffer_unmap(buffer, &map);
          }
          gst_sample_unref(sample);
          return GST_FLOW_OK;
        };
        // A copy per media: a media may outlive its factory (unmounted on stop).
        gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, new MediaCtx(*ctx),
                                   [](gpointer data) { delete static_cast<MediaCtx*>(data); });
        gst_object_unref(sink);
        gst_object_unref(bin);
      }),
      ctx, [](gpointer data, GClosure*) { delete static_cast<MediaCtx*>(data); }, GConnectFlags(0));
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server_);
  gst_rtsp_mount_points_add_factory(mounts, (kPrefix + username).c_str(), factory);  // takes the factory
  g_object_unref(mounts);
}

void RtspIngest::remove(const std::string& username) {
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server_);
  gst_rtsp_mount_points_remove_factory(mounts, (kPrefix + username).c_str());
  g_object_unref(mounts);
  if (auto it = credentials_.find(username); it != credentials_.end()) {
    gst_rtsp_auth_remove_basic(auth_, it->second.c_str());
    credentials_.erase(it);
  }
  for (auto it = admitted_.begin(); it != admitted_.end();) {
    if (it->second == username) {
      GstRTSPClient* client = it->first;
      it = admitted_.erase(it);  // no closed hook: the stream has ended anyway
      gst_rtsp_client_close(client);
    } else {
      ++it;
    }
  }
}

}  // namespace mirage::media
