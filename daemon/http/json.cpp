#include "json.h"

#include "json_input.h"
#include "service/error.h"

namespace mirage::http {

namespace {

service::Error invalid(const std::string& message) {
  return service::Error(service::ErrorKind::kInvalid, "invalid_field", message);
}

}  // namespace

Body::Body(const std::string& text) {
  if (auto problem = parse_untrusted_json(text, &doc_, kMaxBodyDepth))
    throw service::Error(service::ErrorKind::kInvalid, "invalid_json", *problem);
  if (!doc_.IsObject())
    throw service::Error(service::ErrorKind::kInvalid, "invalid_json", "the body must be a JSON object");
}

std::string Body::string(const char* name) const {
  auto v = optional_string(name);
  if (!v) throw invalid("'" + std::string(name) + "' is required");
  return *v;
}

std::optional<std::string> Body::optional_string(const char* name) const {
  auto it = doc_.FindMember(name);
  if (it == doc_.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) throw invalid("'" + std::string(name) + "' must be a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<bool> Body::optional_bool(const char* name) const {
  auto it = doc_.FindMember(name);
  if (it == doc_.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsBool()) throw invalid("'" + std::string(name) + "' must be true or false");
  return it->value.GetBool();
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

void write_stream(Writer& w, const service::Stream& s) {
  w.StartObject();
  w.Key("id");
  w.Int64(s.id);
  w.Key("title");
  w.String(s.title.c_str());
  w.Key("started_at");
  w.String(s.started_at.c_str());
  w.Key("ended_at");
  s.ended_at ? w.String(s.ended_at->c_str()) : w.Null();
  w.Key("end_reason");
  s.end_reason ? w.String(s.end_reason->c_str()) : w.Null();
  w.Key("style");
  w.String(s.style.c_str());
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
  w.EndObject();
}

void write_style_queue(Writer& w, const std::vector<service::StyleRequest>& queue) {
  w.StartObject();
  w.Key("active");
  if (!queue.empty() && queue.front().status == "active") {
    w.StartObject();
    w.Key("style");
    w.String(queue.front().style.c_str());
    w.Key("requested_by");
    w.String(queue.front().requested_by.c_str());
    w.Key("activated_at");
    w.String(queue.front().activated_at.value_or("").c_str());
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("queue");
  w.StartArray();
  for (const auto& r : queue) {
    if (r.status != "queued") continue;
    w.StartObject();
    w.Key("id");
    w.Int64(r.id);
    w.Key("style");
    w.String(r.style.c_str());
    w.Key("requested_by");
    w.String(r.requested_by.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

std::string error_json(const std::string& code, const std::string& message) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(code.c_str());
  w.Key("message");
  w.String(message.c_str());
  w.EndObject();
  w.EndObject();
  return buffer.GetString();
}

}  // namespace mirage::http
