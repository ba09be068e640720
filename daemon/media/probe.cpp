// The media port's probes for operators (docs/operations.md): /healthz
// and /readyz. Loop thread.
#include <libsoup/soup.h>

#include <string>
#include <tuple>

#include "media_server.h"

namespace mirage::media {

void MediaServer::set_readiness(std::function<std::pair<bool, std::string>()> readiness) {
  std::lock_guard<std::mutex> lock(mutex_);
  readiness_ = std::move(readiness);
}

// /healthz (the loop answers: the process runs) and /readyz (what
// set_readiness says), for operators' probes. GET and HEAD only.
void MediaServer::on_probe(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, void* data) {
  auto* self = static_cast<MediaServer*>(data);
  const std::string method = soup_server_message_get_method(msg);
  if (method != "GET" && method != "HEAD") {
    soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, nullptr);
    return;
  }
  bool ready = true;
  std::string body = "{\"status\":\"ok\"}";
  if (std::string(path) == "/readyz") {
    std::function<std::pair<bool, std::string>()> readiness;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      readiness = self->readiness_;
    }
    if (readiness) std::tie(ready, body) = readiness();
    else body = "{\"status\":\"ready\",\"checks\":{}}";
  } else if (std::string(path) != "/healthz") {
    soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
    return;
  }
  soup_server_message_set_status(msg, ready ? SOUP_STATUS_OK : SOUP_STATUS_SERVICE_UNAVAILABLE, nullptr);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control", "no-store");
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(), body.size());
}

}  // namespace mirage::media
