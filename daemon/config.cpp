#include "config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace mirage {

namespace {

struct Setting {
  const char* key;  // file key; flag is --key with '_' -> '-'; env is MIRAGE_KEY
  const char* help;
  std::function<std::optional<std::string>(Config&, const std::string&)> set;
  std::function<std::string(const Config&)> get;
};

std::function<std::optional<std::string>(Config&, const std::string&)> text(std::string Config::*field) {
  return [field](Config& c, const std::string& v) -> std::optional<std::string> {
    c.*field = v;
    return std::nullopt;
  };
}

std::function<std::optional<std::string>(Config&, const std::string&)> number(int Config::*field, const char* key,
                                                                              int min, int max) {
  return [=](Config& c, const std::string& v) -> std::optional<std::string> {
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < min || n > max)
      return "'" + std::string(key) + "' must be a whole number from " + std::to_string(min) + " to " +
             std::to_string(max) + ", not '" + v + "'";
    c.*field = int(n);
    return std::nullopt;
  };
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> all = {
      {"http_addr", "address:port of the REST API", text(&Config::http_addr), [](const Config& c) { return c.http_addr; }},
      {"database_url", "PostgreSQL connection URL (required)", text(&Config::database_url), [](const Config& c) { return c.database_url; }},
      {"migrations_dir", "folder of NNN_name.sql migrations", text(&Config::migrations_dir), [](const Config& c) { return c.migrations_dir; }},
      {"http_threads", "Pistache reactor threads", number(&Config::http_threads, "http_threads", 1, 64), [](const Config& c) { return std::to_string(c.http_threads); }},
      {"workers", "request worker threads and database connections", number(&Config::workers, "workers", 1, 256), [](const Config& c) { return std::to_string(c.workers); }},
      {"public_url", "base URL of the web app (watch pages)", text(&Config::public_url), [](const Config& c) { return c.public_url; }},
      {"cors_origin", "origin allowed to call the API with cookies (empty: none)", text(&Config::cors_origin), [](const Config& c) { return c.cors_origin; }},
      {"cookie_secure", "mark the session cookie Secure: true, false, or auto (true unless public_url is plain http on loopback)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false" && v != "auto")
           return "'cookie_secure' must be true, false or auto, not '" + v + "'";
         c.cookie_secure_setting = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.cookie_secure_setting; }},
      {"trusted_proxies", "reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client; empty: none", text(&Config::trusted_proxies), [](const Config& c) { return c.trusted_proxies; }},
      {"max_queued_requests", "requests waiting for a worker before 503 is answered at once", number(&Config::max_queued_requests, "max_queued_requests", 1, 100000), [](const Config& c) { return std::to_string(c.max_queued_requests); }},
      {"argon2_threads", "threads hashing passwords (sign-up, login, password change), apart from the other requests", number(&Config::argon2_threads, "argon2_threads", 1, 64), [](const Config& c) { return std::to_string(c.argon2_threads); }},
      {"max_connections_per_address", "open REST connections per client address (trusted proxies exempt)", number(&Config::max_connections_per_address, "max_connections_per_address", 1, 100000), [](const Config& c) { return std::to_string(c.max_connections_per_address); }},
      {"max_connections", "open REST connections in all", number(&Config::max_connections, "max_connections", 1, 1000000), [](const Config& c) { return std::to_string(c.max_connections); }},
      {"header_timeout_seconds", "time a client has to send the request line and headers", number(&Config::header_timeout_seconds, "header_timeout_seconds", 1, 3600), [](const Config& c) { return std::to_string(c.header_timeout_seconds); }},
      {"body_timeout_seconds", "time a client has to send the whole request", number(&Config::body_timeout_seconds, "body_timeout_seconds", 1, 3600), [](const Config& c) { return std::to_string(c.body_timeout_seconds); }},
      {"keepalive_timeout_seconds", "an idle kept-alive REST connection is closed after this", number(&Config::keepalive_timeout_seconds, "keepalive_timeout_seconds", 1, 3600), [](const Config& c) { return std::to_string(c.keepalive_timeout_seconds); }},
      {"registrations_per_address", "sign-ups per window and client address", number(&Config::registrations_per_address, "registrations_per_address", 1, 1000000), [](const Config& c) { return std::to_string(c.registrations_per_address); }},
      {"registration_window_seconds", "sign-up rate-limit window", number(&Config::registration_window_seconds, "registration_window_seconds", 1, 86400), [](const Config& c) { return std::to_string(c.registration_window_seconds); }},
      {"style_cooldown_seconds", "a viewer waits this long between style requests on one stream", number(&Config::style_cooldown_seconds, "style_cooldown_seconds", 0, 86400), [](const Config& c) { return std::to_string(c.style_cooldown_seconds); }},
      {"session_ttl_seconds", "session lifetime", number(&Config::session_ttl_seconds, "session_ttl_seconds", 60, 365 * 86400), [](const Config& c) { return std::to_string(c.session_ttl_seconds); }},
      {"argon2_memory_kib", "Argon2id memory cost (OWASP: 19456)", number(&Config::argon2_memory_kib, "argon2_memory_kib", 8, 4 << 20), [](const Config& c) { return std::to_string(c.argon2_memory_kib); }},
      {"argon2_iterations", "Argon2id time cost (OWASP: 2)", number(&Config::argon2_iterations, "argon2_iterations", 1, 100), [](const Config& c) { return std::to_string(c.argon2_iterations); }},
      {"meter_seconds", "how often live streams are billed (at most 60)", number(&Config::meter_seconds, "meter_seconds", 1, 60), [](const Config& c) { return std::to_string(c.meter_seconds); }},
      {"style_seconds", "how long a requested style stays applied", number(&Config::style_seconds, "style_seconds", 1, 3600), [](const Config& c) { return std::to_string(c.style_seconds); }},
      {"login_failures_per_user", "failed logins per window and username", number(&Config::login_failures_per_user, "login_failures_per_user", 1, 1000), [](const Config& c) { return std::to_string(c.login_failures_per_user); }},
      {"login_failures_per_address", "failed logins per window and client address", number(&Config::login_failures_per_address, "login_failures_per_address", 1, 100000), [](const Config& c) { return std::to_string(c.login_failures_per_address); }},
      {"login_window_seconds", "login rate-limit window", number(&Config::login_window_seconds, "login_window_seconds", 1, 86400), [](const Config& c) { return std::to_string(c.login_window_seconds); }},
      {"comments_per_window", "comments per window and author", number(&Config::comments_per_window, "comments_per_window", 1, 10000), [](const Config& c) { return std::to_string(c.comments_per_window); }},
      {"comment_window_seconds", "comment rate-limit window", number(&Config::comment_window_seconds, "comment_window_seconds", 1, 86400), [](const Config& c) { return std::to_string(c.comment_window_seconds); }},
      {"worker_timeout_seconds", "a media worker whose heartbeat is older is not live (no new streams, no billing past it)", number(&Config::worker_timeout_seconds, "worker_timeout_seconds", 2, 3600), [](const Config& c) { return std::to_string(c.worker_timeout_seconds); }},
      {"replace_grace_seconds", "a stream whose worker died waits this long for a worker with room, then ends (worker_lost)", number(&Config::replace_grace_seconds, "replace_grace_seconds", 0, 86400), [](const Config& c) { return std::to_string(c.replace_grace_seconds); }},
      {"drain_seconds", "a draining worker (SIGTERM, `miraged worker drain NAME`) ends the streams not moved by then (worker_drained)", number(&Config::drain_seconds, "drain_seconds", 0, 86400), [](const Config& c) { return std::to_string(c.drain_seconds); }},
      {"model", "the model of every stream's diffusionfilter (a worker's; serve: empty runs the API only, set runs a worker inside it)", text(&Config::model), [](const Config& c) { return c.model; }},
      {"device", "where a worker runs the model: auto, cpu, cuda or cuda:N", text(&Config::device), [](const Config& c) { return c.device; }},
      {"worker_name", "a worker's name in the database (unique; its streams come back to it after a restart); default: the host name", text(&Config::worker_name), [](const Config& c) { return c.worker_name; }},
      {"capacity", "live streams a worker accepts", number(&Config::capacity, "capacity", 0, 10000), [](const Config& c) { return std::to_string(c.capacity); }},
      {"public_media_url", "the worker's media port as clients reach it (http[s]://host:port); default: http://media_addr", text(&Config::public_media_url), [](const Config& c) { return c.public_media_url; }},
      {"public_srt_url", "the worker's SRT ingest as clients reach it (srt://host:port); default: srt://srt_addr", text(&Config::public_srt_url), [](const Config& c) { return c.public_srt_url; }},
      {"public_rtsp_url", "the worker's RTSP ingest as clients reach it (rtsp://host:port); default: rtsp://rtsp_addr", text(&Config::public_rtsp_url), [](const Config& c) { return c.public_rtsp_url; }},
      {"media_addr", "address:port of the media server (WebSocket ingest and watch, HLS)", text(&Config::media_addr), [](const Config& c) { return c.media_addr; }},
      {"ice_addresses", "WHIP/WHEP: the only addresses WebRTC candidates are gathered on (comma-separated); default: media_addr's", text(&Config::ice_addresses), [](const Config& c) { return c.ice_addresses; }},
      {"ice_servers", "WHIP/WHEP: STUN/TURN servers (stun://host:port, turn://user:password@host:port; comma-separated), also given to clients in Link headers; default: none", text(&Config::ice_servers), [](const Config& c) { return c.ice_servers.empty() ? "" : "(set)"; }},
      {"ice_port_range", "WHIP/WHEP: the UDP ports WebRTC uses (MIN-MAX); default: any", text(&Config::ice_port_range), [](const Config& c) { return c.ice_port_range; }},
      {"ice_public_ip", "WHIP/WHEP: the public address behind a 1:1 NAT, written into the candidates", text(&Config::ice_public_ip), [](const Config& c) { return c.ice_public_ip; }},
      {"srt_addr", "address:port of the SRT ingest listener (empty: none)", text(&Config::srt_addr), [](const Config& c) { return c.srt_addr; }},
      {"rtsp_addr", "address:port of the RTSP (RECORD) ingest server (empty: none)", text(&Config::rtsp_addr), [](const Config& c) { return c.rtsp_addr; }},
      {"srt_passphrase", "SRT encryption passphrase every caller must use (10 to 79 characters; empty: none)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (!v.empty() && (v.size() < 10 || v.size() > 79)) return std::string("'srt_passphrase' must be 10 to 79 characters long");
         c.srt_passphrase = v;
         return std::nullopt;
       },
       [](const Config&) { return std::string(); }},
      {"max_ingest_width", "ingest frames declaring a larger width are refused before decoding", number(&Config::max_ingest_width, "max_ingest_width", 16, 8192), [](const Config& c) { return std::to_string(c.max_ingest_width); }},
      {"max_ingest_height", "ingest frames declaring a larger height are refused before decoding", number(&Config::max_ingest_height, "max_ingest_height", 16, 8192), [](const Config& c) { return std::to_string(c.max_ingest_height); }},
      {"media_connections_per_address", "open media-port connections per client address (trusted proxies exempt)", number(&Config::media_connections_per_address, "media_connections_per_address", 1, 100000), [](const Config& c) { return std::to_string(c.media_connections_per_address); }},
      {"media_idle_timeout_seconds", "a media-port HTTP connection with no request for this long is closed", number(&Config::media_idle_timeout_seconds, "media_idle_timeout_seconds", 1, 3600), [](const Config& c) { return std::to_string(c.media_idle_timeout_seconds); }},
      {"hls_viewers_per_address", "HLS viewers counted per client address at most (one address cannot inflate the count)", number(&Config::hls_viewers_per_address, "hls_viewers_per_address", 1, 10000), [](const Config& c) { return std::to_string(c.hls_viewers_per_address); }},
      {"pipelines_dir", "folder of the pipeline templates", text(&Config::pipelines_dir), [](const Config& c) { return c.pipelines_dir; }},
      {"metrics_addr", "address:port serving Prometheus metrics at /metrics (no authentication: loopback or a private network); empty: off", text(&Config::metrics_addr), [](const Config& c) { return c.metrics_addr; }},
      {"log_format", "log lines on stderr: logfmt or json (one line per event)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "logfmt" && v != "json") return "'log_format' must be logfmt or json, not '" + v + "'";
         c.log_format = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.log_format; }},
      {"log_level", "least level logged: debug, info, warn or error",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "debug" && v != "info" && v != "warn" && v != "error")
           return "'log_level' must be debug, info, warn or error, not '" + v + "'";
         c.log_level = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.log_level; }},
      {"hls_dir", "where live streams' HLS files are written (one folder per stream)", text(&Config::hls_dir), [](const Config& c) { return c.hls_dir; }},
      {"media_width", "width of processed streams", number(&Config::media_width, "media_width", 16, 4096), [](const Config& c) { return std::to_string(c.media_width); }},
      {"media_height", "height of processed streams", number(&Config::media_height, "media_height", 16, 4096), [](const Config& c) { return std::to_string(c.media_height); }},
      {"media_fps", "framerate of processed streams", number(&Config::media_fps, "media_fps", 1, 120), [](const Config& c) { return std::to_string(c.media_fps); }},
      {"ingest_silence_seconds", "a live stream whose ingest sends nothing for this long ends", number(&Config::ingest_silence_seconds, "ingest_silence_seconds", 1, 3600), [](const Config& c) { return std::to_string(c.ingest_silence_seconds); }},
      {"stripe_secret_key", "Stripe secret key (sk_...); without it checkout answers 503", text(&Config::stripe_secret_key), [](const Config&) { return std::string(); }},
      {"stripe_webhook_secret", "Stripe webhook endpoint secret (whsec_...)", text(&Config::stripe_webhook_secret), [](const Config&) { return std::string(); }},
      {"stripe_api_base", "Stripe API base URL (tests point it at a local fake)", text(&Config::stripe_api_base), [](const Config& c) { return c.stripe_api_base; }},
      {"stripe_timeout_ms", "timeout of one Stripe API request", number(&Config::stripe_timeout_ms, "stripe_timeout_ms", 100, 120000), [](const Config& c) { return std::to_string(c.stripe_timeout_ms); }},
      {"checkout_success_url", "where Stripe Checkout returns after paying", text(&Config::checkout_success_url), [](const Config& c) { return c.checkout_success_url; }},
      {"checkout_cancel_url", "where Stripe Checkout returns when cancelled", text(&Config::checkout_cancel_url), [](const Config& c) { return c.checkout_cancel_url; }},
      {"credit_packs", "packs for sale: id:credits:amount-in-cents:currency,...", text(&Config::credit_packs), [](const Config& c) { return c.credit_packs; }},
  };
  return all;
}

std::string flag_of(const std::string& key) {
  std::string f = "--" + key;
  for (char& ch : f) if (ch == '_') ch = '-';
  return f;
}

std::string env_of(const std::string& key) {
  std::string e = "MIRAGE_" + key;
  for (char& ch : e) ch = char(toupper(ch));
  return e;
}

// Where a config line's text ends: a '#' at the start of the line or after
// whitespace starts a comment; a '#' inside a value ("a#b", a URL's
// fragment) is part of it.
size_t strip_comment(const std::string& line) {
  for (size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return i;
  return line.size();
}

const Setting* find(const std::string& key) {
  for (const Setting& s : settings())
    if (key == s.key) return &s;
  return nullptr;
}

// Edit distance (insertions, deletions, substitutions, and swaps of two
// neighbours: "htpp" is one from "http").
size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// "; did you mean 'X'?" for the known key closest to an unknown one, when it
// is close enough to be a typo (at most a third of its letters differ) or a
// word left out (one name contains the other, and only one key matches so);
// else nothing.
std::string closest_hint(std::string unknown, const std::function<std::string(const std::string&)>& spell) {
  for (char& ch : unknown) ch = ch == '-' ? '_' : char(tolower(ch));
  auto overlaps = [&](const std::string& key) {
    return unknown.size() >= 4 && (key.find(unknown) != std::string::npos || unknown.find(key) != std::string::npos);
  };
  const size_t overlapping = size_t(std::count_if(settings().begin(), settings().end(),
                                                   [&](const Setting& s) { return overlaps(s.key); }));
  const Setting* best = nullptr;
  size_t best_distance = 0;
  for (const Setting& s : settings()) {
    const std::string key = s.key;
    size_t dist = distance(unknown, key);
    if (overlapping == 1 && overlaps(key)) dist = std::min<size_t>(dist, 1);  // "stripe_secret"
    if (!best || dist < best_distance) {
      best = &s;
      best_distance = dist;
    }
  }
  if (!best || best_distance > std::max<size_t>(2, unknown.size() / 3)) return "";
  return "; did you mean '" + spell(best->key) + "'?";
}

}  // namespace

std::optional<std::string> parse_config_text(const std::string& text, const std::string& name,
                                             std::map<std::string, std::string>* values) {
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    line.resize(strip_comment(line));
    auto eq = line.find('=');
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    if (trim(line).empty()) continue;
    if (eq == std::string::npos) return name + ":" + std::to_string(n) + ": expected 'key = value'";
    std::string key = trim(line.substr(0, eq));
    if (!find(key))
      return name + ":" + std::to_string(n) + ": unknown setting '" + key + "'" +
             closest_hint(key, [](const std::string& k) { return k; });
    (*values)[key] = trim(line.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string> apply_config_values(const std::map<std::string, std::string>& values, Config* config) {
  for (const auto& [key, value] : values)
    if (const Setting* s = find(key))
      if (auto error = s->set(*config, value)) return error;
  return std::nullopt;
}

std::optional<std::string> load_config(int argc, char** argv, int first, Config* config,
                                       std::vector<std::string>* rest) {
  std::map<std::string, std::string> flags;
  std::string file;
  if (const char* f = std::getenv("MIRAGE_CONFIG")) file = f;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      rest->push_back(arg);
      continue;
    }
    std::string value;
    auto eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return "'" + arg + "' needs a value";
    }
    if (arg == "--config") {
      file = value;
      continue;
    }
    flags[arg] = value;
  }
  std::map<std::string, std::string> from_file;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return "cannot read the config file '" + file + "'";
    std::stringstream text;
    text << in.rdbuf();
    if (auto error = parse_config_text(text.str(), file, &from_file)) return error;
  }
  for (const auto& [flag, value] : flags) {
    bool known = false;
    for (const Setting& s : settings()) known |= flag_of(s.key) == flag;
    if (!known) {
      std::string hint = flag.size() > 2 ? closest_hint(flag.substr(2), flag_of) : "";
      return "unknown option '" + flag + "'" + hint + " (see miraged --help)";
    }
  }
  for (const Setting& s : settings()) {
    std::optional<std::string> value;
    if (auto it = flags.find(flag_of(s.key)); it != flags.end()) value = it->second;
    else if (const char* e = std::getenv(env_of(s.key).c_str())) value = std::string(e);
    else if (auto it = from_file.find(s.key); it != from_file.end()) value = it->second;
    if (value)
      if (auto error = s.set(*config, *value)) return error;
  }
  config->cookie_secure = config->cookie_secure_setting == "true" ||
                          (config->cookie_secure_setting == "auto" && !plain_http_on_loopback(config->public_url));
  return std::nullopt;
}

bool plain_http_on_loopback(const std::string& url) {
  if (url.rfind("http://", 0) != 0) return false;
  std::string host = url.substr(7);
  host = host.substr(0, host.find('/'));
  if (host.rfind('[', 0) == 0) return host.rfind("[::1]", 0) == 0;
  host = host.substr(0, host.find(':'));
  in_addr v4{};
  return host == "localhost" || (inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127);
}

std::map<std::string, std::string> config_values(const Config& config) {
  std::map<std::string, std::string> values;
  for (const Setting& s : settings()) values[s.key] = s.get(config);
  return values;
}

std::string config_help() {
  std::ostringstream out;
  Config defaults;
  for (const Setting& s : settings()) {
    out << "  " << flag_of(s.key) << " (" << env_of(s.key) << ")\n      " << s.help;
    std::string d = s.get(defaults);
    if (!d.empty()) out << "; default " << d;
    out << "\n";
  }
  out << "  --config FILE (MIRAGE_CONFIG)\n      a file of 'key = value' lines with the keys above\n";
  return out.str();
}

}  // namespace mirage
