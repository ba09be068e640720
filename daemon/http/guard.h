// The REST port's first line of defence, in front of Pistache's own HTTP
// parser. Pistache 0.0.5 reads any number and size of header lines, reads a
// body past its size limit (answering 413 only at the end and then parsing
// the rest of the body as new requests: 32 MiB cost 40 s of CPU), and puts
// no limit on connections. GuardedHandler sees every byte first and, before
// Pistache parses anything, refuses with a clear status and closes:
//
//   request line + headers over max_header_bytes      431
//   more than max_headers header lines                431
//   Content-Length not a plain decimal number,
//     given twice with different values               400
//   Content-Length over max_body                      413 (nothing of the body is read)
//   Transfer-Encoding (bodies must have a length)     411
//   a peer address over max_connections_per_address,
//     or the server over max_connections              503 with Retry-After
//
// Peers in --trusted-proxies are exempt from the per-address cap (a proxy
// carries many clients). Slow or idle peers are closed by Pistache's header,
// body and keep-alive timeouts, which ApiServer sets.
#pragma once

#include <pistache/http.h>
#include <pistache/router.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/client_address.h"

namespace mirage::http {

struct GuardSettings {
  size_t max_header_bytes = 16 << 10;
  int max_headers = 100;
  size_t max_body = 1 << 20;
  int max_connections_per_address = 64;
  int max_connections = 4096;
  auth::TrustedProxies trusted;
  std::string cors_origin;  // sent with refusals, so browsers can read them
};

class GuardedHandler : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(GuardedHandler)

  GuardedHandler(std::shared_ptr<Pistache::Http::Handler> inner, GuardSettings settings);
  GuardedHandler(const GuardedHandler& other);  // a clone per reactor thread

  void onRequest(const Pistache::Http::Request&, Pistache::Http::ResponseWriter) override {}  // never: |inner_| answers
  void onConnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;
  void onInput(const char* buffer, size_t len, const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;
  void onDisconnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;

  // Requests and connections refused since the start, by status (tests).
  std::map<int, uint64_t> refusals() const;

 private:
  // Shared by every clone: the live connections by address.
  struct Table {
    std::mutex mutex;  // guards the members below
    std::map<std::string, std::vector<std::weak_ptr<Pistache::Tcp::Peer>>> peers;
    uint64_t connections_seen = 0;
    std::map<int, uint64_t> refusals;
  };
  struct PeerState;

  void bind_inner();
  void refuse(const std::shared_ptr<Pistache::Tcp::Peer>& peer, PeerState& state, int status, const char* code,
              const std::string& message);
  // Checks one complete request head; 0 or the status to refuse with.
  int check_head(const std::string& head, size_t* content_length, std::string* message) const;

  std::shared_ptr<Pistache::Http::Handler> inner_;
  bool inner_bound_ = false;
  std::shared_ptr<const GuardSettings> settings_;
  std::shared_ptr<Table> table_;
};

}  // namespace mirage::http
