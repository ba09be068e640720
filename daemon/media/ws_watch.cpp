// WebSocket playback and events on the media port: /watch/{user} (the
// processed frames, newest only, one send per loop turn) and
// /events/{user} (comments, styles, live/offline, pushed from the
// database's outbox by the worker). Loop thread unless it says otherwise.
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <sys/socket.h>

#include <cstdio>

#include "media_server.h"
#include "soup_helpers.h"

namespace mirage::media {

// A new processed frame (streaming thread): one send per main-loop turn,
// always of the newest frame, so a burst collapses instead of queueing.
void MediaServer::on_frame(int64_t stream_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    if (!it->second->first_frame) it->second->first_frame = std::chrono::steady_clock::now();
    if (it->second->send_pending || it->second->watchers.empty()) return;
    it->second->send_pending = true;
  }
  post([this, stream_id] {
    std::shared_ptr<const std::string> jpeg;
    std::vector<SoupWebsocketConnection*> watchers;
    std::shared_ptr<SentBytes> sent;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = streams_.find(stream_id);
      if (it == streams_.end()) return;
      it->second->send_pending = false;
      sent = it->second->sent;
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
      sent->websocket += jpeg->size();  // the payload, queued on a writable socket
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
// credits_exhausted), its viewers are told. A stream moved to another worker
// closes both with 4001 "moved": they re-read the stream's
// URLs from the API and reconnect there.
void MediaServer::close_stream_connections(const StreamPtr& stream, const std::string& reason) {
  SoupWebsocketConnection* ingest = nullptr;
  std::vector<SoupWebsocketConnection*> watchers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ingest = stream->ingest_ws;
    for (const auto& [w, info] : stream->watchers) watchers.push_back(w);
  }
  if (moved_away(reason)) {
    if (ingest) soup_websocket_connection_close(ingest, kCloseMoved, "moved");
    for (auto* w : watchers) soup_websocket_connection_close(w, kCloseMoved, "moved");
    return;
  }
  if (ingest) soup_websocket_connection_close(ingest, SOUP_WEBSOCKET_CLOSE_NORMAL, reason.c_str());
  for (auto* w : watchers) soup_websocket_connection_close(w, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "stream ended");
}


void MediaServer::on_watch(SoupServer*, SoupServerMessage* msg, const char* path, SoupWebsocketConnection* conn, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/watch");
  soup_websocket_connection_set_keepalive_interval(conn, keepalive_of(self->settings_.idle_timeout_seconds));
  const std::string address = self->client_address(msg);
  // ?preview=1: the streamer's own preview (the dashboard) gets frames
  // but is not a viewer. Claiming it only lowers the count.
  const bool preview = query_param(msg, "preview") == "1";
  // ?viewer=ID: the page's per-tab id, so that its HLS, WebSocket and WHEP
  // players are one viewer (viewer_count.h).
  const std::string viewer = ViewerCount::id_of(query_param(msg, "viewer").c_str());
  StreamPtr stream;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    stream = self->live_locked(username);
    if (!stream) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "not live");
      return;
    }
    stream->watchers[static_cast<SoupWebsocketConnection*>(g_object_ref(conn))] = Watcher{address, viewer, preview};
    if (!preview) stream->viewers.joined(address, viewer, ViewerCount::Clock::now());
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
          if (!it->second.preview) ctx->stream->viewers.left(it->second.address, it->second.viewer);
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

}  // namespace mirage::media
