// WebSocket ingest on the media port (/ingest/{user}?secret=…): the secret
// is checked before the handshake, then each message (a JPEG, or WebM
// chunks with ?format=webm) goes to the stream's pipeline. Loop thread.
#include <libsoup/soup.h>

#include <cstdio>

#include "auth/token.h"
#include "media_server.h"
#include "soup_helpers.h"

namespace mirage::media {

// Before the WebSocket handshake: only the live stream's secret gets in, so
// nothing reaches a pipeline otherwise. Checked against the secret the
// daemon gave with stream_started, in constant time, without a query.
void MediaServer::on_ingest_early(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string username = user_of(path, "/ingest");
  const char* secret = query ? static_cast<const char*>(g_hash_table_lookup(query, "secret")) : nullptr;
  bool here = false, ok = false;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    StreamPtr s = self->live_locked(username);
    here = bool(s);
    ok = s && secret && auth::constant_time_equals(secret, s->secret);
  }
  if (ok) return;
  log::warn("ingest refused", {{"user", username}, {"via", "websocket"},
                               {"reason", here ? "wrong_secret" : "not_live"}});
  // A publisher at the wrong worker (or too early, or too late) is told so.
  const std::string why = here ? "wrong ingest secret"
                               : "no live stream of '" + username + "' on this media worker; " +
                                     "its ingest URLs are in POST /api/streams' answer and GET /api/me/dashboard";
  soup_server_message_set_status(msg, here ? SOUP_STATUS_FORBIDDEN : SOUP_STATUS_NOT_FOUND, why.c_str());
  soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_COPY, why.data(), why.size());
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
    log::info("publisher connected", stream_fields(*stream, {{"via", "websocket"}, {"format", format}}));
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

}  // namespace mirage::media
