// The REST API over Pistache. All routes are declared in setup_routes();
// handlers parse with http/json and call the services. Blocking work (libpq,
// Argon2) runs on a pool of worker threads, never on Pistache's reactor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "service/accounts.h"
#include "service/payments.h"
#include "service/streams.h"

namespace mirage::http {

class ApiServer {
 public:
  ApiServer(const Config& config, service::Accounts& accounts, service::Streams& streams,
            service::Payments& payments);
  ~ApiServer();
  // Binds (port 0 picks a free one) and serves on background threads.
  void start();
  uint16_t port() const;
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mirage::http
