// miraged's log: one line per event on stderr, in logfmt (the default) or
// JSON (--log-format), each with a time, a level, a message and fields:
//
//   ts=2026-12-01T22:44:40.123Z level=info msg="stream placed here" request_id=5f3c… stream_id=12
//   {"ts":"2026-12-01T22:44:40.123Z","level":"info","msg":"stream placed here","request_id":"5f3c…","stream_id":12}
//
// The request id of the API request a thread serves (RequestScope) goes into
// every line written meanwhile; a worker writes a stream's (the id of the
// request that started it, kept with the stream) into the lines about it.
//
// Never pass a secret, token, password, stream key or URL that carries one
// as a field or inside a message: tests/tools/check_log_secrets.py greps the
// logs of the test runs for every secret they used.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mirage::log {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kLogfmt, kJson };

// "debug", "info", "warn", "error" / "logfmt", "json"; false for anything else.
bool parse_level(const std::string& text, Level* out);
bool parse_format(const std::string& text, Format* out);

struct Settings {
  Format format = Format::kLogfmt;
  Level level = Level::kInfo;  // lines below it are not written
  // Also append every line to this file (tests collect a run's logs there).
  std::string copy_to;
  bool to_stderr = true;  // false: only copy_to (benchmarks)
};
// Before the first line, or whenever (thread-safe).
void configure(const Settings& settings);

// A field's value: text, or a number or boolean (unquoted in JSON).
class Value {
 public:
  enum class Kind { kText, kInt, kDouble, kBool };
  Value(std::string_view text) : kind_(Kind::kText), text_(text) {}
  Value(const std::string& text) : kind_(Kind::kText), text_(text) {}
  Value(const char* text) : kind_(Kind::kText), text_(text ? text : "") {}
  Value(bool b) : kind_(Kind::kBool), int_(b) {}
  Value(double d) : kind_(Kind::kDouble), double_(d) {}
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  Value(T i) : kind_(Kind::kInt), int_(int64_t(i)) {}

  Kind kind() const { return kind_; }
  std::string_view text() const { return text_; }
  int64_t integer() const { return int_; }
  double number() const { return double_; }

 private:
  Kind kind_;
  std::string_view text_;
  int64_t int_ = 0;
  double double_ = 0;
};
using Field = std::pair<std::string_view, Value>;
using Fields = std::initializer_list<Field>;

bool enabled(Level level);
void write(Level level, std::string_view message, Fields fields = {});
void write(Level level, std::string_view message, const std::vector<Field>& fields);
inline void debug(std::string_view message, Fields fields = {}) { write(Level::kDebug, message, fields); }
inline void info(std::string_view message, Fields fields = {}) { write(Level::kInfo, message, fields); }
inline void warn(std::string_view message, Fields fields = {}) { write(Level::kWarn, message, fields); }
inline void error(std::string_view message, Fields fields = {}) { write(Level::kError, message, fields); }
inline void debug(std::string_view message, const std::vector<Field>& f) { write(Level::kDebug, message, f); }
inline void info(std::string_view message, const std::vector<Field>& f) { write(Level::kInfo, message, f); }
inline void warn(std::string_view message, const std::vector<Field>& f) { write(Level::kWarn, message, f); }
inline void error(std::string_view message, const std::vector<Field>& f) { write(Level::kError, message, f); }

// One line as write() puts it (without the newline), at a given time (ms
// since the epoch) and request id: for tests.
std::string format_line(Format format, int64_t unix_ms, Level level, std::string_view request_id,
                        std::string_view message, const std::vector<Field>& fields);

// --- request ids ---
// 1 to 64 of [A-Za-z0-9._-]: what a client or proxy may send as
// X-Request-Id and have kept; anything else gets a new one.
bool valid_request_id(std::string_view id);
// 16 random bytes in hex.
std::string new_request_id();
// The request this thread serves ("" outside one).
const std::string& request_id();
// Sets request_id() for this thread until destroyed (nests).
class RequestScope {
 public:
  explicit RequestScope(std::string id);
  ~RequestScope();
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

 private:
  std::string previous_;
};

}  // namespace mirage::log
