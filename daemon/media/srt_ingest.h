// SRT ingest: one listener socket (default port 9000) for every stream, on
// libsrt directly. (srtsrc binds one port per element and serves one caller,
// so a shared port for many streams needs the library underneath it.)
//
// Callers name their stream with the SRT Access Control convention
// (https://github.com/Haivision/srt/blob/master/docs/features/access-control.md):
//
//   streamid = #!::r=<username>,m=publish,s=<ingest secret>
//
// The listen callback checks it during the handshake, before any payload
// is accepted: a missing or wrong secret is rejected with 1401/1403, a mode
// other than publish with 1405, a second publisher with 1409. Accepted
// connections deliver their bytes (MPEG-TS) to Hooks::data on the listener's
// own thread. UDP datagrams that are not SRT never get past libsrt.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "media/srt_streamid.h"

struct sockaddr;

namespace mirage::media {

class SrtIngest {
 public:
  struct Hooks {
    // During the handshake (a libsrt thread): 0 admits |username|,
    // otherwise an SRT_REJX_* code. The handshake may still fail after it
    // (a wrong passphrase): |alive| says whether this caller still is.
    std::function<int(const std::string& username, const std::string& secret, std::function<bool()> alive)> admit;
    std::function<void(const std::string& username)> connected;
    std::function<void(const std::string& username, const uint8_t* data, size_t size)> data;
    std::function<void(const std::string& username)> closed;
  };

  explicit SrtIngest(Hooks hooks);
  ~SrtIngest();  // closes every connection and the listener
  // Listens on "address:port" (port 0 picks a free one). A non-empty
  // |passphrase| makes every connection encrypted with it: callers without
  // it (or with another) are refused by libsrt.
  bool start(const std::string& addr, const std::string& passphrase, std::string* error);
  uint16_t port() const { return port_; }
  // Closes |username|'s connection, if any (the stream ended).
  void disconnect(const std::string& username);
  // Handshakes rejected since the start (wrong secret, bad streamid, ...).
  uint64_t rejected() const { return rejected_; }

 private:
  static int on_listen(void* self, int socket, int hs_version, const ::sockaddr* peer, const char* streamid);
  void run();
  void close_connection(int socket);

  const Hooks hooks_;
  int listener_ = -1;
  int epoll_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rejected_{0};
  std::thread thread_;
  std::mutex mutex_;                        // guards the maps
  std::map<int, std::string> connections_;  // socket -> username
};

}  // namespace mirage::media
