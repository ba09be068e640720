#include "log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <mutex>

namespace mirage::log {

namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kLogfmt};
std::atomic<bool> g_stderr{true};
std::mutex g_mutex;           // one line at a time; guards g_copy
std::FILE* g_copy = nullptr;  // Settings::copy_to
thread_local std::string t_request_id;

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

// |text| with every byte that is not part of valid UTF-8 replaced by U+FFFD:
// both formats stay valid UTF-8 whatever a client sent.
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n > 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (ok && n == 2) ok = c >= 0xc2;  // no overlong forms
    if (ok && n == 3) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);  // overlong, surrogates
    }
    if (ok && n == 4) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = c <= 0xf4 && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

// Keys are the code's own names; anything but [A-Za-z0-9_] becomes '_'.
std::string key_of(std::string_view key) {
  std::string out(key.empty() ? "_" : key);
  for (char& ch : out)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_')) ch = '_';
  return out;
}

void logfmt_value(std::string& out, std::string_view raw) {
  const std::string text = valid_utf8(raw);
  bool bare = !text.empty();
  for (unsigned char ch : text)
    if (ch <= ' ' || ch == '=' || ch == '"' || ch == '\\' || ch == 0x7f || ch >= 0x80) bare = false;
  if (bare) {
    out += text;
    return;
  }
  out += '"';
  for (unsigned char ch : text) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += char(ch);
        }
    }
  }
  out += '"';
}

std::string number_text(double d) {
  if (!std::isfinite(d)) return std::isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", d);
  return buf;
}

std::string timestamp(int64_t unix_ms) {
  const std::time_t seconds = std::time_t(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", int(unix_ms % 1000));
  return buf;
}

void write_all(int fd, const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n <= 0) return;  // nowhere to say it
    done += size_t(n);
  }
}

}  // namespace

bool parse_level(const std::string& text, Level* out) {
  for (Level level : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == level_name(level)) {
      *out = level;
      return true;
    }
  }
  return false;
}

bool parse_format(const std::string& text, Format* out) {
  if (text == "logfmt") *out = Format::kLogfmt;
  else if (text == "json") *out = Format::kJson;
  else return false;
  return true;
}

void configure(const Settings& settings) {
  g_level = settings.level;
  g_format = settings.format;
  g_stderr = settings.to_stderr;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_copy) std::fclose(g_copy);
  g_copy = settings.copy_to.empty() ? nullptr : std::fopen(settings.copy_to.c_str(), "a");
}

bool enabled(Level level) { return level >= g_level.load(); }

std::string format_line(Format format, int64_t unix_ms, Level level, std::string_view request_id,
                        std::string_view message, const std::vector<Field>& fields) {
  // A field request_id (a stream's) replaces the thread's; an empty one is
  // left out.
  auto empty_request_field = [](const Field& f) {
    return f.first == "request_id" && f.second.kind() == Value::Kind::kText && f.second.text().empty();
  };
  bool own_request_id = false;
  for (const auto& f : fields) own_request_id = own_request_id || (f.first == "request_id" && !empty_request_field(f));
  const bool with_request = !request_id.empty() && !own_request_id;

  if (format == Format::kJson) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    auto text = [&w](std::string_view s) {
      const std::string v = valid_utf8(s);
      w.String(v.c_str(), rapidjson::SizeType(v.size()));
    };
    w.StartObject();
    w.Key("ts");
    text(timestamp(unix_ms));
    w.Key("level");
    w.String(level_name(level));
    w.Key("msg");
    text(message);
    if (with_request) {
      w.Key("request_id");
      text(request_id);
    }
    for (const auto& field : fields) {
      if (empty_request_field(field)) continue;
      const auto& [key, value] = field;
      const std::string k = key_of(key);
      w.Key(k.c_str(), rapidjson::SizeType(k.size()));
      switch (value.kind()) {
        case Value::Kind::kText: text(value.text()); break;
        case Value::Kind::kInt: w.Int64(value.integer()); break;
        case Value::Kind::kBool: w.Bool(value.integer() != 0); break;
        case Value::Kind::kDouble:
          if (std::isfinite(value.number())) w.Double(value.number());
          else w.Null();
          break;
      }
    }
    w.EndObject();
    return buffer.GetString();
  }

  std::string out = "ts=" + timestamp(unix_ms) + " level=" + level_name(level) + " msg=";
  logfmt_value(out, message);
  if (with_request) {
    out += " request_id=";
    logfmt_value(out, request_id);
  }
  for (const auto& field : fields) {
    if (empty_request_field(field)) continue;
    const auto& [key, value] = field;
    out += ' ';
    out += key_of(key);
    out += '=';
    switch (value.kind()) {
      case Value::Kind::kText: logfmt_value(out, value.text()); break;
      case Value::Kind::kInt: out += std::to_string(value.integer()); break;
      case Value::Kind::kBool: out += value.integer() ? "true" : "false"; break;
      case Value::Kind::kDouble: out += number_text(value.number()); break;
    }
  }
  return out;
}

void write(Level level, std::string_view message, Fields fields) {
  if (enabled(level)) write(level, message, std::vector<Field>(fields));
}

void write(Level level, std::string_view message, const std::vector<Field>& fields) {
  if (!enabled(level)) return;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const std::string line = format_line(g_format.load(), now_ms, level, t_request_id, message, fields) + "\n";
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_stderr) write_all(STDERR_FILENO, line);
  if (g_copy) {
    std::fwrite(line.data(), 1, line.size(), g_copy);
    std::fflush(g_copy);
  }
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char ch : id)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
          ch == '_' || ch == '-'))
      return false;
  return true;
}

std::string new_request_id() {
  unsigned char bytes[16] = {};
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n <= 0) break;  // unique enough from the clock below, never a secret
    got += size_t(n);
  }
  if (got < sizeof bytes) {
    const auto t = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    for (size_t i = 0; i < 8; ++i) bytes[i] ^= uint8_t(t >> (8 * i));
  }
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

const std::string& request_id() { return t_request_id; }

RequestScope::RequestScope(std::string id) : previous_(std::move(t_request_id)) { t_request_id = std::move(id); }
RequestScope::~RequestScope() { t_request_id = std::move(previous_); }

}  // namespace mirage::log
