#include "srt_streamid.h"

#include <cctype>

namespace mirage::media {

namespace {

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) && hex(s[i + 2])) {
      out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::optional<SrtStreamId> parse_srt_streamid(const std::string& raw) {
  static const std::string prefix = "#!::";
  const std::string streamid = raw.compare(0, 3, "%23") == 0 ? percent_decode(raw) : raw;
  if (streamid.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  SrtStreamId id;
  size_t pos = prefix.size();
  while (pos < streamid.size()) {
    size_t comma = streamid.find(',', pos);
    if (comma == std::string::npos) comma = streamid.size();
    const std::string item = streamid.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) return std::nullopt;
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "r") id.resource = value;
    else if (key == "m") id.mode = value;
    else if (key == "s") id.secret = value;
    else if (key == "u") id.user = value;
    // Other standard keys (h, t) and custom ones are allowed and ignored.
  }
  return id;
}

}  // namespace mirage::media
