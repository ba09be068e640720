// Domain errors. Services throw them; the HTTP layer maps each kind to a
// status code in one place (http/server.cpp) and sends
// {"error":{"code":..., "message":...}}.
#pragma once

#include <stdexcept>
#include <string>

namespace mirage::service {

enum class ErrorKind {
  kInvalid,          // 400
  kUnauthorized,     // 401
  kPaymentRequired,  // 402
  kForbidden,        // 403
  kNotFound,         // 404
  kConflict,         // 409
  kTooLarge,         // 413
  kRateLimited,      // 429, with retry_after seconds
  kBadGateway,       // 502: an outside service (Stripe) failed
  kUnavailable,      // 503: not configured here
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string code, const std::string& message, int retry_after = 0)
      : std::runtime_error(message), kind(kind), code(std::move(code)), retry_after(retry_after) {}
  ErrorKind kind;
  std::string code;
  int retry_after;
};

}  // namespace mirage::service
