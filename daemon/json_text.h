// A string as a JSON string literal (quotes included), for the small JSON
// messages built by hand (events, outbox payloads). RapidJSON escapes it.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

namespace mirage {

inline std::string json_quote(const std::string& s) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(s.c_str(), rapidjson::SizeType(s.size()));
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace mirage
