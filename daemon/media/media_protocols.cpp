// The media server's loop thread: the media port (accepting connections,
// capping them, timing them out), libsoup's WebSocket and HLS handlers, and
// the SRT and RTSP listeners' start. Everything here runs on the loop
// thread unless it says otherwise; nothing here blocks.
#include <gio/gio.h>
#include <gst/rtsp/gstrtspdefs.h>
#include <libsoup/soup.h>
#include <srt/access_control.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <regex>

#include "auth/token.h"
#include "media_server.h"

namespace mirage::media {

namespace {

constexpr gint kWatcherSendBuffer = 64 << 10;  // per WebSocket viewer, in the kernel (which doubles it)
// WebSocket pings, three per idle timeout: a live peer's pongs keep its
// socket from timing out.
guint keepalive_of(int idle_timeout_seconds) { return guint(std::max(1, idle_timeout_seconds / 3)); }

// "/ingest/alice" -> "alice" (one path segment after the prefix).
std::string user_of(const char* path, const char* prefix) {
  std::string p = path;
  std::string rest = p.substr(std::string(prefix).size());
  if (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
  return rest.substr(0, rest.find('/'));
}

// The value of |name| in the request's query string, or "".
std::string query_param(SoupServerMessage* msg, const char* name) {
  std::string value;
  if (const char* q = g_uri_get_query(soup_server_message_get_uri(msg))) {
    if (GHashTable* params = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, nullptr)) {
      if (auto* v = static_cast<const char*>(g_hash_table_lookup(params, name))) value = v;
      g_hash_table_unref(params);
    }
  }
  return value;
}

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

// A new processed frame (streaming thread): one send per main-loop turn,
// always of the newest frame, so a burst collapses instead of queueing.
void MediaServer::on_frame(int64_t stream_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(stream_id);
    if (it == streams_.end() || it->second->send_pending || it->second->watchers.empty()) return;
    it->second->send_pending = true;
  }
  post([this, stream_id] {
    std::shared_ptr<const std::string> jpeg;
    std::vector<SoupWebsocketConnection*> watchers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = streams_.find(stream_id);
      if (it == streams_.end()) return;
      it->second->send_pending = false;
      if (it->second->pipeline) jpeg = it->second->pipeline->latest_jpeg();
      for (const auto& [w, info] : it->second->watchers) watchers.push_back(w);
    }
    if (!jpeg) return;
    uint64_t skipped = 0;
    for (auto* w : watchers) {
      if (soup_websocket_connection_get_state(w) != SOUP_WEBSOCKET_STATE_OPEN) continue;
      // Backpressure: libsoup queues without bound, so a frame is only
      // handed to it when the socket can take bytes now. A slow viewer
      // skips frames and gets the newest one when it catches up.
      auto* socket = static_cast<GSocket*>(g_object_get_data(G_OBJECT(w), "mirage-socket"));
      if (socket && !(g_socket_condition_check(socket, G_IO_OUT) & G_IO_OUT)) {
        ++skipped;
        continue;
      }
      soup_websocket_connection_send_binary(w, jpeg->data(), jpeg->size());
    }
    if (skipped) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = streams_.find(stream_id); it != streams_.end()) it->second->watch_frames_skipped += skipped;
    }
  });
}

void MediaServer::broadcast(const std::string& username, const std::string& json) {
  auto it = listeners_.find(username);
  if (it == listeners_.end()) return;
  for (auto* l : std::vector<SoupWebsocketConnection*>(it->second.begin(), it->second.end()))
    if (soup_websocket_connection_get_state(l) == SOUP_WEBSOCKET_STATE_OPEN) soup_websocket_connection_send_text(l, json.c_str());
}

// The stream ended: its publisher is closed with the reason (e.g.
// credits_exhausted), its viewers are told.
void MediaServer::close_stream_connections(const StreamPtr& stream, const std::string& reason) {
  SoupWebsocketConnection* ingest = nullptr;
  std::vector<SoupWebsocketConnection*> watchers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ingest = stream->ingest_ws;
    for (const auto& [w, info] : stream->watchers) watchers.push_back(w);
  }
  if (ingest) soup_websocket_connection_close(ingest, SOUP_WEBSOCKET_CLOSE_NORMAL, reason.c_str());
  for (auto* w : watchers) soup_websocket_connection_close(w, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "stream ended");
}

// Before the WebSocket handshake: only the live stream's secret gets in, so
// nothing reaches a pipeline otherwise. Checked against the secret the
// daemon gave with stream_started, in constant time, without a query.
void MediaServer::on_ingest_early(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/ingest");
  const char* secret = query ? static_cast<const char*>(g_hash_table_lookup(query, "secret")) : nullptr;
  bool ok = false;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    StreamPtr s = self->live_locked(username);
    ok = s && secret && auth::constant_time_equals(secret, s->secret);
  }
  if (!ok) soup_server_message_set_status(msg, SOUP_STATUS_FORBIDDEN, nullptr);
}

void MediaServer::on_ingest(SoupServer*, SoupServerMessage* msg, const char* path, SoupWebsocketConnection* conn,
                            void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/ingest");
  // ?format=webm: a MediaRecorder byte stream instead of JPEG frames. The
  // stream's pipeline is rebuilt with the matching ingest part.
  const std::string format = query_param(msg, "format") == "webm" ? "webm" : "jpeg";
  // Frames over the JPEG limit are refused by libsoup as they are announced
  // (close 1009, "message too big"), before their bytes are buffered.
  soup_websocket_connection_set_max_incoming_payload_size(conn, StreamPipeline::kMaxFrameBytes);
  soup_websocket_connection_set_keepalive_interval(conn, keepalive_of(self->settings_.idle_timeout_seconds));
  StreamPtr stream;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    stream = self->live_locked(username);
    if (!stream || publisher_busy(*stream)) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, stream ? "already ingesting" : "not live");
      return;
    }
    stream->publisher = "websocket";
    stream->publisher_confirmed = true;
    stream->claim_alive = nullptr;
    stream->ingest_ws = static_cast<SoupWebsocketConnection*>(g_object_ref(conn));
    if (format == "webm") self->new_publisher_locked(stream, format);
    else if (stream->ingest != format) {
      stream->ingest = format;
      stream->building = true;
      stream->strand->post([self, stream] { self->rebuild(stream, true); });
    }
  }
  struct Ctx {
    MediaServer* self;
    StreamPtr stream;
  };
  auto* ctx = new Ctx{self, stream};
  g_signal_connect_data(
      conn, "message",
      G_CALLBACK(+[](SoupWebsocketConnection*, gint type, GBytes* message, gpointer data) {
        auto* ctx = static_cast<Ctx*>(data);
        if (type != SOUP_WEBSOCKET_DATA_BINARY) return;
        gsize size = 0;
        auto* bytes = static_cast<const uint8_t*>(g_bytes_get_data(message, &size));
        std::shared_ptr<StreamPipeline> p;
        {
          std::lock_guard<std::mutex> lock(ctx->self->mutex_);
          Stream& s = *ctx->stream;
          if (s.stopped) return;
          if (s.building && s.ingest == "webm") {
            if (s.pending_bytes + size <= StreamPipeline::kMaxFrameBytes) {
              s.pending.emplace_back(reinterpret_cast<const char*>(bytes), size);
              s.pending_bytes += size;
            } else {
              s.dropped_while_building++;
            }
            return;
          }
          p = s.pipeline;  // looked up per frame: a restarted pipeline takes over
          if (!p) s.dropped_while_building++;
          else if (p->ingest_format() == "webm") s.pipeline_used = true;
        }
        if (!p) return;
        if (p->ingest_format() == "webm") p->push_bytes(bytes, size);
        else if (p->ingest_format() == "jpeg") p->push_jpeg(bytes, size);
      }),
      ctx, [](gpointer data, GClosure*) { delete static_cast<Ctx*>(data); }, GConnectFlags(0));
  g_signal_connect_data(
      conn, "closed", G_CALLBACK(+[](SoupWebsocketConnection* c, gpointer data) {
        auto* ctx = static_cast<Ctx*>(data);
        std::lock_guard<std::mutex> lock(ctx->self->mutex_);
        Stream& s = *ctx->stream;
        if (s.ingest_ws == c) {
          s.ingest_ws = nullptr;
          if (s.publisher == "websocket") s.publisher.clear();
          g_object_unref(c);
        }
      }),
      new Ctx{self, stream}, [](gpointer data, GClosure*) { delete static_cast<Ctx*>(data); }, GConnectFlags(0));
}

void MediaServer::on_watch(SoupServer*, SoupServerMessage* msg, const char* path, SoupWebsocketConnection* conn, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/watch");
  soup_websocket_connection_set_keepalive_interval(conn, keepalive_of(self->settings_.idle_timeout_seconds));
  const std::string address = self->client_address(msg);
  // ?preview=1: the streamer's own preview (the dashboard) gets frames
  // but is not a viewer. Claiming it only lowers the count.
  const bool preview = query_param(msg, "preview") == "1";
  StreamPtr stream;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    stream = self->live_locked(username);
    if (!stream) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "not live");
      return;
    }
    stream->watchers[static_cast<SoupWebsocketConnection*>(g_object_ref(conn))] = Watcher{address, preview};
    if (!preview) stream->viewers.watcher_joined(address);
  }
  // A small kernel send buffer: a viewer that does not keep up holds a few
  // frames there at most, and on_frame() skips it while it is full.
  if (GSocket* socket = self->socket_of(msg)) {
    GError* error = nullptr;
    g_socket_set_option(socket, SOL_SOCKET, SO_SNDBUF, kWatcherSendBuffer, &error);
    g_clear_error(&error);
    g_object_set_data_full(G_OBJECT(conn), "mirage-socket", g_object_ref(socket), g_object_unref);
  }
  struct Ctx {
    MediaServer* self;
    StreamPtr stream;
  };
  g_signal_connect_data(
      conn, "closed", G_CALLBACK(+[](SoupWebsocketConnection* c, gpointer data) {
        auto* ctx = static_cast<Ctx*>(data);
        std::lock_guard<std::mutex> lock(ctx->self->mutex_);
        auto& watchers = ctx->stream->watchers;
        if (auto it = watchers.find(c); it != watchers.end()) {
          if (!it->second.preview) ctx->stream->viewers.watcher_left(it->second.address);
          watchers.erase(it);
          g_object_unref(c);
        }
      }),
      new Ctx{self, stream}, [](gpointer data, GClosure*) { delete static_cast<Ctx*>(data); }, GConnectFlags(0));
}

void MediaServer::on_events(SoupServer*, SoupServerMessage*, const char* path, SoupWebsocketConnection* conn, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/events");
  soup_websocket_connection_set_keepalive_interval(conn, keepalive_of(self->settings_.idle_timeout_seconds));
  self->listeners_[username].insert(static_cast<SoupWebsocketConnection*>(g_object_ref(conn)));
  bool live;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    StreamPtr s = self->live_locked(username);
    live = s && s->announced;
  }
  soup_websocket_connection_send_text(conn, live ? "{\"type\":\"live\"}" : "{\"type\":\"offline\"}");
  struct Ctx {
    MediaServer* self;
    std::string username;
  };
  g_signal_connect_data(
      conn, "closed", G_CALLBACK(+[](SoupWebsocketConnection* c, gpointer data) {
        auto* ctx = static_cast<Ctx*>(data);
        auto it = ctx->self->listeners_.find(ctx->username);
        if (it != ctx->self->listeners_.end() && it->second.erase(c)) {
          g_object_unref(c);
          if (it->second.empty()) ctx->self->listeners_.erase(it);
        }
      }),
      new Ctx{self, username}, [](gpointer data, GClosure*) { delete static_cast<Ctx*>(data); }, GConnectFlags(0));
}

// HLS: the file is read asynchronously (GIO's thread pool), the message
// paused meanwhile, so a slow disk never stalls the loop.
void MediaServer::on_hls(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  static const std::regex pattern("/live/([a-z0-9_]{3,32})/(index\\.m3u8|segment[0-9]{5}\\.ts)");
  std::cmatch match;
  if (!std::regex_match(path, match, pattern)) {
    soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
    return;
  }
  const std::string username = match[1].str(), file = match[2].str();
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    StreamPtr s = self->live_locked(username);
    if (!s || !s->pipeline) {
      soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
      return;
    }
    dir = s->pipeline->hls_dir();
    if (file == "index.m3u8") {
      const char* id = query ? static_cast<const char*>(g_hash_table_lookup(query, "viewer")) : nullptr;
      s->viewers.hls_seen(self->client_address(msg), id ? std::string(id).substr(0, 64) : "",
                          ViewerCount::Clock::now());
    }
  }
  struct Read {
    SoupServerMessage* msg;
    bool playlist;
    bool gone = false;
  };
  auto* read = new Read{static_cast<SoupServerMessage*>(g_object_ref(msg)), file == "index.m3u8"};
  // The client may go while the file is read: then nothing is answered.
  g_signal_connect(msg, "finished", G_CALLBACK(+[](SoupServerMessage*, gpointer data) { static_cast<Read*>(data)->gone = true; }),
                   read);
  soup_server_message_pause(msg);
  GFile* gfile = g_file_new_for_path((dir + "/" + file).c_str());
  g_file_load_contents_async(
      gfile, nullptr,
      [](GObject* source, GAsyncResult* result, gpointer data) {
        auto* read = static_cast<Read*>(data);
        char* contents = nullptr;
        gsize length = 0;
        const gboolean ok = g_file_load_contents_finish(G_FILE(source), result, &contents, &length, nullptr, nullptr);
        g_signal_handlers_disconnect_by_data(read->msg, read);
        if (!read->gone) {
          if (!ok) {
            soup_server_message_set_status(read->msg, SOUP_STATUS_NOT_FOUND, nullptr);
          } else {
            soup_server_message_set_status(read->msg, SOUP_STATUS_OK, nullptr);
            // Public video, no credentials: any web page may play it (hls.js
            // fetches it cross-origin), and a playlist must not be cached.
            SoupMessageHeaders* headers = soup_server_message_get_response_headers(read->msg);
            soup_message_headers_replace(headers, "Access-Control-Allow-Origin", "*");
            if (read->playlist) soup_message_headers_replace(headers, "Cache-Control", "no-cache");
            soup_server_message_set_response(read->msg, read->playlist ? "application/vnd.apple.mpegurl" : "video/mp2t",
                                             SOUP_MEMORY_TAKE, contents, length);
            contents = nullptr;
          }
          soup_server_message_unpause(read->msg);
        }
        g_free(contents);
        g_object_unref(read->msg);
        delete read;
      },
      read);
  g_object_unref(gfile);
}

}  // namespace mirage::media
