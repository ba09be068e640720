#include "srt_ingest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <srt/access_control.h>
#include <srt/srt.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "log/log.h"

namespace mirage::media {

SrtIngest::SrtIngest(Hooks hooks) : hooks_(std::move(hooks)) {}

SrtIngest::~SrtIngest() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [socket, user] : connections_) srt_close(socket);
  connections_.clear();
  if (listener_ != SRT_INVALID_SOCK) srt_close(listener_);
  if (epoll_ >= 0) srt_epoll_release(epoll_);
}

bool SrtIngest::start(const std::string& addr, const std::string& passphrase, std::string* error) {
  static std::once_flag once;
  std::call_once(once, [] {
    srt_startup();  // never cleaned up: other instances may live on
    // libsrt's own messages (errors only, its default) into the log.
    srt_setloghandler(nullptr, [](void*, int level, const char*, int, const char* area, const char* message) {
      std::string text = message ? message : "";
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      log::write(level <= LOG_ERR ? log::Level::kWarn : log::Level::kDebug, text,
                 {{"source", "srt"}, {"area", area ? area : "-"}});
    });
  });
  const auto colon = addr.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    *error = "bad SRT listen address '" + addr + "' (want a.b.c.d:port)";
    return false;
  }
  sa.sin_port = htons(uint16_t(std::stoi(addr.substr(colon + 1))));
  listener_ = srt_create_socket();
  const int no = 0;
  srt_setsockflag(listener_, SRTO_RCVSYN, &no, sizeof no);  // accept without blocking
  if (!passphrase.empty() &&
      srt_setsockflag(listener_, SRTO_PASSPHRASE, passphrase.data(), int(passphrase.size())) == SRT_ERROR) {
    *error = std::string("SRT passphrase refused: ") + srt_getlasterror_str();
    return false;
  }
  if (srt_bind(listener_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == SRT_ERROR ||
      srt_listen_callback(listener_, &SrtIngest::on_listen, this) == SRT_ERROR ||
      srt_listen(listener_, 16) == SRT_ERROR) {
    *error = "SRT cannot listen on " + addr + ": " + srt_getlasterror_str();
    return false;
  }
  int len = sizeof sa;
  srt_getsockname(listener_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
  epoll_ = srt_epoll_create();
  const int events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
  srt_epoll_add_usock(epoll_, listener_, &events);
  thread_ = std::thread([this] { run(); });
  return true;
}

// The handshake: runs on a libsrt thread before the connection exists.
int SrtIngest::on_listen(void* opaque, int socket, int, const sockaddr*, const char* streamid) {
  auto* self = static_cast<SrtIngest*>(opaque);
  auto reject = [&](int code, const char* why) {
    log::warn("SRT caller rejected", {{"why", why}});
    srt_setrejectreason(socket, code);
    ++self->rejected_;
    return -1;
  };
  const auto id = parse_srt_streamid(streamid ? streamid : "");
  if (!id || id->resource.empty()) return reject(SRT_REJX_BAD_REQUEST, "streamid is not #!::r=<username>,m=publish,s=<secret>");
  if (!id->mode.empty() && id->mode != "publish") return reject(SRT_REJX_BAD_MODE, "mode is not publish");
  if (id->secret.empty()) return reject(SRT_REJX_UNAUTHORIZED, "no secret");
  const int verdict = self->hooks_.admit(id->resource, id->secret, [socket] {
    const SRT_SOCKSTATUS state = srt_getsockstate(socket);
    return state != SRTS_BROKEN && state != SRTS_CLOSING && state != SRTS_CLOSED && state != SRTS_NONEXIST;
  });
  if (verdict != 0) return reject(verdict, verdict == SRT_REJX_CONFLICT ? "already ingesting" : "wrong secret or not live");
  return 0;
}

void SrtIngest::disconnect(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = connections_.begin(); it != connections_.end(); ++it)
    if (it->second == username) {
      srt_epoll_remove_usock(epoll_, it->first);
      srt_close(it->first);
      connections_.erase(it);
      return;
    }
}

void SrtIngest::close_connection(int socket) {
  std::string user;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = connections_.find(socket);
    if (it == connections_.end()) return;  // disconnect() got there first
    user = it->second;
    connections_.erase(it);
    srt_epoll_remove_usock(epoll_, socket);
    srt_close(socket);
  }
  hooks_.closed(user);
}

void SrtIngest::run() {
  std::vector<SRT_EPOLL_EVENT> events(64);
  std::vector<char> message(1500);  // one SRT live-mode payload (1316 for MPEG-TS)
  std::vector<uint8_t> batch;
  batch.reserve(64 << 10);
  while (!stop_) {
    const int n = srt_epoll_uwait(epoll_, events.data(), int(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      const int socket = events[i].fd;
      if (socket == listener_) {
        sockaddr_storage peer{};
        int len = sizeof peer;
        const int conn = srt_accept(listener_, reinterpret_cast<sockaddr*>(&peer), &len);
        if (conn == SRT_INVALID_SOCK) continue;
        char streamid[512] = {};
        int idlen = sizeof streamid;
        srt_getsockflag(conn, SRTO_STREAMID, streamid, &idlen);
        const auto id = parse_srt_streamid(std::string(streamid, size_t(idlen)));
        const int no = 0;
        srt_setsockflag(conn, SRTO_RCVSYN, &no, sizeof no);
        {
          std::lock_guard<std::mutex> lock(mutex_);
          connections_[conn] = id ? id->resource : "";
          const int flags = SRT_EPOLL_IN | SRT_EPOLL_ERR;
          srt_epoll_add_usock(epoll_, conn, &flags);
        }
        hooks_.connected(id ? id->resource : "");
        continue;
      }
      std::string user;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = connections_.find(socket);
        if (it == connections_.end()) continue;
        user = it->second;
      }
      bool broken = (events[i].events & SRT_EPOLL_ERR) != 0;
      batch.clear();
      while (!broken) {
        const int got = srt_recvmsg(socket, message.data(), int(message.size()));
        if (got > 0) {
          batch.insert(batch.end(), message.begin(), message.begin() + got);
          if (batch.size() >= (64 << 10)) {
            hooks_.data(user, batch.data(), batch.size());
            batch.clear();
          }
          continue;
        }
        if (got == SRT_ERROR && srt_getlasterror(nullptr) == SRT_EASYNCRCV) break;  // drained
        broken = true;
      }
      if (!batch.empty()) hooks_.data(user, batch.data(), batch.size());
      if (broken) close_connection(socket);
    }
  }
}

}  // namespace mirage::media
