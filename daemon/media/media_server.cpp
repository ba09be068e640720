#include "media_server.h"

#include <libsoup/soup.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

namespace mirage::media {

namespace {

constexpr auto kHlsViewerWindow = std::chrono::seconds(30);
constexpr gsize kMaxMessage = 16 << 20;  // above the 8 MiB frame limit, so we count what we refuse

// "/ingest/alice" -> "alice" (one path segment after the prefix).
std::string user_of(const char* path, const char* prefix) {
  std::string p = path;
  std::string rest = p.substr(std::string(prefix).size());
  if (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
  return rest.substr(0, rest.find('/'));
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string viewer_id(SoupServerMessage* msg, GHashTable* query) {
  if (query) {
    if (auto* id = static_cast<const char*>(g_hash_table_lookup(query, "viewer"))) return id;
  }
  const char* host = soup_server_message_get_remote_host(msg);
  return host ? host : "?";
}

}  // namespace

MediaServer::MediaServer(MediaSettings settings, IngestAuth auth)
    : settings_(std::move(settings)), auth_(std::move(auth)) {}

MediaServer::~MediaServer() {
  std::map<std::string, Stream> streams;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    streams.swap(streams_);
  }
  streams.clear();  // pipelines stop (EOS with a deadline) and remove their files
  if (loop_) {
    post([this] {
      if (server_) {
        soup_server_disconnect(server_);
        g_object_unref(server_);
        server_ = nullptr;
      }
      g_main_loop_quit(loop_);
    });
    thread_.join();
    g_main_loop_unref(loop_);
    g_main_context_unref(context_);
  }
}

bool MediaServer::start(std::string* error) {
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
    const auto colon = settings_.addr.rfind(':');
    GSocketAddress* address = g_inet_socket_address_new_from_string(
        settings_.addr.substr(0, colon).c_str(), guint(std::stoi(settings_.addr.substr(colon + 1))));
    GError* listen_error = nullptr;
    if (!address || !soup_server_listen(server_, address, SoupServerListenOptions(0), &listen_error)) {
      start_error = "media server cannot listen on " + settings_.addr + ": " +
                    (listen_error ? listen_error->message : "bad address");
      g_clear_error(&listen_error);
    } else {
      GSList* uris = soup_server_get_uris(server_);
      if (uris) port_ = uint16_t(g_uri_get_port(static_cast<GUri*>(uris->data)));
      g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
    }
    if (address) g_object_unref(address);
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
        std::vector<std::string> names;
        {
          std::lock_guard<std::mutex> lock(self->mutex_);
          for (const auto& [name, stream] : self->streams_) names.push_back(name);
        }
        for (const auto& name : names)
          self->broadcast(name, "{\"type\":\"viewers\",\"count\":" + std::to_string(self->viewers(name)) + "}");
        return G_SOURCE_CONTINUE;
      },
      this, nullptr);
  g_source_attach(timer, context_);
  g_source_unref(timer);
  return true;
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

std::shared_ptr<StreamPipeline> MediaServer::make_pipeline(const std::string& username, std::string* error,
                                                        const std::string& ingest) {
  PipelineSettings s;
  s.ingest = ingest;
  s.templates_dir = settings_.templates_dir;
  s.model = settings_.model;
  s.strength = settings_.strength;
  s.width = settings_.width;
  s.height = settings_.height;
  s.fps = settings_.fps;
  s.hls_dir = settings_.hls_root + "/" + username;
  std::shared_ptr<StreamPipeline> pipeline = StreamPipeline::start(s, error);
  if (pipeline) pipeline->set_frame_callback([this, username] { on_frame(username); });
  return pipeline;
}

std::shared_ptr<StreamPipeline> MediaServer::pipeline_of(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  return it == streams_.end() ? nullptr : it->second.pipeline;
}

void MediaServer::stream_started(const std::string& username, const std::string&) {
  std::string error;
  std::shared_ptr<StreamPipeline> pipeline = make_pipeline(username, &error);
  if (!pipeline) {
    std::fprintf(stderr, "media: %s: %s\n", username.c_str(), error.c_str());
    std::lock_guard<std::mutex> lock(mutex_);
    streams_[username].last_error = error;
    streams_[username].failed_to_start = true;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& stream = streams_[username];
    stream.pipeline = pipeline;
    stream.restarts.clear();
    stream.last_error.clear();
  }
  post([this, username] { broadcast(username, "{\"type\":\"live\"}"); });
}

std::vector<std::pair<std::string, std::string>> MediaServer::maintain() {
  std::vector<std::pair<std::string, std::string>> end;
  std::vector<std::pair<std::string, std::shared_ptr<StreamPipeline>>> live;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [name, stream] : streams_) {
      if (stream.pipeline) live.emplace_back(name, stream.pipeline);
      if (stream.failed_to_start) {
        stream.failed_to_start = false;
        end.emplace_back(name, "pipeline_failed");
      }
    }
  }
  const auto now = std::chrono::steady_clock::now();
  for (auto& [name, pipeline] : live) {
    if (pipeline->seconds_since_frame() > settings_.silence_seconds) {
      end.emplace_back(name, "ingest_silent");
      continue;
    }
    const std::string error = pipeline->error();
    if (error.empty()) continue;
    int recent;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& stream = streams_[name];
      stream.last_error = error;
      auto& r = stream.restarts;
      r.erase(std::remove_if(r.begin(), r.end(), [&](auto t) { return now - t > std::chrono::minutes(1); }), r.end());
      recent = int(r.size());
    }
    if (recent >= settings_.restarts_per_minute) {
      end.emplace_back(name, "pipeline_failed");
      continue;
    }
    std::fprintf(stderr, "media: %s: pipeline failed (%s), restarting\n", name.c_str(), error.c_str());
    std::string restart_error;
    pipeline.reset();  // our reference too: the old pipeline must be gone before the new one uses its folder
    {
      std::shared_ptr<StreamPipeline> old;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        old = std::move(streams_[name].pipeline);
      }
      old.reset();  // stops and frees its HLS folder before the new one takes it
    }
    auto fresh = make_pipeline(name, &restart_error);
    std::lock_guard<std::mutex> lock(mutex_);
    auto& stream = streams_[name];
    stream.restarts.push_back(now);
    stream.pipeline = fresh;
    if (!fresh) {
      stream.last_error = restart_error;
      end.emplace_back(name, "pipeline_failed");
    }
  }
  return end;
}

std::vector<std::string> MediaServer::local_streams() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, stream] : streams_)
    if (stream.pipeline) names.push_back(name);
  return names;
}

void MediaServer::inject_error(const std::string& username, const std::string& message) {
  if (auto p = pipeline_of(username)) p->inject_error(message);
}

void MediaServer::stream_stopped(const std::string& username, const std::string& reason) {
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it == streams_.end()) return;
    pipeline = std::move(it->second.pipeline);
  }
  post([this, username, reason] {
    broadcast(username, "{\"type\":\"offline\",\"reason\":" + json_string(reason) + "}");
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it == streams_.end()) return;
    // The streamer's ingest is closed with the reason (e.g. credits_exhausted).
    if (it->second.ingest) soup_websocket_connection_close(it->second.ingest, SOUP_WEBSOCKET_CLOSE_NORMAL, reason.c_str());
    for (auto* w : it->second.watchers) soup_websocket_connection_close(w, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "stream ended");
    if (!it->second.ingest && it->second.watchers.empty() && it->second.listeners.empty()) streams_.erase(it);
  });
  pipeline.reset();  // off the loop thread: stopping waits for EOS
}

void MediaServer::apply_style(const std::string& username, const std::string& style) {
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it != streams_.end()) pipeline = it->second.pipeline;
  }
  if (pipeline) pipeline->set_style(style);
  post([this, username, style] { broadcast(username, "{\"type\":\"style\",\"style\":" + json_string(style) + "}"); });
}

void MediaServer::event(const std::string& username, const std::string& json) {
  post([this, username, json] { broadcast(username, json); });
}

std::string MediaServer::health(const std::string& username) {
  std::shared_ptr<StreamPipeline> pipeline;
  size_t restarts = 0;
  std::string last_error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it != streams_.end()) {
      pipeline = it->second.pipeline;
      restarts = it->second.restarts.size();
      last_error = it->second.last_error;
    }
  }
  if (!pipeline) return "null";
  std::string json = pipeline->health_json();
  json.pop_back();  // '}'
  json += ",\"restarts_last_minute\":" + std::to_string(restarts) + ",\"previous_error\":" +
          (last_error.empty() ? std::string("null") : json_string(last_error)) + "}";
  return json;
}

int MediaServer::viewers(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  if (it == streams_.end()) return 0;
  const auto now = std::chrono::steady_clock::now();
  int hls = 0;
  for (const auto& [id, seen] : it->second.hls_viewers) hls += now - seen < kHlsViewerWindow;
  return int(it->second.watchers.size()) + hls;
}

int MediaServer::unique_viewers(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  return it == streams_.end() ? 0 : int(it->second.seen.size());
}

uint64_t MediaServer::frames_refused(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  return it == streams_.end() || !it->second.pipeline ? 0 : it->second.pipeline->frames_refused();
}

std::string MediaServer::pipeline_error(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  return it == streams_.end() || !it->second.pipeline ? "" : it->second.pipeline->error();
}

// A new processed frame (streaming thread): one send per main-loop turn,
// always of the newest frame, so a burst collapses instead of queueing.
void MediaServer::on_frame(const std::string& username) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it == streams_.end() || it->second.send_pending || it->second.watchers.empty()) return;
    it->second.send_pending = true;
  }
  post([this, username] {
    std::shared_ptr<const std::string> jpeg;
    std::vector<SoupWebsocketConnection*> watchers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = streams_.find(username);
      if (it == streams_.end()) return;
      it->second.send_pending = false;
      if (it->second.pipeline) jpeg = it->second.pipeline->latest_jpeg();
      watchers.assign(it->second.watchers.begin(), it->second.watchers.end());
    }
    if (!jpeg) return;
    for (auto* w : watchers)
      if (soup_websocket_connection_get_state(w) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_send_binary(w, jpeg->data(), jpeg->size());
  });
}

void MediaServer::broadcast(const std::string& username, const std::string& json) {
  std::vector<SoupWebsocketConnection*> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it == streams_.end()) return;
    listeners.assign(it->second.listeners.begin(), it->second.listeners.end());
  }
  for (auto* l : listeners)
    if (soup_websocket_connection_get_state(l) == SOUP_WEBSOCKET_STATE_OPEN) soup_websocket_connection_send_text(l, json.c_str());
}

// Before the WebSocket handshake: only the live stream's secret gets in, so
// nothing reaches a pipeline otherwise.
void MediaServer::on_ingest_early(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/ingest");
  const char* secret = query ? static_cast<const char*>(g_hash_table_lookup(query, "secret")) : nullptr;
  bool live;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    auto it = self->streams_.find(username);
    live = it != self->streams_.end() && it->second.pipeline;
  }
  if (!secret || !live || !self->auth_(username, secret)) soup_server_message_set_status(msg, SOUP_STATUS_FORBIDDEN, nullptr);
}

void MediaServer::on_ingest(SoupServer*, SoupServerMessage* msg, const char* path, SoupWebsocketConnection* conn,
                            void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/ingest");
  // ?format=webm: a MediaRecorder byte stream instead of JPEG frames. The
  // stream's pipeline is rebuilt with the matching ingest part.
  std::string format = "jpeg";
  if (const char* q = g_uri_get_query(soup_server_message_get_uri(msg))) {
    GHashTable* params = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, nullptr);
    if (params) {
      if (auto* f = static_cast<const char*>(g_hash_table_lookup(params, "format")); f && std::string(f) == "webm")
        format = "webm";
      g_hash_table_unref(params);
    }
  }
  if (auto current = self->pipeline_of(username); current && current->ingest_format() != format) {
    current.reset();
    std::shared_ptr<StreamPipeline> old;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      old = std::move(self->streams_[username].pipeline);
    }
    old.reset();  // gone before the new one takes its folder
    std::string error;
    auto fresh = self->make_pipeline(username, &error, format);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->streams_[username].pipeline = fresh;
    if (!fresh) {
      self->streams_[username].last_error = error;
      self->streams_[username].failed_to_start = true;
    }
  }
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    auto& stream = self->streams_[username];
    pipeline = stream.pipeline;
    if (!pipeline || stream.ingest) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, stream.ingest ? "already ingesting" : "not live");
      return;
    }
    stream.ingest = static_cast<SoupWebsocketConnection*>(g_object_ref(conn));
  }
  soup_websocket_connection_set_max_incoming_payload_size(conn, kMaxMessage);
  struct Ctx {
    MediaServer* self;
    std::string username;
  };
  auto* ctx = new Ctx{self, username};
  g_signal_connect_data(
      conn, "message",
      G_CALLBACK(+[](SoupWebsocketConnection*, gint type, GBytes* message, gpointer data) {
        auto* ctx = static_cast<Ctx*>(data);
        if (type != SOUP_WEBSOCKET_DATA_BINARY) return;
        // Looked up per frame: a restarted pipeline takes over the ingest.
        if (auto p = ctx->self->pipeline_of(ctx->username)) {
          gsize size = 0;
          auto* bytes = static_cast<const uint8_t*>(g_bytes_get_data(message, &size));
          if (p->ingest_format() == "webm") p->push_bytes(bytes, size);
          else p->push_jpeg(bytes, size);
        }
      }),
      ctx, [](gpointer data, GClosure*) { delete static_cast<Ctx*>(data); }, GConnectFlags(0));
  g_signal_connect(conn, "closed", G_CALLBACK(+[](SoupWebsocketConnection* c, gpointer data) {
                     auto* self = static_cast<MediaServer*>(data);
                     std::lock_guard<std::mutex> lock(self->mutex_);
                     for (auto& [name, stream] : self->streams_)
                       if (stream.ingest == c) {
                         stream.ingest = nullptr;
                         g_object_unref(c);
                       }
                   }),
                   self);
}

void MediaServer::on_watch(SoupServer*, SoupServerMessage* msg, const char* path, SoupWebsocketConnection* conn, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/watch");
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    auto it = self->streams_.find(username);
    if (it == self->streams_.end() || !it->second.pipeline) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "not live");
      return;
    }
    it->second.watchers.insert(static_cast<SoupWebsocketConnection*>(g_object_ref(conn)));
    it->second.seen.insert(viewer_id(msg, nullptr));
  }
  g_signal_connect(conn, "closed", G_CALLBACK(+[](SoupWebsocketConnection* c, gpointer data) {
                     auto* self = static_cast<MediaServer*>(data);
                     std::lock_guard<std::mutex> lock(self->mutex_);
                     for (auto& [name, stream] : self->streams_)
                       if (stream.watchers.erase(c)) g_object_unref(c);
                   }),
                   self);
}

void MediaServer::on_events(SoupServer*, SoupServerMessage*, const char* path, SoupWebsocketConnection* conn, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/events");
  bool live;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    auto& stream = self->streams_[username];
    stream.listeners.insert(static_cast<SoupWebsocketConnection*>(g_object_ref(conn)));
    live = stream.pipeline != nullptr;
  }
  soup_websocket_connection_send_text(conn, live ? "{\"type\":\"live\"}" : "{\"type\":\"offline\"}");
  g_signal_connect(conn, "closed", G_CALLBACK(+[](SoupWebsocketConnection* c, gpointer data) {
                     auto* self = static_cast<MediaServer*>(data);
                     std::lock_guard<std::mutex> lock(self->mutex_);
                     for (auto& [name, stream] : self->streams_)
                       if (stream.listeners.erase(c)) g_object_unref(c);
                   }),
                   self);
}

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
    auto it = self->streams_.find(username);
    if (it == self->streams_.end() || !it->second.pipeline) {
      soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
      return;
    }
    dir = it->second.pipeline->hls_dir();
    if (file == "index.m3u8") {
      const std::string id = viewer_id(msg, query);
      it->second.hls_viewers[id] = std::chrono::steady_clock::now();
      it->second.seen.insert(id);
    }
  }
  std::ifstream in(dir + "/" + file, std::ios::binary);
  if (!in) {
    soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
    return;
  }
  std::stringstream body;
  body << in.rdbuf();
  const std::string bytes = body.str();
  soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
  soup_server_message_set_response(msg, file == "index.m3u8" ? "application/vnd.apple.mpegurl" : "video/mp2t",
                                   SOUP_MEMORY_COPY, bytes.data(), bytes.size());
}

}  // namespace mirage::media
