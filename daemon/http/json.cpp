#include "json.h"

#include "json_input.h"
#include "service/error.h"

namespace mirage::http {

namespace {

service::Error invalid(const char* field, const std::string& message) { return service::invalid_field(field, message); }

}  // namespace

Body::Body(const std::string& text) {
  if (auto problem = parse_untrusted_json(text, &doc_, kMaxBodyDepth))
    throw service::Error(service::ErrorKind::kInvalid, "invalid_json", *problem);
  if (!doc_.IsObject())
    throw service::Error(service::ErrorKind::kInvalid, "invalid_json", "the body must be a JSON object");
}

std::string Body::string(const char* name) const {
  auto v = optional_string(name);
  if (!v) throw invalid(name, "'" + std::string(name) + "' is required");
  return *v;
}

std::optional<std::string> Body::optional_string(const char* name) const {
  auto it = doc_.FindMember(name);
  if (it == doc_.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) throw invalid(name, "'" + std::string(name) + "' must be a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<bool> Body::optional_bool(const char* name) const {
  auto it = doc_.FindMember(name);
  if (it == doc_.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsBool()) throw invalid(name, "'" + std::string(name) + "' must be true or false");
  return it->value.GetBool();
}

std::optional<double> Body::optional_number(const char* name) const {
  auto it = doc_.FindMember(name);
  if (it == doc_.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsNumber()) throw invalid(name, "'" + std::string(name) + "' must be a number");
  return it->value.GetDouble();
}

std::optional<int64_t> Body::optional_integer(const char* name, int64_t min, int64_t max) const {
  auto number = optional_number(name);
  if (!number) return std::nullopt;
  const std::string range = "'" + std::string(name) + "' must be a whole number from " + std::to_string(min) +
                            " to " + std::to_string(max);
  // Compared as doubles first: 1e300 or an int64 overflow never reaches the cast.
  if (!(*number >= double(min) && *number <= double(max)) || *number != double(int64_t(*number)))
    throw invalid(name, range);
  return int64_t(*number);
}

void write_user(Writer& w, const service::User& u, bool private_fields) {
  w.StartObject();
  w.Key("username");
  w.String(u.username.c_str());
  w.Key("display_name");
  w.String(u.display_name.c_str());
  w.Key("bio");
  w.String(u.bio.c_str());
  if (private_fields) {
    w.Key("id");
    w.Int64(u.id);
    w.Key("email");
    w.String(u.email.c_str());
    w.Key("created_at");
    w.String(u.created_at.c_str());
    w.Key("comments_enabled");
    w.Bool(u.comments_enabled);
    w.Key("styles_enabled");
    w.Bool(u.styles_enabled);
  }
  w.EndObject();
}

namespace {

// The keys a stream and a past stream share.
void write_stream_head(Writer& w, int64_t id, const std::string& title, const std::string& started_at,
                       const std::optional<std::string>& ended_at) {
  w.Key("id");
  w.Int64(id);
  w.Key("title");
  w.String(title.c_str());
  w.Key("started_at");
  w.String(started_at.c_str());
  w.Key("ended_at");
  ended_at ? w.String(ended_at->c_str()) : w.Null();
}

}  // namespace

void write_past_stream(Writer& w, const service::PastStream& s) {
  w.StartObject();
  write_stream_head(w, s.id, s.title, s.started_at, s.ended_at);
  w.Key("comment_count");
  w.Int64(s.comment_count);
  w.EndObject();
}

void write_stream(Writer& w, const service::Stream& s) {
  w.StartObject();
  write_stream_head(w, s.id, s.title, s.started_at, s.ended_at);
  w.Key("end_reason");
  s.end_reason ? w.String(s.end_reason->c_str()) : w.Null();
  w.Key("style");
  w.String(s.style.c_str());
  w.Key("streamer_style");
  w.String(s.streamer_style.c_str());
  w.Key("strength");
  w.Double(s.strength);
  w.Key("seconds_billed");
  w.Int64(s.seconds_billed);
  w.EndObject();
}

void write_comment(Writer& w, const service::Comment& c) {
  w.StartObject();
  w.Key("id");
  w.Int64(c.id);
  w.Key("author");
  w.String(c.author.c_str());
  w.Key("text");
  w.String(c.body.c_str());
  w.Key("created_at");
  w.String(c.created_at.c_str());
  w.Key("stream_id");
  c.stream_id ? w.Int64(*c.stream_id) : w.Null();
  w.EndObject();
}

void write_settings(Writer& w, const service::ChannelSettings& s) {
  w.StartObject();
  w.Key("comments_enabled");
  w.Bool(s.comments_enabled);
  w.Key("styles_enabled");
  w.Bool(s.styles_enabled);
  w.Key("style");
  w.String(s.style.c_str());
  w.Key("strength");
  w.Double(s.strength);
  w.EndObject();
}

void write_style_queue(Writer& w, const service::StyleQueue& queue) {
  const auto& requests = queue.requests;
  w.StartObject();
  w.Key("active");
  if (!requests.empty() && requests.front().status == "active") {
    const auto& a = requests.front();
    w.StartObject();
    w.Key("id");
    w.Int64(a.id);
    w.Key("style");
    w.String(a.style.c_str());
    w.Key("requested_by");
    w.String(a.requested_by.c_str());
    w.Key("activated_at");
    w.String(a.activated_at.value_or("").c_str());
    w.Key("ends_at");
    w.String(a.ends_at.value_or("").c_str());
    w.Key("seconds_left");
    w.Int64(a.seconds_left);
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("queue");
  w.StartArray();
  int position = 0;
  for (const auto& r : requests) {
    if (r.status != "queued") continue;
    w.StartObject();
    w.Key("id");
    w.Int64(r.id);
    w.Key("style");
    w.String(r.style.c_str());
    w.Key("requested_by");
    w.String(r.requested_by.c_str());
    w.Key("position");  // 1: next
    w.Int(++position);
    w.EndObject();
  }
  w.EndArray();
  w.Key("style_seconds");
  w.Int(queue.style_seconds);
  w.Key("cooldown_seconds");
  w.Int(queue.cooldown_seconds);
  w.EndObject();
}

std::string error_json(const std::string& code, const std::string& message, const std::string& field) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(code.c_str());
  w.Key("message");
  w.String(message.c_str());
  if (!field.empty()) {
    w.Key("field");
    w.String(field.c_str());
  }
  w.EndObject();
  w.EndObject();
  return buffer.GetString();
}

}  // namespace mirage::http
