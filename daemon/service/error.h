// Domain errors. Services throw them; the HTTP layer maps each kind to a
// status code in one place (http/server.cpp) and sends
// {"error":{"code":..., "message":..., "field":...}} (field: the request's
// JSON key the error is about, when there is one).
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
  std::string field;  // '' when the error is about no single field
};

// An error about one field of the request ("invalid_field", "unknown_style", ...).
inline Error field_error(ErrorKind kind, std::string code, std::string field, const std::string& message,
                         int retry_after = 0) {
  Error e(kind, std::move(code), message, retry_after);
  e.field = std::move(field);
  return e;
}
inline Error invalid_field(std::string field, const std::string& message) {
  return field_error(ErrorKind::kInvalid, "invalid_field", std::move(field), message);
}

}  // namespace mirage::service
