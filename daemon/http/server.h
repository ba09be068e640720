// The REST API over Pistache. All routes are declared in setup_routes();
// handlers parse with http/json and call the services. Blocking work (libpq,
// Argon2) runs on a pool of worker threads, never on Pistache's reactor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "config.h"
#include "service/accounts.h"
#include "service/payments.h"
#include "service/streams.h"

namespace mirage::http {

// The SRT ingest URL handed to publishers (works verbatim in gst-launch's
// srtsink, ffmpeg and OBS).
std::string srt_ingest_url(const std::string& base, const std::string& username, const std::string& secret,
                           const std::string& passphrase);

class ApiServer {
 public:
  ApiServer(const Config& config, service::Accounts& accounts, service::Streams& streams,
            service::Payments& payments);
  ~ApiServer();
  // Binds (port 0 picks a free one) and serves on background threads.
  void start();
  uint16_t port() const;
  // Requests and connections the guard refused, by status (tests).
  std::map<int, uint64_t> refusals() const;
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mirage::http
