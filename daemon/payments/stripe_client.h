// The slice of Stripe's REST API that Mirage uses: creating Checkout
// Sessions (POST /v1/checkout/sessions, form-encoded). libcurl with a
// timeout; network errors and 5xx answers are retried with the same
// Idempotency-Key, so a retry never creates a second session.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mirage::payments {

struct StripeSettings {
  std::string secret_key;                       // MIRAGE_STRIPE_SECRET_KEY
  std::string api_base = "https://api.stripe.com";  // MIRAGE_STRIPE_API_BASE (tests: a local fake)
  long timeout_ms = 10000;
  int attempts = 3;
};

struct CheckoutSession {
  std::string id;
  std::string url;
};

class StripeError : public std::runtime_error {
 public:
  StripeError(const std::string& message, bool transient)
      : std::runtime_error(message), transient(transient) {}
  bool transient;  // the network or Stripe failed, not the request
};

class StripeClient {
 public:
  explicit StripeClient(StripeSettings settings) : settings_(std::move(settings)) {}
  bool configured() const { return !settings_.secret_key.empty(); }

  // |form| is sent as application/x-www-form-urlencoded. Throws StripeError.
  CheckoutSession create_checkout_session(const std::vector<std::pair<std::string, std::string>>& form,
                                          const std::string& idempotency_key);
  // POST /v1/checkout/sessions/{id}/expire. Stripe answers the session with
  // status "expired"; a session that is not open any more (paid) is refused
  // (StripeError, not transient). Throws StripeError.
  void expire_checkout_session(const std::string& session_id);

 private:
  // POSTs |form| to |path| (retrying network errors and 5xx with the same
  // Idempotency-Key) and returns Stripe's 2xx reply. |what| names the
  // request in errors ("the checkout").
  std::string post_form(const std::string& path, const std::vector<std::pair<std::string, std::string>>& form,
                        const std::string& idempotency_key, const std::string& what);
  const StripeSettings settings_;
};

}  // namespace mirage::payments
