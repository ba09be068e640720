// The media server's loop thread and its one TCP port: start (libsoup's
// handlers on the media port, the SRT and RTSP listeners), our own listener
// that counts, caps and times out each connection before libsoup reads a
// byte of it, and posting work onto the loop. Everything here runs on the
// loop thread unless it says otherwise; nothing here blocks.
#include <gio/gio.h>
#include <gst/rtsp/gstrtspdefs.h>
#include <libsoup/soup.h>
#include <srt/access_control.h>

#include <condition_variable>
#include <cstdio>
#include <future>

#include "media_server.h"

namespace mirage::media {

namespace {

// "host:port" of a socket address, the key of connections_.
std::string key_of(GSocketAddress* address) {
  if (!address || !G_IS_INET_SOCKET_ADDRESS(address)) return "";
  auto* inet = G_INET_SOCKET_ADDRESS(address);
  gchar* host = g_inet_address_to_string(g_inet_socket_address_get_address(inet));
  std::string key = std::string(host) + ":" + std::to_string(g_inet_socket_address_get_port(inet));
  g_free(host);
  return key;
}

std::string host_of(GSocketAddress* address) {
  const std::string key = key_of(address);
  return key.substr(0, key.rfind(':'));
}

// Refuses a connection before libsoup sees it: a short answer, then close.
void refuse(GSocketConnection* connection, const char* why) {
  const std::string body = std::string("{\"error\":{\"code\":\"too_many_connections\",\"message\":\"") + why + "\"}}";
  const std::string response = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                               "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  GSocket* socket = g_socket_connection_get_socket(connection);
  g_socket_set_blocking(socket, FALSE);
  g_socket_send(socket, response.data(), response.size(), nullptr, nullptr);
  g_io_stream_close(G_IO_STREAM(connection), nullptr, nullptr);
}

}  // namespace

bool MediaServer::start(std::string* error) {
  std::string proxies_error;
  if (!auth::TrustedProxies::parse(settings_.trusted_proxies, &proxies_error)) {
    *error = proxies_error;
    return false;
  }
  model_ = ModelProbe::load(settings_.model, settings_.device, error);
  if (!model_) return false;
  context_ = g_main_context_new();
  loop_ = g_main_loop_new(context_, FALSE);
  std::mutex m;
  std::condition_variable cv;
  bool ready = false;
  std::string start_error;
  thread_ = std::thread([&] {
    g_main_context_push_thread_default(context_);
    server_ = soup_server_new(nullptr, nullptr);
    soup_server_add_early_handler(server_, "/ingest", on_ingest_early, this, nullptr);
    soup_server_add_websocket_handler(server_, "/ingest", nullptr, nullptr, on_ingest, this, nullptr);
    soup_server_add_websocket_handler(server_, "/watch", nullptr, nullptr, on_watch, this, nullptr);
    soup_server_add_websocket_handler(server_, "/events", nullptr, nullptr, on_events, this, nullptr);
    soup_server_add_handler(server_, "/live", on_hls, this, nullptr);
    soup_server_add_handler(server_, "/thumbnail", on_thumbnail, this, nullptr);
    soup_server_add_handler(server_, "/healthz", on_probe, this, nullptr);
    soup_server_add_handler(server_, "/readyz", on_probe, this, nullptr);
    soup_server_add_early_handler(server_, "/whip", on_webrtc_early, this, nullptr);
    soup_server_add_early_handler(server_, "/whep", on_webrtc_early, this, nullptr);
    soup_server_add_handler(server_, "/whip", on_whip, this, nullptr);
    soup_server_add_handler(server_, "/whep", on_whep, this, nullptr);
    listen(&start_error);
    if (start_error.empty() && !settings_.rtsp_addr.empty()) {
      RtspIngest::Hooks hooks;
      hooks.admit = [this](const std::string& user) {
        switch (admit(user, nullptr, "rtsp")) {  // the RTSP server has checked the secret
          case Admit::kOk: return 0;
          case Admit::kNotLive: return int(GST_RTSP_STS_NOT_FOUND);
          case Admit::kWrongSecret: return int(GST_RTSP_STS_UNAUTHORIZED);
          case Admit::kBusy: return int(GST_RTSP_STS_METHOD_NOT_VALID_IN_THIS_STATE);  // 455: RTSP has no 409
        }
        return int(GST_RTSP_STS_FORBIDDEN);
      };
      hooks.connected = [this](const std::string& user) { external_connected(user, "rtsp", "h264"); };
      hooks.data = [this](const std::string& user, const uint8_t* data, size_t size) { push_external(user, "h264", data, size); };
      hooks.closed = [this](const std::string& user) { external_closed(user, "rtsp"); };
      rtsp_ = std::make_unique<RtspIngest>(std::move(hooks));
      if (!rtsp_->start(settings_.rtsp_addr, context_, &start_error)) rtsp_.reset();
    }
    {
      std::lock_guard<std::mutex> lock(m);
      ready = true;
    }
    cv.notify_one();
    g_main_loop_run(loop_);
    g_main_context_pop_thread_default(context_);
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return ready; });
  if (start_error.empty() && !settings_.srt_addr.empty()) {
    SrtIngest::Hooks hooks;
    hooks.admit = [this](const std::string& user, const std::string& secret, std::function<bool()> alive) {
      switch (admit(user, &secret, "srt", std::move(alive))) {
        case Admit::kOk: return 0;
        case Admit::kNotLive: return SRT_REJX_NOTFOUND;
        case Admit::kWrongSecret: return SRT_REJX_FORBIDDEN;
        case Admit::kBusy: return SRT_REJX_CONFLICT;
      }
      return SRT_REJX_FORBIDDEN;
    };
    hooks.connected = [this](const std::string& user) { external_connected(user, "srt", "ts"); };
    hooks.data = [this](const std::string& user, const uint8_t* data, size_t size) { push_external(user, "ts", data, size); };
    hooks.closed = [this](const std::string& user) { external_closed(user, "srt"); };
    srt_ = std::make_unique<SrtIngest>(std::move(hooks));
    if (!srt_->start(settings_.srt_addr, settings_.srt_passphrase, &start_error)) srt_.reset();
  }
  if (!start_error.empty()) {
    *error = start_error;
    return false;
  }
  // Viewer counts on /events every 2 s.
  GSource* timer = g_timeout_source_new_seconds(2);
  g_source_set_callback(
      timer,
      [](gpointer data) -> gboolean {
        auto* self = static_cast<MediaServer*>(data);
        std::vector<std::pair<std::string, int>> counts;
        {
          std::lock_guard<std::mutex> lock(self->mutex_);
          const auto now = ViewerCount::Clock::now();
          for (const auto& [name, id] : self->by_user_)
            if (auto it = self->streams_.find(id); it != self->streams_.end())
              counts.emplace_back(name, it->second->viewers.current(now));
        }
        for (const auto& [name, count] : counts)
          self->broadcast(name, "{\"type\":\"viewers\",\"count\":" + std::to_string(count) + "}");
        return G_SOURCE_CONTINUE;
      },
      this, nullptr);
  g_source_attach(timer, context_);
  g_source_unref(timer);
  return true;
}

// The media port: our own listener, so that each connection is counted and
// capped before libsoup reads a byte of it.
bool MediaServer::listen(std::string* error) {
  const auto colon = settings_.addr.rfind(':');
  GSocketAddress* address = colon == std::string::npos ? nullptr
                                                       : g_inet_socket_address_new_from_string(
                                                             settings_.addr.substr(0, colon).c_str(),
                                                             guint(std::stoi(settings_.addr.substr(colon + 1))));
  service_ = g_socket_service_new();
  g_socket_listener_set_backlog(G_SOCKET_LISTENER(service_), 1024);
  GSocketAddress* effective = nullptr;
  GError* listen_error = nullptr;
  if (!address || !g_socket_listener_add_address(G_SOCKET_LISTENER(service_), address, G_SOCKET_TYPE_STREAM,
                                                 G_SOCKET_PROTOCOL_TCP, nullptr, &effective, &listen_error)) {
    *error = "media server cannot listen on " + settings_.addr + ": " + (listen_error ? listen_error->message : "bad address");
    g_clear_error(&listen_error);
    if (address) g_object_unref(address);
    return false;
  }
  port_ = uint16_t(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective)));
  g_object_unref(effective);
  g_object_unref(address);
  g_signal_connect(service_, "incoming", G_CALLBACK(on_incoming), this);
  g_socket_service_start(service_);
  return true;
}

int MediaServer::on_incoming(GSocketService*, GSocketConnection* connection, GObject*, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  GSocketAddress* remote = g_socket_connection_get_remote_address(connection, nullptr);
  GSocketAddress* local = g_socket_connection_get_local_address(connection, nullptr);
  const std::string key = key_of(remote), host = host_of(remote);
  const bool proxy = self->trusted_.contains(host);
  if (!remote || !local || self->connections_.size() >= size_t(self->settings_.max_connections) ||
      (!proxy && self->per_host_[host] >= self->settings_.connections_per_address)) {
    self->refused_connections_++;
    refuse(connection, self->connections_.size() >= size_t(self->settings_.max_connections)
                           ? "the media server has too many connections; try again shortly"
                           : "too many connections from this address; close some and try again");
  } else {
    GSocket* socket = g_socket_connection_get_socket(connection);
    // No I/O for this long and the socket's sources fire with a timeout:
    // libsoup reads an error and closes. Idle HTTP connections go this way;
    // WebSockets stay open while their peer answers the pings.
    g_socket_set_timeout(socket, guint(self->settings_.idle_timeout_seconds));
    self->connections_[key] = {host, socket};
    self->per_host_[host]++;
    // Counted until the connection object goes, whoever dropped it last.
    struct Forget {
      MediaServer* self;
      std::string key, host;
    };
    g_object_weak_ref(
        G_OBJECT(connection),
        [](gpointer data, GObject*) {
          auto* f = static_cast<Forget*>(data);
          f->self->connections_.erase(f->key);
          if (--f->self->per_host_[f->host] <= 0) f->self->per_host_.erase(f->host);
          delete f;
        },
        new Forget{self, key, host});
    GError* error = nullptr;
    soup_server_accept_iostream(self->server_, G_IO_STREAM(connection), local, remote, &error);
    g_clear_error(&error);
  }
  if (remote) g_object_unref(remote);
  if (local) g_object_unref(local);
  return TRUE;
}

size_t MediaServer::connections_open() {
  std::promise<size_t> n;
  post([this, &n] { n.set_value(connections_.size()); });
  return n.get_future().get();
}

uint64_t MediaServer::connections_refused() {
  std::promise<uint64_t> n;
  post([this, &n] { n.set_value(refused_connections_); });
  return n.get_future().get();
}

// The client's address: the peer's, or what a trusted proxy says.
std::string MediaServer::client_address(SoupServerMessage* msg) {
  const std::string peer = host_of(soup_server_message_get_remote_address(msg));
  const char* forwarded = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "X-Forwarded-For");
  return trusted_.client(peer, forwarded ? forwarded : "");
}

GSocket* MediaServer::socket_of(SoupServerMessage* msg) {
  auto it = connections_.find(key_of(soup_server_message_get_remote_address(msg)));
  return it == connections_.end() ? nullptr : it->second.socket;
}

void MediaServer::post(std::function<void()> fn) {
  auto* task = new std::function<void()>(std::move(fn));
  g_main_context_invoke_full(
      context_, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        (*static_cast<std::function<void()>*>(data))();
        return G_SOURCE_REMOVE;
      },
      task, [](gpointer data) { delete static_cast<std::function<void()>*>(data); });
}

}  // namespace mirage::media
