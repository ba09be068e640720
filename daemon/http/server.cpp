#include "server.h"

#include <pistache/endpoint.h>
#include <pistache/router.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <thread>

#include "db/connection.h"
#include "http/guard.h"
#include "http/json.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "service/error.h"
#include "service/readiness.h"

namespace mirage::http {

namespace {

using namespace Pistache;

// Bodies are small JSON objects (the largest, a Stripe event, is tens of KB):
// 256 KiB is room to spare. GuardedHandler answers 413 beyond, from the
// Content-Length alone.
constexpr size_t kMaxBody = 256 << 10;
constexpr size_t kMaxHead = 16 << 10;  // request line and headers; 431 beyond
constexpr const char* kSessionCookie = "mirage_session";

// Pistache 0.0.5 does not send headers added with addRaw(): a header it has
// no class for must be a Header subclass. This one carries any name.
class NamedHeader : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value) : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void parse(const std::string& data) override { value_ = data; }
  void write(std::ostream& os) const override { os << value_; }
#ifdef SAFE_HEADER_CAST
  uint64_t hash() const override { return std::hash<std::string>()(name_); }
#endif

 private:
  std::string name_, value_;
};

void add_header(Http::ResponseWriter& w, const std::string& name, const std::string& value) {
  w.headers().add(std::make_shared<NamedHeader>(name, value));
}

// What a handler needs from a request, copied before the request leaves
// Pistache's thread.
struct Call {
  std::string request_id;  // returned as X-Request-Id; in every log line of the request
  std::string body;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> query;
  std::optional<std::string> token;  // Bearer token or session cookie
  std::string address;
  std::string stripe_signature;
  std::string accept;
  std::string param(const std::string& name) const { return params.at(name); }
};

// The "type" of a Stripe event body whose signature was checked, as a
// metrics label: Stripe's names only (lower case, dots, underscores, at
// most 64), anything else "(other)".
std::string webhook_type(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("type") || !d["type"].IsString()) return "(other)";
  const std::string type = d["type"].GetString();
  const bool plain = !type.empty() && type.size() <= 64 &&
                     std::all_of(type.begin(), type.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || ch == '.' || ch == '_'; });
  return plain ? type : "(other)";
}

// A request's metrics: by route and status, plus what operators watch by
// name (logins, sign-ups, rate-limit refusals), read off the status.
void count_request(const std::string& route, const std::string& method, int status, double seconds) {
  metrics::http_request(route, method, status, seconds);
  if (status == 429) metrics::rate_limited(route);
  auto outcome = [status](int ok, const char* ok_name, int no, const char* no_name) {
    return status == ok ? ok_name : status == no ? no_name : status == 429 ? "rate_limited"
                                                                           : status >= 500 ? "error" : "invalid";
  };
  if (route == "/api/auth/login") metrics::login(outcome(200, "success", 401, "invalid_credentials"));
  if (route == "/api/auth/register") metrics::registration(outcome(201, "created", 409, "taken"));
}

struct Reply {
  Http::Code code = Http::Code::Ok;
  std::string json;  // the body: JSON unless html is set
  std::vector<std::pair<std::string, std::string>> headers;
  bool html = false;
};

// RFC 3986 percent-encoding of everything but the unreserved characters.
std::string percent_encode(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string money(int64_t amount, const std::string& currency) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", (long long)(amount / 100), (long long)(amount % 100));
  std::string upper = currency;
  for (char& ch : upper) ch = char(toupper(ch));
  return std::string(buf) + " " + upper;
}

// The one place where domain errors become status codes.
Http::Code status_of(service::ErrorKind kind) {
  switch (kind) {
    case service::ErrorKind::kInvalid: return Http::Code::Bad_Request;
    case service::ErrorKind::kUnauthorized: return Http::Code::Unauthorized;
    case service::ErrorKind::kPaymentRequired: return Http::Code::Payment_Required;
    case service::ErrorKind::kForbidden: return Http::Code::Forbidden;
    case service::ErrorKind::kNotFound: return Http::Code::Not_Found;
    case service::ErrorKind::kConflict: return Http::Code::Conflict;
    case service::ErrorKind::kTooLarge: return Http::Code::Request_Entity_Too_Large;
    case service::ErrorKind::kRateLimited: return Http::Code::Too_Many_Requests;
    case service::ErrorKind::kBadGateway: return Http::Code::Bad_Gateway;
    case service::ErrorKind::kUnavailable: return Http::Code::Service_Unavailable;
  }
  return Http::Code::Internal_Server_Error;
}

// A fixed pool of threads running queued jobs in order of arrival, with a
// bounded queue: when it is full, post() says so at once and the caller
// answers 503 instead of letting requests pile up without limit.
class WorkQueue {
 public:
  WorkQueue(int threads, size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([this] {
        for (;;) {
          std::function<void()> job;
          {
            std::unique_lock<std::mutex> lock(mutex_);
            cond_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
          }
          job();
        }
      });
  }
  ~WorkQueue() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cond_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // False when the queue is full; the job is then not taken.
  bool post(std::function<void()>& job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (jobs_.size() >= max_queued_) return false;
      jobs_.push_back(std::move(job));
    }
    cond_.notify_one();
    return true;
  }

 private:
  const size_t max_queued_;
  std::mutex mutex_;  // guards jobs_ and stopping_
  std::condition_variable cond_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Path segments that name a user or a record: anything else cannot exist,
// and is answered 404 before a query sees bytes PostgreSQL may refuse.
bool plausible_username(const std::string& s) {
  if (s.size() < 3 || s.size() > 32) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}
bool plausible_id(const std::string& s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
}
// Stripe's object ids: cs_test_a1B2...
bool plausible_stripe_id(const std::string& s) {
  return !s.empty() && s.size() <= 255 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string::npos;
}
bool plausible_param(const std::string& name, const std::string& value) {
  if (name == "username") return plausible_username(value);
  if (name == "session_id") return plausible_stripe_id(value);
  return plausible_id(value);
}

// ?NAME=N: a whole number of at most 18 digits, else 400 naming it.
std::optional<int64_t> query_id(const Call& call, const char* name) {
  auto it = call.query.find(name);
  if (it == call.query.end()) return std::nullopt;
  if (!plausible_id(it->second))
    throw service::invalid_field(name, "'" + std::string(name) + "' must be a whole number of at most 18 digits");
  return std::stoll(it->second);
}

std::string to_json(const std::function<void(Writer&)>& write) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  write(w);
  return buffer.GetString();
}

}  // namespace

// The streamid is percent-encoded: a raw '#' starts a URI fragment for
// GStreamer's srtsink (which then sends no streamid). GStreamer decodes the
// query; ffmpeg 5 sends it as written; the SRT listener accepts both.
std::string srt_ingest_url(const std::string& base, const std::string& username, const std::string& secret,
                           const std::string& passphrase) {
  std::string url = base + "?streamid=" + percent_encode("#!::r=" + username + ",m=publish,s=" + secret);
  if (!passphrase.empty()) url += "&passphrase=" + percent_encode(passphrase);
  return url;
}

struct ApiServer::Impl {
  const Config& config;
  service::Accounts& accounts;
  service::Streams& streams;
  service::Payments& payments;
  Rest::Router router;
  std::unique_ptr<Http::Endpoint> endpoint;
  std::shared_ptr<GuardedHandler> guard;
  auth::TrustedProxies trusted;
  std::mutex work_lock;  // guards work and auth_work: shutdown() takes them away while requests arrive
  std::unique_ptr<WorkQueue> work;       // every request but those below
  std::unique_ptr<WorkQueue> auth_work;  // Argon2: sign-up, login, password change
  service::DatabaseProbe probe;          // /readyz

  Impl(const Config& c, service::Accounts& a, service::Streams& s, service::Payments& p)
      : config(c), accounts(a), streams(s), payments(p),
        probe(c.database_url, service::newest_migration(c.migrations_dir)) {}

  using Handler = std::function<Reply(const Call&)>;
  enum class Queue { kRequests, kArgon2 };

  // |route| is the path template, the requests' label in the metrics and
  // the log (never the path itself: it may name a user, an id, a secret).
  Rest::Route::Handler wrap(Handler handler, std::vector<std::string> params, Queue queue, std::string route) {
    return [this, handler, params, queue, route](const Rest::Request& request, Http::ResponseWriter response) {
      const auto started = std::chrono::steady_clock::now();
      const std::string method = Http::methodString(request.method());
      Call call;
      call.request_id = request_id_of(request);
      call.address = client_of(request);
      // Counted and logged once the answer is sent (one line per request).
      auto count = [route, method, started, id = call.request_id, client = call.address](Http::Code code) {
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        count_request(route, method, int(code), seconds);
        log_request(id, method, route, int(code), seconds, client);
      };
      add_header(response, "X-Request-Id", call.request_id);
      for (const auto& name : params) {
        const std::string value = request.param(":" + name).as<std::string>();
        if (!plausible_param(name, value)) {
          count(Http::Code::Not_Found);
          add_cors(response);
          response.send(Http::Code::Not_Found,
                        error_json("not_found", name == "username" ? "no such streamer" : "no such record"),
                        MIME(Application, Json));
          return Rest::Route::Result::Ok;
        }
        call.params[name] = value;
      }
      call.body = request.body();
      for (auto it = request.query().parameters_begin(); it != request.query().parameters_end(); ++it)
        call.query[it->first] = it->second;
      if (auto auth = request.headers().tryGetRaw("Authorization")) {
        const std::string& v = auth->value();
        if (v.rfind("Bearer ", 0) == 0) call.token = v.substr(7);
      }
      if (!call.token && request.cookies().has(kSessionCookie))
        call.token = request.cookies().get(kSessionCookie).value;
      if (auto sig = request.headers().tryGetRaw("Stripe-Signature")) call.stripe_signature = sig->value();
      if (auto accept = request.headers().tryGetRaw("Accept")) call.accept = accept->value();
      std::lock_guard<std::mutex> lock(work_lock);
      WorkQueue* target = queue == Queue::kArgon2 ? auth_work.get() : work.get();
      if (!target) {
        count(Http::Code::Service_Unavailable);
        add_cors(response);
        response.send(Http::Code::Service_Unavailable, error_json("shutting_down", "the server is stopping"),
                      MIME(Application, Json));
        return Rest::Route::Result::Ok;
      }
      auto writer = std::make_shared<Http::ResponseWriter>(std::move(response));
      std::function<void()> job = [this, handler, call = std::move(call), writer, count] {
        log::RequestScope scope(call.request_id);
        Reply reply = run(handler, call);
        respond(*writer, reply);
        count(reply.code);
      };
      if (!target->post(job)) {
        count(Http::Code::Service_Unavailable);
        // Full: answered now, on the reactor, instead of queueing without bound.
        add_cors(*writer);
        add_header(*writer, "Retry-After", "1");
        writer->send(Http::Code::Service_Unavailable, error_json("overloaded", "the server is busy; try again in a second"),
                     MIME(Application, Json));
      }
      return Rest::Route::Result::Ok;
    };
  }

  Reply run(const Handler& handler, const Call& call) {
    try {
      return handler(call);
    } catch (const service::Error& e) {
      Reply r{status_of(e.kind), error_json(e.code, e.what(), e.field), {}};
      if (e.retry_after > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after));
      return r;
    } catch (const db::Error& e) {
      if (!e.unavailable()) {
        log::error("internal error", {{"error", e.what()}});
        return {Http::Code::Internal_Server_Error, error_json("internal", "internal error"), {}};
      }
      // PostgreSQL is restarting or unreachable: say so, and when to retry.
      return {Http::Code::Service_Unavailable,
              error_json("database_unavailable", "the database is unreachable; try again in a few seconds"),
              {{"Retry-After", "2"}}};
    } catch (const std::exception& e) {
      log::error("internal error", {{"error", e.what()}});
      return {Http::Code::Internal_Server_Error, error_json("internal", "internal error"), {}};
    }
  }

  // The client's (or proxy's) X-Request-Id when it is a plain token
  // (log::valid_request_id), else a new one.
  static std::string request_id_of(const Rest::Request& request) {
    const auto given = request.headers().tryGetRaw("X-Request-Id");
    if (given && log::valid_request_id(given->value())) return given->value();
    return log::new_request_id();
  }

  std::string client_of(const Rest::Request& request) const {
    const auto forwarded = request.headers().tryGetRaw("X-Forwarded-For");
    return trusted.client(request.address().host(), forwarded ? forwarded->value() : "");
  }

  // The request's line: method, route template, status, time and client;
  // never the path, the query, a header or the body.
  static void log_request(const std::string& id, const std::string& method, const std::string& route, int status,
                          double seconds, const std::string& client) {
    // Probes come every few seconds: debug, unless they fail.
    const bool probe = route == "/readyz" && status < 500;
    log::write(status >= 500 ? log::Level::kWarn : probe ? log::Level::kDebug : log::Level::kInfo, "request",
               {{"request_id", id}, {"method", method}, {"route", route}, {"status", status},
                {"duration_ms", std::round(seconds * 1e5) / 100}, {"client", client}});
  }

  void respond(Http::ResponseWriter& w, const Reply& reply) {
    for (const auto& [name, value] : reply.headers) {
      if (name == "Set-Cookie") w.cookies().add(session_cookie(value));
      else add_header(w, name, value);
    }
    add_cors(w);
    if (reply.html) w.send(reply.code, reply.json, MIME(Text, Html));
    else w.send(reply.code, reply.json, MIME(Application, Json));
  }

  void add_cors(Http::ResponseWriter& w) {
    if (config.cors_origin.empty()) return;
    add_header(w, "Access-Control-Allow-Origin", config.cors_origin);
    add_header(w, "Access-Control-Allow-Credentials", "true");
    add_header(w, "Vary", "Origin");
    add_header(w, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
  }

  service::User user_of(const Call& call) { return accounts.authenticate(call.token); }

  // Reply headers carry the cookie as "TOKEN;MAX_AGE"; respond() turns it
  // into Pistache's cookie (it writes Set-Cookie only from its cookie jar).
  static std::string cookie_header(const std::string& token, int max_age) {
    return token + ";" + std::to_string(max_age);
  }
  Http::Cookie session_cookie(const std::string& header) {
    auto semi = header.rfind(';');
    Http::Cookie cookie(kSessionCookie, header.substr(0, semi));
    cookie.path = "/";
    cookie.httpOnly = true;
    cookie.secure = config.cookie_secure;
    cookie.maxAge = std::stoi(header.substr(semi + 1));
    cookie.ext["SameSite"] = "Lax";
    return cookie;
  }

  // The URLs of the stream's worker (service::MediaWorker), as its clients
  // reach it; null without one.
  static std::string ws_base(const service::MediaWorker& worker) {
    const std::string& m = worker.media_url;
    return "ws" + m.substr(m.rfind("http", 0) == 0 ? 4 : 0);
  }
  // The URLs a publisher uses; each carries the stream's secret.
  void write_ingest(Writer& w, const service::User& user, const service::Stream& s,
                    const std::optional<service::MediaWorker>& worker) {
    if (!worker) return (void)w.Null();
    w.StartObject();
    w.Key("secret");
    w.String(s.secret.c_str());
    w.Key("worker");
    w.String(worker->name.c_str());
    w.Key("websocket");
    w.String((ws_base(*worker) + "/ingest/" + user.username + "?secret=" + s.secret).c_str());
    w.Key("whip");  // WebRTC (RFC 9725): Authorization: Bearer <secret>
    w.String((worker->media_url + "/whip/" + user.username).c_str());
    w.Key("srt");
    if (worker->srt_url.empty()) w.Null();
    else w.String(srt_ingest_url(worker->srt_url, user.username, s.secret, worker->srt_passphrase).c_str());
    w.Key("rtsp");
    if (worker->rtsp_url.empty()) {
      w.Null();
    } else {
      // rtsp://user:secret@host:port/ingest/user (RTSP Basic credentials).
      std::string rtsp = worker->rtsp_url;
      const auto scheme = rtsp.find("://");
      if (scheme != std::string::npos) rtsp.insert(scheme + 3, user.username + ":" + s.secret + "@");
      w.String((rtsp + "/ingest/" + user.username).c_str());
    }
    w.EndObject();
  }

  // Where viewers watch: the page always; HLS, the frame WebSocket and the
  // events WebSocket on the stream's worker (events: null when offline and
  // no worker is live).
  void write_watch(Writer& w, const service::User& user, const std::optional<service::MediaWorker>& worker,
                   bool live) {
    w.StartObject();
    w.Key("page");
    w.String((config.public_url + "/" + user.username).c_str());
    w.Key("hls");
    live && worker ? w.String((worker->media_url + "/live/" + user.username + "/index.m3u8").c_str()) : w.Null();
    w.Key("websocket");
    live && worker ? w.String((ws_base(*worker) + "/watch/" + user.username).c_str()) : w.Null();
    w.Key("whep");
    live && worker ? w.String((worker->media_url + "/whep/" + user.username).c_str()) : w.Null();
    w.Key("events");
    worker ? w.String((ws_base(*worker) + "/events/" + user.username).c_str()) : w.Null();
    w.EndObject();
  }

  std::string stream_json(const service::User& user, const service::Stream& s) {
    const auto worker = streams.worker_of(s);
    return to_json([&](Writer& w) {
      w.StartObject();
      w.Key("stream");
      write_stream(w, s);
      w.Key("ingest");
      write_ingest(w, user, s, worker);
      w.Key("watch");
      write_watch(w, user, worker, true);
      w.EndObject();
    });
  }

  void setup_routes();
};

void ApiServer::Impl::setup_routes() {
  using namespace Rest;
  auto get = [&](const std::string& path, Handler h, std::vector<std::string> p = {}) {
    Routes::Get(router, path, wrap(std::move(h), std::move(p), Queue::kRequests, path));
  };
  auto post = [&](const std::string& path, Handler h, std::vector<std::string> p = {}) {
    Routes::Post(router, path, wrap(std::move(h), std::move(p), Queue::kRequests, path));
  };
  auto post_argon2 = [&](const std::string& path, Handler h) {
    Routes::Post(router, path, wrap(std::move(h), {}, Queue::kArgon2, path));
  };
  auto patch = [&](const std::string& path, Handler h) {
    Routes::Patch(router, path, wrap(std::move(h), {}, Queue::kRequests, path));
  };
  auto del = [&](const std::string& path, Handler h, std::vector<std::string> p = {}) {
    Routes::Delete(router, path, wrap(std::move(h), std::move(p), Queue::kRequests, path));
  };
  auto me_json = [](const service::User& u) { return to_json([&](Writer& w) { write_user(w, u, true); }); };
  auto user_wrapped = [](const service::User& u) {
    return to_json([&](Writer& w) {
      w.StartObject();
      w.Key("user");
      write_user(w, u, true);
      w.EndObject();
    });
  };

  // --- operators' probes (docs/operations.md): /healthz answers from the
  // reactor, so it says the process runs even when every worker is busy;
  // /readyz asks PostgreSQL, on the request workers (a full queue is not
  // ready either).
  Routes::Get(router, "/healthz", [](const Rest::Request& request, Http::ResponseWriter w) {
    add_header(w, "X-Request-Id", request_id_of(request));  // not logged: probes come every few seconds
    w.send(Http::Code::Ok, service::liveness_json(), MIME(Application, Json));
    return Rest::Route::Result::Ok;
  });
  get("/readyz", [this](const Call&) {
    bool ready = false;
    std::string body = service::readiness_json(probe.check(), &ready);
    return Reply{ready ? Http::Code::Ok : Http::Code::Service_Unavailable, body, {}};
  });

  // --- accounts ---
  post_argon2("/api/auth/register", [this, user_wrapped](const Call& c) {
    Body b(c.body);
    auto user = accounts.register_user(b.string("username"), b.string("email"), b.string("password"), c.address);
    return Reply{Http::Code::Created, user_wrapped(user), {}};
  });
  post_argon2("/api/auth/login", [this](const Call& c) {
    Body b(c.body);
    auto session = accounts.login(b.string("username"), b.string("password"), c.address);
    std::string json = to_json([&](Writer& w) {
      w.StartObject();
      w.Key("token");
      w.String(session.token.c_str());
      w.Key("user");
      write_user(w, session.user, true);
      w.EndObject();
    });
    return Reply{Http::Code::Ok, json, {{"Set-Cookie", cookie_header(session.token, accounts.session_ttl_seconds())}}};
  });
  post("/api/auth/logout", [this](const Call& c) {
    user_of(c);
    accounts.logout(*c.token);
    return Reply{Http::Code::No_Content, "", {{"Set-Cookie", cookie_header("", 0)}}};
  });
  get("/api/me", [this, me_json](const Call& c) { return Reply{Http::Code::Ok, me_json(user_of(c)), {}}; });
  patch("/api/me", [this, me_json](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    return Reply{Http::Code::Ok, me_json(accounts.update_profile(user, b.optional_string("display_name"),
                                                                 b.optional_string("bio"))), {}};
  });
  post_argon2("/api/me/password", [this](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    accounts.change_password(user, *c.token, b.string("current_password"), b.string("new_password"));
    return Reply{Http::Code::No_Content, "", {}};
  });
  get("/api/me/credits", [this](const Call& c) {
    auto credits = accounts.credits(user_of(c));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("credits");
                   w.Double(double(credits.balance_seconds) / service::kSecondsPerCredit);
                   w.Key("seconds_remaining");
                   w.Int64(credits.seconds_remaining);
                   w.Key("counting_down");
                   w.Bool(credits.counting_down);
                   w.Key("ledger");
                   w.StartArray();
                   for (const auto& e : credits.ledger) {
                     w.StartObject();
                     w.Key("id");
                     w.Int64(e.id);
                     w.Key("delta_seconds");
                     w.Int64(e.delta_seconds);
                     w.Key("reason");
                     w.String(e.reason.c_str());
                     w.Key("created_at");
                     w.String(e.created_at.c_str());
                     w.EndObject();
                   }
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  });
  get("/api/me/dashboard", [this](const Call& c) {
    auto d = streams.dashboard(user_of(c));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("credits");
                   w.Double(double(d.user.balance_seconds) / service::kSecondsPerCredit);
                   w.Key("seconds_remaining");
                   w.Int64(d.seconds_remaining);
                   w.Key("counting_down");
                   w.Bool(d.counting_down);
                   w.Key("live");
                   w.Bool(d.live.has_value());
                   w.Key("stream");
                   d.live ? write_stream(w, *d.live) : (void)w.Null();
                   // The owner may always see (and copy) the live stream's ingest URLs.
                   w.Key("ingest");
                   d.live ? write_ingest(w, d.user, *d.live, d.worker) : (void)w.Null();
                   w.Key("watch");
                   write_watch(w, d.user, d.worker, d.live.has_value());
                   w.Key("viewers");
                   w.Int(d.viewers);
                   w.Key("comment_count");
                   w.Int64(d.comment_count);
                   w.Key("processing");
                   w.RawValue(d.media_health.c_str(), d.media_health.size(), rapidjson::kObjectType);
                   w.Key("styles");
                   write_style_queue(w, d.style_queue);
                   w.Key("available_styles");
                   w.StartArray();
                   for (const auto& s : d.available_styles) w.String(s.c_str());
                   w.EndArray();
                   w.Key("settings");
                   write_settings(w, d.settings);
                   w.EndObject();
                 }),
                 {}};
  });
  get("/api/me/streams", [this](const Call& c) {
    auto history = streams.history(user_of(c));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("streams");
                   w.StartArray();
                   for (const auto& r : history) {
                     w.StartObject();
                     w.Key("stream");
                     write_stream(w, r.stream);
                     w.Key("duration_seconds");
                     w.Int64(r.duration_seconds);
                     w.Key("credits_used");
                     w.Double(double(r.stream.seconds_billed) / service::kSecondsPerCredit);
                     w.Key("peak_viewers");
                     w.Int(r.stream.peak_viewers);
                     w.Key("average_viewers");
                     w.Double(r.stream.seconds_billed > 0 ? double(r.stream.viewer_seconds) / r.stream.seconds_billed : 0.0);
                     w.Key("unique_viewers");
                     w.Int(r.stream.unique_viewers);
                     w.Key("comments");
                     w.Int64(r.comments);
                     w.Key("styles_applied");
                     w.Int64(r.styles_applied);
                     w.EndObject();
                   }
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  });

  // --- streams ---
  post("/api/streams", [this](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    auto stream = streams.start(user, b.optional_string("title").value_or(""), b.optional_string("style"),
                                b.optional_number("strength"));
    return Reply{Http::Code::Created, stream_json(user, stream), {}};
  });
  post("/api/streams/current/secret", [this](const Call& c) {
    auto user = user_of(c);
    auto stream = streams.rotate_secret(user);
    return Reply{Http::Code::Ok, stream_json(user, stream), {}};
  });
  post("/api/streams/current/stop", [this](const Call& c) {
    auto stream = streams.stop(user_of(c));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("stream");
                   write_stream(w, stream);
                   w.EndObject();
                 }),
                 {}};
  });
  patch("/api/streams/current/settings", [this](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    service::SettingsChange change{b.optional_bool("comments_enabled"), b.optional_bool("styles_enabled"),
                                   b.optional_string("style"), b.optional_number("strength")};
    auto updated = streams.update_settings(user, change);
    return Reply{Http::Code::Ok, to_json([&](Writer& w) { write_settings(w, updated); }), {}};
  });
  auto queue_reply = [](const service::StyleQueue& q) {
    return Reply{Http::Code::Ok, to_json([&](Writer& w) { write_style_queue(w, q); }), {}};
  };
  post("/api/streams/current/styles/skip", [this, queue_reply](const Call& c) { return queue_reply(streams.skip_style(user_of(c))); });
  post("/api/streams/current/styles/clear", [this, queue_reply](const Call& c) { return queue_reply(streams.clear_styles(user_of(c))); });
  del("/api/streams/current/styles/:id", [this, queue_reply](const Call& c) {
    auto user = user_of(c);
    return queue_reply(streams.reject_style(user, std::stoll(c.param("id"))));
  }, {"id"});
  get("/api/streams/:username", [this](const Call& c) {
    auto p = streams.public_stream(c.param("username"));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("username");
                   w.String(p.user.username.c_str());
                   w.Key("display_name");
                   w.String(p.user.display_name.c_str());
                   w.Key("bio");
                   w.String(p.user.bio.c_str());
                   w.Key("live");
                   w.Bool(p.live.has_value());
                   w.Key("last_live_at");
                   p.last_live_at ? w.String(p.last_live_at->c_str()) : w.Null();
                   w.Key("title");
                   p.live ? w.String(p.live->title.c_str()) : w.Null();
                   w.Key("started_at");
                   p.live ? w.String(p.live->started_at.c_str()) : w.Null();
                   w.Key("end_reason");  // offline: why the latest stream ended (null: never live)
                   p.end_reason ? w.String(p.end_reason->c_str()) : w.Null();
                   w.Key("viewers");
                   w.Int(p.live ? p.viewers : 0);
                   w.Key("comments_enabled");
                   w.Bool(p.user.comments_enabled);
                   w.Key("styles_enabled");
                   w.Bool(p.user.styles_enabled);
                   w.Key("style");  // the effective one: a viewer's request, else the streamer's
                   p.live ? w.String(p.live->style.c_str()) : w.Null();
                   w.Key("streamer_style");
                   w.String(p.live ? p.live->streamer_style.c_str() : p.user.default_style.c_str());
                   w.Key("strength");
                   w.Double(p.live ? p.live->strength : p.user.default_strength);
                   w.Key("styles");
                   w.StartArray();
                   for (const auto& s : p.styles) w.String(s.c_str());
                   w.EndArray();
                   w.Key("watch");
                   write_watch(w, p.user, p.worker, p.live.has_value());
                   w.EndObject();
                 }),
                 {}};
  }, {"username"});
  get("/api/streams/:username/comments", [this](const Call& c) {
    const auto before = query_id(c, "before");
    const auto stream = query_id(c, "stream");
    const auto limit = query_id(c, "limit");
    if (limit && *limit > 100) throw service::invalid_field("limit", "'limit' must be 1 to 100");
    auto list = streams.comments(c.param("username"), stream, before, limit ? int(*limit) : 50);
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("comments");
                   w.StartArray();
                   for (const auto& cm : list) write_comment(w, cm);
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  }, {"username"});
  post("/api/streams/:username/comments", [this](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    auto comment = streams.post_comment(user, c.param("username"), b.string("text"));
    return Reply{Http::Code::Created, to_json([&](Writer& w) { write_comment(w, comment); }), {}};
  }, {"username"});
  Routes::Delete(router, "/api/streams/:username/comments/:id", wrap([this](const Call& c) {
    int64_t id = 0;
    try {
      id = std::stoll(c.param("id"));
    } catch (const std::exception&) {
      throw service::Error(service::ErrorKind::kNotFound, "not_found", "no such comment");
    }
    streams.delete_comment(user_of(c), c.param("username"), id);
    return Reply{Http::Code::No_Content, "", {}};
  }, {"username", "id"}, Queue::kRequests, "/api/streams/:username/comments/:id"));
  get("/api/streams/:username/past", [this](const Call& c) {
    auto list = streams.past_streams(c.param("username"));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("streams");
                   w.StartArray();
                   for (const auto& s : list) write_past_stream(w, s);
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  }, {"username"});
  auto write_ban = [](Writer& w, const service::ChatBan& b) {
    w.StartObject();
    w.Key("username");
    w.String(b.username.c_str());
    w.Key("until");
    b.until ? w.String(b.until->c_str()) : w.Null();
    w.EndObject();
  };
  get("/api/streams/current/chat/bans", [this, write_ban](const Call& c) {
    auto list = streams.bans(user_of(c));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("bans");
                   w.StartArray();
                   for (const auto& b : list) write_ban(w, b);
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  });
  post("/api/streams/current/chat/bans", [this, write_ban](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    auto ban = streams.ban(user, b.string("username"), b.optional_integer("duration_seconds", 1, int64_t(1) << 40));
    return Reply{Http::Code::Created, to_json([&](Writer& w) { write_ban(w, ban); }), {}};
  });
  del("/api/streams/current/chat/bans/:username", [this](const Call& c) {
    streams.lift_ban(user_of(c), c.param("username"));
    return Reply{Http::Code::No_Content, "", {}};
  }, {"username"});
  get("/api/channels/live", [this](const Call&) {
    auto list = streams.live_channels();
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("channels");
                   w.StartArray();
                   for (const auto& l : list) {
                     w.StartObject();
                     w.Key("username");
                     w.String(l.username.c_str());
                     w.Key("display_name");
                     w.String(l.display_name.c_str());
                     w.Key("title");
                     w.String(l.title.c_str());
                     w.Key("viewers");
                     w.Int(l.viewers);
                     w.Key("started_at");
                     w.String(l.started_at.c_str());
                     w.Key("thumbnail");
                     l.thumbnail ? w.String(l.thumbnail->c_str()) : w.Null();
                     w.EndObject();
                   }
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  });
  get("/api/streams/:username/styles", [this, queue_reply](const Call& c) { return queue_reply(streams.style_queue(c.param("username"))); }, {"username"});
  post("/api/streams/:username/styles", [this, queue_reply](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    auto queue = streams.request_style(user, c.param("username"), b.string("style"));
    auto r = queue_reply(queue);
    r.code = Http::Code::Created;
    return r;
  }, {"username"});

  // --- payments ---
  get("/api/credits/packs", [this](const Call&) {
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("packs");
                   w.StartArray();
                   for (const auto& p : payments.packs()) {
                     w.StartObject();
                     w.Key("id");
                     w.String(p.id.c_str());
                     w.Key("credits");
                     w.Int(p.credits);
                     w.Key("amount");
                     w.Int64(p.amount);
                     w.Key("currency");
                     w.String(p.currency.c_str());
                     w.EndObject();
                   }
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  });
  post("/api/credits/checkout", [this](const Call& c) {
    auto user = user_of(c);
    Body b(c.body);
    auto session = payments.checkout(user, b.string("pack"));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("checkout_url");
                   w.String(session.url.c_str());
                   w.Key("session_id");
                   w.String(session.id.c_str());
                   w.EndObject();
                 }),
                 {}};
  });
  post("/api/stripe/webhook", [this](const Call& c) {
    service::WebhookOutcome outcome;
    try {
      outcome = payments.handle_webhook(c.stripe_signature, c.body, int64_t(std::time(nullptr)));
    } catch (const service::Error& e) {
      // Before (or without) a valid signature the type is the sender's word: not a label.
      const std::string type = e.code == "invalid_signature" ? "(unverified)" : webhook_type(c.body);
      metrics::webhook_event(type, e.code);
      log::warn("webhook refused", {{"type", type}, {"outcome", e.code}});
      throw;
    }
    const std::string type = webhook_type(c.body);
    metrics::webhook_event(type, outcome.result);
    log::info("webhook", {{"type", type}, {"outcome", outcome.result}});
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("received");
                   w.Bool(true);
                   w.Key("result");
                   w.String(outcome.result.c_str());
                   w.EndObject();
                 }),
                 {}};
  });
  auto write_payment = [](Writer& w, const service::Payment& p) {
    char number[32];
    std::snprintf(number, sizeof number, "MRG-%06lld", (long long)p.id);
    w.StartObject();
    w.Key("id");
    w.Int64(p.id);
    w.Key("number");
    w.String(number);
    w.Key("date");
    w.String(p.paid_at.value_or(p.created_at).c_str());
    w.Key("pack");
    w.String(p.pack_id.c_str());
    w.Key("credits");
    w.Int(p.credits);
    w.Key("amount");
    w.Int64(p.amount);
    w.Key("currency");
    w.String(p.currency.c_str());
    w.Key("status");
    w.String(p.status.c_str());
    w.Key("amount_refunded");
    w.Int64(p.amount_refunded);
    w.Key("credits_refunded_seconds");
    w.Int64(p.refunded_seconds);
    w.Key("refund_shortfall_seconds");
    w.Int64(p.shortfall_seconds);
    w.Key("receipt_url");
    p.receipt_url ? w.String(p.receipt_url->c_str()) : w.Null();
    w.EndObject();
  };
  post("/api/credits/checkout/:session_id/cancel", [this, write_payment](const Call& c) {
    auto p = payments.cancel_checkout(user_of(c), c.param("session_id"));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) { write_payment(w, p); }), {}};
  }, {"session_id"});
  get("/api/me/transactions", [this, write_payment](const Call& c) {
    auto list = payments.transactions(user_of(c));
    return Reply{Http::Code::Ok, to_json([&](Writer& w) {
                   w.StartObject();
                   w.Key("transactions");
                   w.StartArray();
                   for (const auto& p : list) write_payment(w, p);
                   w.EndArray();
                   w.EndObject();
                 }),
                 {}};
  });
  get("/api/me/transactions/:id/receipt", [this, write_payment](const Call& c) {
    auto user = user_of(c);
    int64_t id = 0;
    try {
      id = std::stoll(c.param("id"));
    } catch (const std::exception&) {
      throw service::Error(service::ErrorKind::kNotFound, "not_found", "no such transaction");
    }
    auto p = payments.transaction(user, id);
    const bool html = (c.query.count("format") && c.query.at("format") == "html") ||
                      (!c.query.count("format") && c.accept.find("text/html") != std::string::npos);
    if (!html) return Reply{Http::Code::Ok, to_json([&](Writer& w) { write_payment(w, p); }), {}};
    char number[32];
    std::snprintf(number, sizeof number, "MRG-%06lld", (long long)p.id);
    std::string page =
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Receipt " + std::string(number) +
        "</title><style>body{font-family:sans-serif;max-width:36em;margin:2em auto}td{padding:.3em 1em}"
        "@media print{a{display:none}}</style></head><body><h1>Mirage receipt</h1><table>" +
        "<tr><td>Receipt</td><td>" + number + "</td></tr>" +
        "<tr><td>Date</td><td>" + html_escape(p.paid_at.value_or(p.created_at)) + "</td></tr>" +
        "<tr><td>Account</td><td>" + html_escape(user.username) + "</td></tr>" +
        "<tr><td>Pack</td><td>" + html_escape(p.pack_id) + "</td></tr>" +
        "<tr><td>Credits</td><td>" + std::to_string(p.credits) + " (" + std::to_string(p.credits * 10) +
        " minutes of streaming)</td></tr>" +
        "<tr><td>Amount</td><td>" + html_escape(money(p.amount, p.currency)) + "</td></tr>" +
        (p.amount_refunded > 0 ? "<tr><td>Refunded</td><td>" + html_escape(money(p.amount_refunded, p.currency)) + "</td></tr>" : "") +
        "<tr><td>Status</td><td>" + html_escape(p.status) + "</td></tr></table>" +
        (p.receipt_url ? "<p><a href=\"" + html_escape(*p.receipt_url) + "\">Stripe's receipt</a></p>" : "") +
        "</body></html>";
    Reply r{Http::Code::Ok, page, {}};
    r.html = true;
    return r;
  }, {"id"});

  Routes::NotFound(router, [this](const Rest::Request& request, Http::ResponseWriter w) {
    const std::string method = Http::methodString(request.method());
    metrics::http_request("(unknown)", method, 404, 0);
    const std::string id = request_id_of(request);
    log_request(id, method, "(unknown)", 404, 0, client_of(request));
    add_header(w, "X-Request-Id", id);
    add_cors(w);
    w.send(Http::Code::Not_Found, error_json("not_found", "no such endpoint"), MIME(Application, Json));
    return Rest::Route::Result::Ok;
  });
  if (!config.cors_origin.empty()) {
    router.addCustomHandler([this](const Rest::Request& req, Http::ResponseWriter w) {
      if (req.method() != Http::Method::Options) return Rest::Route::Result::Failure;
      add_cors(w);
      add_header(w, "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS");
      add_header(w, "Access-Control-Allow-Headers", "Content-Type, Authorization, X-Request-Id");
      w.send(Http::Code::No_Content);
      return Rest::Route::Result::Ok;
    });
  }
}

ApiServer::ApiServer(const Config& config, service::Accounts& accounts, service::Streams& streams,
                     service::Payments& payments)
    : impl_(std::make_unique<Impl>(config, accounts, streams, payments)) {}

ApiServer::~ApiServer() { shutdown(); }

void ApiServer::start() {
  const std::string& addr = impl_->config.http_addr;
  auto colon = addr.rfind(':');
  Address address(addr.substr(0, colon), Port(uint16_t(std::stoi(addr.substr(colon + 1)))));
  const Config& config = impl_->config;
  std::string error;
  auto trusted = auth::TrustedProxies::parse(config.trusted_proxies, &error);
  if (!trusted) throw std::runtime_error(error);
  impl_->trusted = *trusted;
  impl_->work = std::make_unique<WorkQueue>(config.workers, size_t(config.max_queued_requests));
  impl_->auth_work = std::make_unique<WorkQueue>(config.argon2_threads, size_t(config.max_queued_requests));
  impl_->endpoint = std::make_unique<Http::Endpoint>(address);
  impl_->endpoint->init(Http::Endpoint::options()
                            .threads(config.http_threads)
                            .flags(Tcp::Options::ReuseAddr)
                            .backlog(1024)
                            .maxRequestSize(kMaxBody + kMaxHead)
                            .headerTimeout(std::chrono::seconds(config.header_timeout_seconds))
                            .bodyTimeout(std::chrono::seconds(config.body_timeout_seconds))
                            .keepaliveTimeout(std::chrono::seconds(config.keepalive_timeout_seconds)));
  impl_->setup_routes();
  GuardSettings guard;
  guard.max_header_bytes = kMaxHead;
  guard.max_body = kMaxBody;
  guard.max_connections_per_address = config.max_connections_per_address;
  guard.max_connections = config.max_connections;
  guard.trusted = *trusted;
  guard.cors_origin = config.cors_origin;
  impl_->guard = std::make_shared<GuardedHandler>(impl_->router.handler(), guard);
  impl_->endpoint->setHandler(impl_->guard);
  impl_->endpoint->serveThreaded();
}

uint16_t ApiServer::port() const { return uint16_t(impl_->endpoint->getPort()); }

std::map<int, uint64_t> ApiServer::refusals() const {
  return impl_->guard ? impl_->guard->refusals() : std::map<int, uint64_t>{};
}

void ApiServer::shutdown() {
  std::unique_ptr<WorkQueue> work, auth_work;
  {
    std::lock_guard<std::mutex> lock(impl_->work_lock);
    work = std::move(impl_->work);
    auth_work = std::move(impl_->auth_work);
  }
  work.reset();  // answers the requests already queued, then joins
  auth_work.reset();
  if (impl_->endpoint) {
    impl_->endpoint->shutdown();
    impl_->endpoint.reset();
  }
}

}  // namespace mirage::http
