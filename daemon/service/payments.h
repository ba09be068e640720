// Buying credits with Stripe Checkout. Money must never be lost or counted
// twice: each webhook event is recorded in the same transaction that
// credits (or takes back) the credits, so a replayed or concurrently
// re-delivered event adds nothing, and a payment credits at most once
// whichever events report it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "db/pool.h"
#include "payments/stripe_client.h"
#include "repo/payments.h"
#include "service/model.h"

namespace mirage::service {

struct Pack {
  std::string id;
  int credits = 0;
  int64_t amount = 0;  // smallest currency unit (cents)
  std::string currency;
};

// "id:credits:amount:currency,..." -> packs; nullopt and |error| on a bad spec.
std::optional<std::vector<Pack>> parse_packs(const std::string& spec, std::string* error);

struct PaymentSettings {
  std::vector<Pack> packs;
  std::string success_url;  // {CHECKOUT_SESSION_ID} is filled in by Stripe
  std::string cancel_url;
  std::string webhook_secret;
  int64_t signature_tolerance_seconds = 300;
};

using Payment = repo::PaymentRow;

struct WebhookOutcome {
  std::string event_id, type;
  std::string result;  // applied, duplicate, ignored
};

class Payments {
 public:
  Payments(db::Pool& pool, payments::StripeClient& stripe, PaymentSettings settings)
      : pool_(pool), stripe_(stripe), settings_(std::move(settings)) {}

  const std::vector<Pack>& packs() const { return settings_.packs; }
  // 503 payments_not_configured without a Stripe key; 400 for an unknown
  // pack; 502 when Stripe fails. Returns the session.
  payments::CheckoutSession checkout(const User& user, const std::string& pack_id);
  // Verifies the signature on the raw body first (400 when it fails).
  WebhookOutcome handle_webhook(const std::string& signature_header, const std::string& body, int64_t now_unix);
  std::vector<Payment> transactions(const User& user);
  Payment transaction(const User& user, int64_t id);
  // The user gave up their pending checkout |session_id|: it is expired at
  // Stripe and becomes 'cancelled' (again: the same answer). 404 when it is
  // not theirs, 409 already_paid once paid (or Stripe says it is complete).
  Payment cancel_checkout(const User& user, const std::string& session_id);

 private:
  db::Pool& pool_;
  payments::StripeClient& stripe_;
  const PaymentSettings settings_;
};

}  // namespace mirage::service
