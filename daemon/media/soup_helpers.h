// Small helpers of the media port's libsoup handlers (media_port.cpp,
// ws_ingest.cpp, ws_watch.cpp, hls_server.cpp).
#pragma once

#include <libsoup/soup.h>

#include <algorithm>
#include <string>

namespace mirage::media {

constexpr gint kWatcherSendBuffer = 64 << 10;  // per WebSocket viewer, in the kernel (which doubles it)
// WebSocket pings, three per idle timeout: a live peer's pongs keep its
// socket from timing out.
inline guint keepalive_of(int idle_timeout_seconds) { return guint(std::max(1, idle_timeout_seconds / 3)); }

// "/ingest/alice" -> "alice" (one path segment after the prefix).
inline std::string user_of(const char* path, const char* prefix) {
  std::string p = path;
  std::string rest = p.substr(std::string(prefix).size());
  if (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
  return rest.substr(0, rest.find('/'));
}

// The value of |name| in the request's query string, or "".
inline std::string query_param(SoupServerMessage* msg, const char* name) {
  std::string value;
  if (const char* q = g_uri_get_query(soup_server_message_get_uri(msg))) {
    if (GHashTable* params = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, nullptr)) {
      if (auto* v = static_cast<const char*>(g_hash_table_lookup(params, name))) value = v;
      g_hash_table_unref(params);
    }
  }
  return value;
}

}  // namespace mirage::media
