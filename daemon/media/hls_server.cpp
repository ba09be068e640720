// HLS on the media port (/live/{user}/index.m3u8 and its segments): files
// the stream's hlssink2 wrote, read asynchronously so a slow disk never
// stalls the loop. Loop thread.
#include <gio/gio.h>
#include <libsoup/soup.h>

#include <cstdio>
#include <regex>

#include "media_server.h"
#include "soup_helpers.h"

namespace mirage::media {

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
  std::shared_ptr<std::atomic<uint64_t>> sent;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    StreamPtr s = self->live_locked(username);
    if (!s || !s->pipeline) {
      soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
      return;
    }
    dir = s->pipeline->hls_dir();
    sent = counter_of(s->sent, &SentBytes::hls);
    // A playlist request counts its player: the page's ?viewer= id, or
    // without one the address's anonymous HLS player. A segment counts
    // only when it names its viewer (a player that adds the id to every
    // request).
    const std::string viewer =
        ViewerCount::id_of(query ? static_cast<const char*>(g_hash_table_lookup(query, "viewer")) : nullptr);
    if (file == "index.m3u8" || !viewer.empty())
      s->viewers.hls_seen(self->client_address(msg), viewer, ViewerCount::Clock::now());
  }
  struct Read {
    SoupServerMessage* msg;
    bool playlist;
    std::shared_ptr<std::atomic<uint64_t>> sent;  // the stream's HLS bytes
    bool gone = false;
  };
  auto* read = new Read{static_cast<SoupServerMessage*>(g_object_ref(msg)), file == "index.m3u8", std::move(sent)};
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
            count_response_body(read->msg, read->sent);
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
