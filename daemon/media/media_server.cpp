#include "media_server.h"

#include <gst/rtsp/gstrtspdefs.h>
#include <libsoup/soup.h>
#include <srt/access_control.h>

#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

namespace mirage::media {

namespace {

constexpr auto kHlsViewerWindow = std::chrono::seconds(30);
constexpr gsize kMaxMessage = 16 << 20;
constexpr gint kWatcherSendBuffer = 64 << 10;  // per WebSocket viewer, in the kernel (which doubles it)  // above the 8 MiB frame limit, so we count what we refuse

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
  srt_.reset();      // no more SRT bytes
  {
    std::lock_guard<std::mutex> lock(switches_mutex_);
    switches_.clear();  // waits for pipelines being rebuilt
  }
  streams.clear();  // pipelines stop (EOS with a deadline) and remove their files
  if (loop_) {
    post([this] {
      rtsp_.reset();
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
    if (start_error.empty() && !settings_.rtsp_addr.empty()) {
      RtspIngest::Hooks hooks;
      hooks.admit = [this](const std::string& user) {
        switch (admit(user, nullptr)) {  // the RTSP server has checked the secret
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
    hooks.admit = [this](const std::string& user, const std::string& secret) {
      switch (admit(user, &secret)) {
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
    if (!srt_->start(settings_.srt_addr, &start_error)) srt_.reset();
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

uint16_t MediaServer::srt_port() const { return srt_ ? srt_->port() : 0; }
uint16_t MediaServer::rtsp_port() const { return rtsp_ ? rtsp_->port() : 0; }

MediaServer::Admit MediaServer::admit(const std::string& username, const std::string* secret) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it == streams_.end() || (!it->second.pipeline && !it->second.switching)) return Admit::kNotLive;
    if (it->second.ingest || !it->second.ingest_via.empty()) return Admit::kBusy;
  }
  return !secret || auth_(username, *secret) ? Admit::kOk : Admit::kWrongSecret;
}

void MediaServer::external_connected(const std::string& username, const std::string& via, const std::string& format) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it == streams_.end()) return;
    it->second.ingest_via = via;
    if (it->second.pipeline && it->second.pipeline->ingest_format() == format) return;
    it->second.switching = true;  // bytes are kept until the new pipeline runs
  }
  std::fprintf(stderr, "media: %s: %s publisher connected\n", username.c_str(), via.c_str());
  // Rebuilding the pipeline takes a moment: not on the listener's thread,
  // which serves every stream. Bytes arriving meanwhile are dropped; the
  // decoder starts at the next keyframe.
  std::lock_guard<std::mutex> lock(switches_mutex_);
  switches_.remove_if([](const std::future<void>& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  switches_.push_back(std::async(std::launch::async, [this, username, format] { use_ingest(username, format); }));
}

std::string MediaServer::publisher(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  if (it == streams_.end()) return "";
  return it->second.ingest ? "websocket" : it->second.ingest_via;
}

void MediaServer::external_closed(const std::string& username, const std::string& via) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  if (it != streams_.end() && it->second.ingest_via == via) it->second.ingest_via.clear();
}

void MediaServer::push_external(const std::string& username, const std::string& format, const uint8_t* data, size_t size) {
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(username);
    if (it == streams_.end()) return;
    Stream& stream = it->second;
    if (stream.switching) {
      // The first bytes carry the decoder's configuration (SPS/PPS): keep them.
      if (stream.pending_bytes + size <= StreamPipeline::kMaxFrameBytes) {
        stream.pending.emplace_back(reinterpret_cast<const char*>(data), size);
        stream.pending_bytes += size;
      }
      return;
    }
    pipeline = stream.pipeline;
  }
  if (pipeline && pipeline->ingest_format() == format) pipeline->push_bytes(data, size);
}

std::shared_ptr<StreamPipeline> MediaServer::use_ingest(const std::string& username, const std::string& format) {
  auto current = pipeline_of(username);
  if (!current || current->ingest_format() == format) {
    finish_switch(username, current);
    return current;
  }
  current.reset();
  std::shared_ptr<StreamPipeline> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old = std::move(streams_[username].pipeline);
    streams_[username].switching = true;  // still live for admit() meanwhile
  }
  old.reset();  // gone before the new one takes its folder
  std::string error;
  auto fresh = make_pipeline(username, &error, format);
  if (!fresh) std::fprintf(stderr, "media: %s: %s ingest failed to start: %s\n", username.c_str(), format.c_str(), error.c_str());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& stream = streams_[username];
    stream.pipeline = fresh;
    if (!fresh) {
      stream.last_error = error;
      stream.failed_to_start = true;
    }
  }
  finish_switch(username, fresh);
  return fresh;
}

// Bytes that arrived while the pipeline was rebuilt go first, in order;
// then the stream is fed directly again.
void MediaServer::finish_switch(const std::string& username, const std::shared_ptr<StreamPipeline>& pipeline) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  if (it == streams_.end()) return;
  Stream& stream = it->second;
  if (!pipeline) stream.pending.clear();
  while (!stream.pending.empty()) {
    std::vector<std::string> pending;
    pending.swap(stream.pending);
    stream.pending_bytes = 0;
    lock.unlock();
    for (const auto& bytes : pending) pipeline->push_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    lock.lock();
  }
  stream.pending_bytes = 0;
  stream.switching = false;
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

void MediaServer::stream_started(const std::string& username, const std::string& secret) {
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
  post([this, username, secret] {
    if (rtsp_) rtsp_->add(username, secret);
    broadcast(username, "{\"type\":\"live\"}");
  });
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
    it->second.ingest_via.clear();
  }
  if (srt_) srt_->disconnect(username);
  post([this, username, reason] {
    if (rtsp_) rtsp_->remove(username);
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
  json += ",\"watch_frames_skipped\":" + std::to_string(watch_frames_skipped(username));
  json += ",\"publisher\":" + json_string(publisher(username)) + ",\"restarts_last_minute\":" + std::to_string(restarts) + ",\"previous_error\":" +
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
  int watchers = 0;
  for (auto* w : it->second.watchers) watchers += g_object_get_data(G_OBJECT(w), "mirage-preview") == nullptr;
  return watchers + hls;
}

int MediaServer::unique_viewers(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  return it == streams_.end() ? 0 : int(it->second.seen.size());
}

uint64_t MediaServer::watch_frames_skipped(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(username);
  return it == streams_.end() ? 0 : it->second.watch_frames_skipped;
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
      if (auto it = streams_.find(username); it != streams_.end()) it->second.watch_frames_skipped += skipped;
    }
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
    live = it != self->streams_.end() && (it->second.pipeline || it->second.switching);
  }
  if (!secret || !live || !self->auth_(username, secret)) soup_server_message_set_status(msg, SOUP_STATUS_FORBIDDEN, nullptr);
}

void MediaServer::on_ingest(SoupServer*, SoupServerMessage* msg, const char* path, SoupWebsocketConnection* conn,
                            void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/ingest");
  // ?format=webm: a MediaRecorder byte stream instead of JPEG frames. The
  // stream's pipeline is rebuilt with the matching ingest part.
  const std::string format = query_param(msg, "format") == "webm" ? "webm" : "jpeg";
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    auto& stream = self->streams_[username];
    if (stream.ingest || !stream.ingest_via.empty()) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "already ingesting");
      return;
    }
  }
  self->use_ingest(username, format);
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    auto& stream = self->streams_[username];
    pipeline = stream.pipeline;
    if (!pipeline || stream.ingest || !stream.ingest_via.empty()) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, pipeline ? "already ingesting" : "not live");
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
    if (it == self->streams_.end() || (!it->second.pipeline && !it->second.switching)) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "not live");
      return;
    }
    it->second.watchers.insert(static_cast<SoupWebsocketConnection*>(g_object_ref(conn)));
    // ?preview=1: the streamer's own preview (the dashboard) gets frames
    // but is not a viewer. Claiming it only lowers the count.
    if (query_param(msg, "preview") == "1") g_object_set_data(G_OBJECT(conn), "mirage-preview", GINT_TO_POINTER(1));
    else it->second.seen.insert(viewer_id(msg, nullptr));
  }
  // A small kernel send buffer: a viewer that does not keep up holds a few
  // frames there at most, and on_frame() skips it while it is full.
  if (GSocket* socket = soup_server_message_get_socket(msg)) {
    GError* error = nullptr;
    g_socket_set_option(socket, SOL_SOCKET, SO_SNDBUF, kWatcherSendBuffer, &error);
    g_clear_error(&error);
    g_object_set_data_full(G_OBJECT(conn), "mirage-socket", g_object_ref(socket), g_object_unref);
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
  // Public video, no credentials: any web page may play it (hls.js fetches
  // it cross-origin), and a playlist must not be cached.
  SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(headers, "Access-Control-Allow-Origin", "*");
  if (file == "index.m3u8") soup_message_headers_replace(headers, "Cache-Control", "no-cache");
  soup_server_message_set_response(msg, file == "index.m3u8" ? "application/vnd.apple.mpegurl" : "video/mp2t",
                                   SOUP_MEMORY_COPY, bytes.data(), bytes.size());
}

}  // namespace mirage::media
