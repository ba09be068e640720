#include "payments.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <sstream>

#include "payments/signature.h"
#include "repo/users.h"
#include "service/error.h"

namespace mirage::service {

namespace {

std::optional<std::string> string_field(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return std::nullopt;
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

int64_t int_field(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return 0;
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
}

// Adds the pack's credits once: only a payment not yet paid is credited.
void credit_once(db::Connection& c, Payment& p) {
  if (p.status != "pending" && p.status != "processing") return;
  p.credited_seconds = int64_t(p.credits) * kSecondsPerCredit;
  repo::add_ledger_entry(c, p.user_id, p.credited_seconds, "purchase: payment " + std::to_string(p.id));
  p.status = "paid";
}

// Takes back the refunded share of the credits, as far as the balance
// allows; what was already spent is recorded as the shortfall.
void apply_refund(db::Connection& c, Payment& p, int64_t amount_refunded) {
  if (p.credited_seconds == 0 || amount_refunded <= p.amount_refunded) return;
  p.amount_refunded = std::min(amount_refunded, p.amount);
  const int64_t owed = p.credited_seconds * p.amount_refunded / p.amount;
  const int64_t delta = owed - (p.refunded_seconds + p.shortfall_seconds);
  if (delta > 0) {
    const int64_t balance = std::stoll(
        c.exec("SELECT balance_seconds FROM users WHERE id = $1 FOR UPDATE", {std::to_string(p.user_id)}).value(0, 0));
    const int64_t take = std::min(delta, balance);
    if (take > 0) repo::add_ledger_entry(c, p.user_id, -take, "refund: payment " + std::to_string(p.id));
    p.refunded_seconds += take;
    p.shortfall_seconds += delta - take;
  }
  p.status = p.amount_refunded >= p.amount ? "refunded" : "partially_refunded";
}

}  // namespace

std::optional<std::vector<Pack>> parse_packs(const std::string& spec, std::string* error) {
  std::vector<Pack> packs;
  std::stringstream in(spec);
  for (std::string item; std::getline(in, item, ',');) {
    std::stringstream fields(item);
    std::vector<std::string> f;
    for (std::string x; std::getline(fields, x, ':');) f.push_back(x);
    Pack p;
    try {
      if (f.size() != 4) throw std::invalid_argument("fields");
      p.id = f[0];
      p.credits = std::stoi(f[1]);
      p.amount = std::stoll(f[2]);
      p.currency = f[3];
    } catch (const std::exception&) {
      *error = "credit pack '" + item + "' must be id:credits:amount:currency, e.g. small:5:500:usd";
      return std::nullopt;
    }
    if (p.id.empty() || p.credits <= 0 || p.amount <= 0 || p.currency.size() != 3) {
      *error = "credit pack '" + item + "' needs an id, credits > 0, an amount > 0 and a 3-letter currency";
      return std::nullopt;
    }
    packs.push_back(p);
  }
  return packs;
}

payments::CheckoutSession Payments::checkout(const User& user, const std::string& pack_id) {
  if (!stripe_.configured())
    throw Error(ErrorKind::kUnavailable, "payments_not_configured", "payments are not configured on this server");
  auto pack = std::find_if(settings_.packs.begin(), settings_.packs.end(),
                           [&](const Pack& p) { return p.id == pack_id; });
  if (pack == settings_.packs.end()) throw Error(ErrorKind::kInvalid, "unknown_pack", "no credit pack '" + pack_id + "'");
  int64_t payment_id;
  {
    auto c = pool_.acquire();
    payment_id = repo::insert_payment(*c, user.id, pack->id, pack->credits, pack->amount, pack->currency);
  }
  const std::string id = std::to_string(payment_id);
  std::vector<std::pair<std::string, std::string>> form = {
      {"mode", "payment"},
      {"line_items[0][quantity]", "1"},
      {"line_items[0][price_data][currency]", pack->currency},
      {"line_items[0][price_data][unit_amount]", std::to_string(pack->amount)},
      {"line_items[0][price_data][product_data][name]", "Mirage " + std::to_string(pack->credits) + " credits"},
      {"client_reference_id", std::to_string(user.id)},
      {"metadata[pack]", pack->id},
      {"metadata[payment_id]", id},
      {"payment_intent_data[metadata][payment_id]", id},
      {"success_url", settings_.success_url},
      {"cancel_url", settings_.cancel_url},
  };
  try {
    // One key per payment row: retries of this request never make a
    // second session.
    payments::CheckoutSession session = stripe_.create_checkout_session(form, "mirage-checkout-" + id);
    auto c = pool_.acquire();
    repo::set_payment_session(*c, payment_id, session.id);
    return session;
  } catch (const payments::StripeError& e) {
    auto c = pool_.acquire();
    repo::set_payment_status(*c, payment_id, "failed");
    throw Error(ErrorKind::kBadGateway, "payment_provider_error", e.what());
  }
}

WebhookOutcome Payments::handle_webhook(const std::string& signature_header, const std::string& body,
                                        int64_t now_unix) {
  if (settings_.webhook_secret.empty())
    throw Error(ErrorKind::kUnavailable, "payments_not_configured", "no webhook secret is configured");
  const auto check = payments::verify_signature(signature_header, body, settings_.webhook_secret, now_unix,
                                                settings_.signature_tolerance_seconds);
  if (check != payments::SignatureCheck::kValid)
    throw Error(ErrorKind::kInvalid, "invalid_signature", payments::to_string(check));
  rapidjson::Document event;
  event.Parse(body.c_str(), body.size());
  auto id = string_field(event, "id");
  auto type = string_field(event, "type");
  if (!id || !type || !event.HasMember("data") || !event["data"].IsObject() || !event["data"].HasMember("object"))
    throw Error(ErrorKind::kInvalid, "invalid_event", "the event has no id, type or data.object");
  const rapidjson::Value& object = event["data"]["object"];
  WebhookOutcome outcome{*id, *type, "ignored"};

  auto c = pool_.acquire();
  db::Transaction tx(*c);
  if (!repo::record_event(*c, *id, *type)) {
    outcome.result = "duplicate";
    return outcome;  // rolled back: nothing to do
  }
  std::optional<Payment> payment;
  if (*type == "checkout.session.completed" || *type == "checkout.session.async_payment_succeeded" ||
      *type == "checkout.session.async_payment_failed") {
    if (auto session = string_field(object, "id")) payment = repo::payment_by_session_for_update(*c, *session);
    if (payment) {
      if (auto intent = string_field(object, "payment_intent")) payment->payment_intent = intent;
      if (*type == "checkout.session.async_payment_failed") {
        if (payment->status == "pending" || payment->status == "processing") payment->status = "failed";
      } else if (*type == "checkout.session.async_payment_succeeded" ||
                 string_field(object, "payment_status") == std::optional<std::string>("paid")) {
        credit_once(*c, *payment);
      } else if (payment->status == "pending") {
        payment->status = "processing";  // e.g. a bank debit still on its way
      }
    }
  } else if (*type == "charge.succeeded" || *type == "charge.refunded") {
    if (auto intent = string_field(object, "payment_intent")) payment = repo::payment_by_intent_for_update(*c, *intent);
    if (payment) {
      if (auto url = string_field(object, "receipt_url")) payment->receipt_url = url;
      if (*type == "charge.refunded") apply_refund(*c, *payment, int_field(object, "amount_refunded"));
    }
  }
  if (payment) {
    repo::update_payment(*c, *payment);
    outcome.result = "applied";
  }
  tx.commit();
  return outcome;
}

std::vector<Payment> Payments::transactions(const User& user) {
  auto c = pool_.acquire();
  return repo::payments_of(*c, user.id);
}

Payment Payments::transaction(const User& user, int64_t id) {
  auto c = pool_.acquire();
  auto p = repo::payment_of(*c, user.id, id);
  if (!p) throw Error(ErrorKind::kNotFound, "not_found", "no such transaction");
  return *p;
}

}  // namespace mirage::service
