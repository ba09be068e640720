// miraged's settings. Each comes from, in order of precedence: a flag
// (--http-addr), the environment (MIRAGE_HTTP_ADDR), a config file
// (--config FILE or MIRAGE_CONFIG; lines "http_addr = 127.0.0.1:8080"; a '#'
// at the start of a line or after whitespace starts a comment, one inside a
// value is kept), or the default. `miraged --help` lists them all.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mirage {

struct Config {
  std::string http_addr = "127.0.0.1:8080";
  std::string database_url;
  std::string migrations_dir;
  int http_threads = 2;
  int workers = 8;  // request worker threads = database connections
  std::string public_url = "http://127.0.0.1:8080";
  std::string cors_origin;  // e.g. http://localhost:3000; empty: no CORS
  // Secure session cookies: "auto" (the default) means true unless
  // public_url is plain http on a loopback host. load_config() resolves it.
  std::string cookie_secure_setting = "auto";
  bool cookie_secure = false;
  // Reverse proxies whose X-Forwarded-For is believed (CIDRs, comma-separated).
  std::string trusted_proxies;
  std::string ice_addresses;   // WebRTC candidates only here; default: media_addr's address
  std::string ice_servers;     // stun://h:p, turn://u:p@h:p (comma-separated)
  std::string ice_port_range;  // MIN-MAX
  std::string ice_public_ip;   // 1:1 NAT
  // Admission control on the REST port.
  int max_queued_requests = 256;      // per queue; a full queue answers 503 at once
  int argon2_threads = 2;             // sign-up, login and password change run here
  int max_connections_per_address = 64;
  int max_connections = 4096;
  int header_timeout_seconds = 10;    // to send the request line and headers
  int body_timeout_seconds = 30;      // to send the body
  int keepalive_timeout_seconds = 30; // an idle kept-alive connection is closed
  int registrations_per_address = 10;
  int registration_window_seconds = 3600;
  int style_cooldown_seconds = 10;    // between two style requests of one viewer on one stream
  int session_ttl_seconds = 30 * 24 * 3600;
  int argon2_memory_kib = 19 * 1024;
  int argon2_iterations = 2;
  int meter_seconds = 30;
  int style_seconds = 30;
  int login_failures_per_user = 5;
  int login_failures_per_address = 20;
  int login_window_seconds = 300;
  int comments_per_window = 5;
  int comment_window_seconds = 10;
  // Media workers (docs/architecture.md), as the API sees them.
  int worker_timeout_seconds = 5;  // a worker heartbeating less recently is not live
  int replace_grace_seconds = 30;  // a dead worker's stream waits this long for room elsewhere
  int drain_seconds = 30;          // a drain ends what it could not move by then
  // A media worker (`miraged worker`, or inside `serve` when a model is set).
  std::string model;
  std::string device = "auto";
  std::string worker_name;  // default: the host name
  int capacity = 4;         // live streams it accepts
  // What clients are told (they may differ from the listen addresses, behind
  // NAT or a proxy); default: derived from media_addr, srt_addr, rtsp_addr.
  std::string public_media_url;
  std::string public_srt_url;
  std::string public_rtsp_url;
  std::string media_addr = "127.0.0.1:8081";
  std::string srt_addr = "127.0.0.1:9000";   // empty: no SRT ingest
  std::string rtsp_addr = "127.0.0.1:8554";  // empty: no RTSP ingest
  std::string srt_passphrase;  // empty: SRT unencrypted; else 10 to 79 characters, required of every caller
  int max_ingest_width = 1920;   // frames declaring more are refused before decoding
  int max_ingest_height = 1080;
  int media_connections_per_address = 64;
  int media_idle_timeout_seconds = 30;  // a plain HTTP connection idle this long is closed
  int hls_viewers_per_address = 8;      // HLS viewer ids counted per client address at most
  std::string pipelines_dir;  // default: the source tree's pipelines/
  std::string hls_dir = "/tmp/mirage-hls";
  std::string metrics_addr;  // Prometheus /metrics (address:port); empty: off
  std::string log_format = "logfmt";  // logfmt or json (log/log.h)
  std::string log_level = "info";     // debug, info, warn or error
  int media_width = 640;
  int media_height = 480;
  int media_fps = 15;
  int ingest_silence_seconds = 15;
  // Payments (docs/payments.md). Secrets belong in the environment.
  std::string stripe_secret_key;
  std::string stripe_webhook_secret;
  std::string stripe_api_base = "https://api.stripe.com";
  int stripe_timeout_ms = 10000;
  std::string checkout_success_url = "http://127.0.0.1:3000/dashboard/credits?session_id={CHECKOUT_SESSION_ID}";
  std::string checkout_cancel_url = "http://127.0.0.1:3000/dashboard/credits?canceled=1";
  std::string credit_packs = "small:5:500:usd,medium:20:1800:usd,large:60:4800:usd";
};

// Fills |config| from flags (argv[first..]), environment and file. Returns
// an error sentence, or nullopt. Unknown flags are errors; |rest| receives
// the positional arguments.
std::optional<std::string> load_config(int argc, char** argv, int first, Config* config,
                                       std::vector<std::string>* rest);

// A config file's text: "key = value" lines (comments as above) into
// |values|; an error names |name| and the line. Unknown keys are errors.
std::optional<std::string> parse_config_text(const std::string& text, const std::string& name,
                                             std::map<std::string, std::string>* values);
// Sets each value on |config|, checked as from a flag; the first error.
std::optional<std::string> apply_config_values(const std::map<std::string, std::string>& values, Config* config);

// One line per setting: flag, environment variable, default, meaning.
std::string config_help();

// Every setting's key and its value in `config`, as a config file spells it
// (secrets read as empty). For the example file's test.
std::map<std::string, std::string> config_values(const Config& config);

// True for "http://127.0.0.1:3000", "http://localhost", "http://[::1]:8080".
bool plain_http_on_loopback(const std::string& url);

}  // namespace mirage
