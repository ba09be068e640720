#include "guard.h"

#include <pistache/peer.h>
#include <pistache/transport.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "http/json.h"
#include "log/log.h"

namespace mirage::http {

namespace {

using namespace Pistache;

// Pistache gives a handler its reactor thread's transport through a private
// member (Tcp::Handler::associateTransport, for its friend Transport). The
// inner handler that parses and routes needs the same transport, so this
// takes that member's address through an explicit instantiation, where
// access checks do not apply ([temp.spec.general]/6). Nothing else of
// Pistache's internals is touched.
using AssociateFn = void (Tcp::Handler::*)(Tcp::Transport*);
struct AssociateTag {
  friend AssociateFn associate_fn(AssociateTag);
};
template <AssociateFn F>
struct Expose {
  friend AssociateFn associate_fn(AssociateTag) { return F; }
};
template struct Expose<&Tcp::Handler::associateTransport>;

const char* reason_of(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
  }
  return "Error";
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

// Where a peer is in its current request.
struct GuardedHandler::PeerState {
  std::string head;             // bytes of the request head so far
  bool in_body = false;
  size_t body_left = 0;         // bytes of the current body still to come
  bool refused = false;         // answered and half-closed: input is dropped
};

GuardedHandler::GuardedHandler(std::shared_ptr<Http::Handler> inner, GuardSettings settings)
    : inner_(std::move(inner)),
      settings_(std::make_shared<const GuardSettings>(std::move(settings))),
      table_(std::make_shared<Table>()) {}

GuardedHandler::GuardedHandler(const GuardedHandler& other)
    : Http::Handler(other), settings_(other.settings_), table_(other.table_) {
  inner_ = std::static_pointer_cast<Http::Handler>(other.inner_->clone());
}

void GuardedHandler::bind_inner() {
  if (inner_bound_) return;
  // Set here, on the reactor thread, once Endpoint has configured us.
  inner_->setMaxRequestSize(getMaxRequestSize());
  inner_->setMaxResponseSize(getMaxResponseSize());
  (inner_.get()->*associate_fn(AssociateTag{}))(transport());
  inner_bound_ = true;
}

void GuardedHandler::onConnection(const std::shared_ptr<Tcp::Peer>& peer) {
  bind_inner();
  static_cast<Tcp::Handler&>(*inner_).onConnection(peer);  // its parser, which Pistache's timers read
  auto state = std::make_shared<PeerState>();
  peer->putData("mirage.guard", state);
  const std::string address = peer->address().host();
  const bool proxy = settings_->trusted.contains(address);
  bool over = false;
  std::string message;
  {
    std::lock_guard<std::mutex> lock(table_->mutex);
    // Now and then, forget addresses whose peers are all gone.
    if (++table_->connections_seen % 1024 == 0) {
      for (auto it = table_->peers.begin(); it != table_->peers.end();) {
        auto& list = it->second;
        list.erase(std::remove_if(list.begin(), list.end(), [](const auto& w) { return w.expired(); }), list.end());
        it = list.empty() ? table_->peers.erase(it) : std::next(it);
      }
    }
    auto& mine = table_->peers[address];
    mine.erase(std::remove_if(mine.begin(), mine.end(), [](const auto& w) { return w.expired(); }), mine.end());
    size_t total = 0;
    for (const auto& [a, list] : table_->peers) total += list.size();  // expired ones count until swept: a cap, not a count
    if (total >= size_t(settings_->max_connections)) {
      over = true;
      message = "the server has too many connections; try again shortly";
    } else if (!proxy && mine.size() >= size_t(settings_->max_connections_per_address)) {
      over = true;
      message = "too many connections from this address; close some and try again";
    } else {
      mine.push_back(peer);
    }
  }
  if (over) refuse(peer, *state, 503, "too_many_connections", message);
}

void GuardedHandler::onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) {
  static_cast<Tcp::Handler&>(*inner_).onDisconnection(peer);
  std::lock_guard<std::mutex> lock(table_->mutex);
  auto it = table_->peers.find(peer->address().host());
  if (it == table_->peers.end()) return;
  auto& list = it->second;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const auto& w) {
                              auto p = w.lock();
                              return !p || p == peer;
                            }),
             list.end());
  if (list.empty()) table_->peers.erase(it);
}

void GuardedHandler::onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) {
  auto state = std::static_pointer_cast<PeerState>(peer->tryGetData("mirage.guard"));
  if (!state || state->refused) return;
  Tcp::Handler& inner = *inner_;
  while (len > 0) {
    if (state->in_body) {
      const size_t n = std::min(len, state->body_left);
      inner.onInput(buffer, n, peer);
      buffer += n;
      len -= n;
      state->body_left -= n;
      if (state->body_left == 0) state->in_body = false;
      continue;
    }
    // Collect the head up to the blank line; the limit is checked as bytes come.
    const size_t before = state->head.size();
    state->head.append(buffer, std::min(len, settings_->max_header_bytes + 4 - std::min(before, settings_->max_header_bytes + 4)));
    const size_t end = state->head.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
    if (end == std::string::npos) {
      if (state->head.size() > settings_->max_header_bytes)
        return refuse(peer, *state, 431, "headers_too_large",
                      "the request line and headers must be at most " +
                          std::to_string(settings_->max_header_bytes / 1024) + " KiB");
      return;  // all of |buffer| is in the head so far
    }
    const size_t head_size = end + 4;
    if (head_size > settings_->max_header_bytes)
      return refuse(peer, *state, 431, "headers_too_large",
                    "the request line and headers must be at most " + std::to_string(settings_->max_header_bytes / 1024) +
                        " KiB");
    const size_t used = head_size - before;  // bytes of |buffer| that completed the head
    state->head.resize(head_size);
    size_t content_length = 0;
    std::string message;
    if (int status = check_head(state->head, &content_length, &message))
      return refuse(peer, *state, status, status == 413 ? "body_too_large" : "bad_request", message);
    inner.onInput(state->head.data(), state->head.size(), peer);
    state->head.clear();
    buffer += used;
    len -= used;
    state->in_body = content_length > 0;
    state->body_left = content_length;
  }
}

int GuardedHandler::check_head(const std::string& head, size_t* content_length, std::string* message) const {
  int lines = 0;
  bool have_length = false;
  size_t pos = head.find("\r\n") + 2;  // past the request line
  while (pos < head.size()) {
    const size_t eol = head.find("\r\n", pos);
    if (eol == std::string::npos || eol == pos) break;
    if (++lines > settings_->max_headers) {
      *message = "a request may carry at most " + std::to_string(settings_->max_headers) + " header lines";
      return 431;
    }
    const std::string line = head.substr(pos, eol - pos);
    pos = eol + 2;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;  // Pistache answers 400 for it
    const std::string name = lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t") + 1);
    if (name == "transfer-encoding") {
      *message = "bodies must be sent with a Content-Length, not a Transfer-Encoding";
      return 411;
    }
    if (name != "content-length") continue;
    // Plain digits only: no sign, no spaces inside, at most 1 GB written.
    if (value.empty() || value.size() > 10 || value.find_first_not_of("0123456789") != std::string::npos) {
      *message = "Content-Length must be a whole number of bytes, not '" + value.substr(0, 32) + "'";
      return 400;
    }
    const size_t n = std::stoull(value);
    if (have_length && n != *content_length) {
      *message = "Content-Length is given twice with different values";
      return 400;
    }
    have_length = true;
    *content_length = n;
  }
  if (*content_length > settings_->max_body) {
    *message = "the body must be at most " + std::to_string(settings_->max_body >> 10) + " KiB";
    return 413;
  }
  return 0;
}

void GuardedHandler::refuse(const std::shared_ptr<Tcp::Peer>& peer, PeerState& state, int status, const char* code,
                            const std::string& message) {
  state.refused = true;
  state.head.clear();
  state.head.shrink_to_fit();
  {
    std::lock_guard<std::mutex> lock(table_->mutex);
    table_->refusals[status]++;
  }
  const std::string body = error_json(code, message);
  const std::string request_id = log::new_request_id();
  log::warn("request refused", {{"request_id", request_id}, {"status", status}, {"code", code},
                                {"client", peer->address().host()}});
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) +
                         "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nX-Request-Id: " + request_id + "\r\n";
  if (status == 503) response += "Retry-After: 1\r\n";
  if (!settings_->cors_origin.empty())
    response += "Access-Control-Allow-Origin: " + settings_->cors_origin + "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
  response += "\r\n" + body;
  // Written here, on the peer's reactor thread, where nothing else of this
  // peer is queued (the refused request never reached a handler). Then the
  // write side is closed: the client reads the answer and sees the end;
  // whatever it still sends is read and dropped until it closes, or until
  // Pistache's header timeout closes the peer.
  ::send(peer->fd(), response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(peer->fd(), SHUT_WR);
}

std::map<int, uint64_t> GuardedHandler::refusals() const {
  std::lock_guard<std::mutex> lock(table_->mutex);
  return table_->refusals;
}

}  // namespace mirage::http
