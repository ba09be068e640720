// The JSON body parser (daemon/json_input.cpp): any bytes, no crash, no
// unbounded recursion; what it accepts is a document whose every string is
// valid UTF-8 without U+0000, nested no deeper than the limit.
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "json_input.h"

namespace {

int depth_of(const rapidjson::Value& v) {
  int deepest = 0;
  if (v.IsObject())
    for (const auto& m : v.GetObject()) {
      if (std::memchr(m.name.GetString(), 0, m.name.GetStringLength())) std::abort();
      deepest = std::max(deepest, depth_of(m.value));
    }
  else if (v.IsArray())
    for (const auto& e : v.GetArray()) deepest = std::max(deepest, depth_of(e));
  else if (v.IsString() && std::memchr(v.GetString(), 0, v.GetStringLength()))
    std::abort();
  return deepest + (v.IsObject() || v.IsArray());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rapidjson::Document doc;
  const auto error = mirage::parse_untrusted_json(std::string_view(reinterpret_cast<const char*>(data), size), &doc,
                                                  mirage::kMaxBodyDepth);
  if (!error && depth_of(doc) > mirage::kMaxBodyDepth) std::abort();
  if (error && error->empty()) std::abort();
  return 0;
}
