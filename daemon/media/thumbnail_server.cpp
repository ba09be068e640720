// GET /thumbnail/{username}.jpg on the media port: a recent processed frame
// of the user's live stream here, for the home page's list of live channels
// (the API hands out {public_media_url}/thumbnail/{username}.jpg). Loop
// thread; nothing blocks: the frame is the JPEG the stream's watch branch
// (output-jpeg.pipeline) made already, never one encoded for the request.
#include <libsoup/soup.h>

#include <regex>

#include "json_text.h"
#include "media_server.h"

namespace mirage::media {

namespace {

// A client may ask as often as it likes: it gets the same frame for this
// long (and may cache it as long), so a page of 50 thumbnails polled by
// many viewers costs no encoder work and one JPEG per stream in memory.
constexpr auto kThumbnailSeconds = std::chrono::seconds(2);

void not_found(SoupServerMessage* msg, const char* code, const std::string& message) {
  const std::string body = "{\"error\":{\"code\":" + json_quote(code) + ",\"message\":" + json_quote(message) + "}}";
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Access-Control-Allow-Origin", "*");
  soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(), body.size());
}

}  // namespace

void MediaServer::on_thumbnail(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string method = soup_server_message_get_method(msg);
  if (method != "GET" && method != "HEAD") {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD");
    soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, nullptr);
    return;
  }
  // The usernames the API allows (as for HLS); anything else names nobody.
  static const std::regex pattern("/thumbnail/([a-z0-9_]{3,32})\\.jpg");
  std::cmatch match;
  if (!std::regex_match(path, match, pattern))
    return not_found(msg, "not_found", "thumbnails are at /thumbnail/{username}.jpg");
  const std::string username = match[1].str();
  std::shared_ptr<const std::string> jpeg;
  std::shared_ptr<std::atomic<uint64_t>> sent;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    StreamPtr s = self->live_locked(username);
    if (!s) return not_found(msg, "not_live", "'" + username + "' is not live on this media worker");
    const auto now = std::chrono::steady_clock::now();
    if (s->pipeline && (!s->thumbnail || now - s->thumbnail_at >= kThumbnailSeconds)) {
      if (auto latest = s->pipeline->latest_jpeg()) {
        s->thumbnail = std::move(latest);
        s->thumbnail_at = now;
      }
    }
    jpeg = s->thumbnail;
    sent = counter_of(s->sent, &SentBytes::thumbnail);
  }
  if (!jpeg) return not_found(msg, "no_frame", "'" + username + "' has no processed frame yet");
  SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(headers, "Access-Control-Allow-Origin", "*");
  soup_message_headers_replace(headers, "Cache-Control", "max-age=2");
  soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
  // The body refers to the frame itself, kept alive until libsoup is done.
  auto* hold = new std::shared_ptr<const std::string>(std::move(jpeg));
  GBytes* bytes = g_bytes_new_with_free_func((*hold)->data(), (*hold)->size(),
                                             [](gpointer p) { delete static_cast<std::shared_ptr<const std::string>*>(p); },
                                             hold);
  soup_message_headers_set_content_type(headers, "image/jpeg", nullptr);
  soup_message_body_append_bytes(soup_server_message_get_response_body(msg), bytes);
  g_bytes_unref(bytes);
  count_response_body(msg, std::move(sent));
}

}  // namespace mirage::media
