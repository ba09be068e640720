// JSON in and out of the API with RapidJSON: request bodies are parsed and
// checked field by field (wrong types are 400s with a sentence naming the
// field); records are written in one place so every endpoint shows a user
// or a stream the same way.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>

#include "service/model.h"
#include "service/streams.h"

namespace mirage::http {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A request body: a JSON object, or a 400 (service::Error kInvalid).
class Body {
 public:
  explicit Body(const std::string& text);
  std::string string(const char* name) const;                 // required
  std::optional<std::string> optional_string(const char* name) const;
  std::optional<bool> optional_bool(const char* name) const;
  std::optional<double> optional_number(const char* name) const;
  // A whole number (JSON integer, or a float with no fraction) in
  // [min, max]; null counts as absent.
  std::optional<int64_t> optional_integer(const char* name, int64_t min, int64_t max) const;

 private:
  rapidjson::Document doc_;
};

void write_user(Writer& w, const service::User& user, bool private_fields);
void write_stream(Writer& w, const service::Stream& stream);
// Public: no secret, no billing.
void write_past_stream(Writer& w, const service::PastStream& stream);
void write_comment(Writer& w, const service::Comment& comment);
void write_settings(Writer& w, const service::ChannelSettings& settings);
void write_style_queue(Writer& w, const service::StyleQueue& queue);

// {"error":{"code":...,"message":...,"field":...}}; no "field" when |field| is ''.
std::string error_json(const std::string& code, const std::string& message, const std::string& field = "");

}  // namespace mirage::http
