#include "validation.h"

#include <algorithm>
#include <array>

namespace mirage::service {

namespace {

// First path segments the web app or the media server use, and words a
// stream page must not impersonate.
constexpr std::array<const char*, 24> kReserved = {
    "admin", "api",      "app",     "assets", "auth",  "dashboard", "docs",   "events",
    "help",  "hls",      "ingest",  "live",   "login", "logout",    "me",     "mirage",
    "root",  "settings", "signup",  "static", "support", "system",  "watch",  "www"};

}  // namespace

std::optional<std::string> check_username(const std::string& username) {
  if (username.size() < 3 || username.size() > 32)
    return "'username' must be 3 to 32 characters long";
  for (char c : username)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return "'username' may contain only a-z, 0-9 and _";
  if (std::find_if(kReserved.begin(), kReserved.end(), [&](const char* r) { return username == r; }) !=
      kReserved.end())
    return "'username' '" + username + "' is reserved";
  return std::nullopt;
}

std::optional<std::string> check_password(const std::string& password) {
  if (password.size() < 10) return "'password' must be at least 10 characters long";
  if (password.size() > 256) return "'password' must be at most 256 characters long";
  return std::nullopt;
}

size_t utf8_length(const std::string& s) {
  return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace mirage::service
