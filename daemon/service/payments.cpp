#include "payments.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <sstream>

#include "json_input.h"
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

// Takes back the credits that refunds and disputes reverse, as far as the
// balance allows (what was already spent is the shortfall), and sets the
// status. Nothing is taken before the payment is credited: a refund that
// came first is remembered in amount_refunded and settled at the credit.
void settle(db::Connection& c, Payment& p) {
  if (p.credited_seconds == 0) return;
  const int64_t reversed = std::min(std::max(p.amount_refunded, p.amount_disputed), p.amount);
  const int64_t owed = p.credited_seconds * reversed / p.amount;
  const int64_t delta = owed - (p.refunded_seconds + p.shortfall_seconds);
  if (delta > 0) {
    const int64_t balance = std::stoll(
        c.exec("SELECT balance_seconds FROM users WHERE id = $1 FOR UPDATE", {std::to_string(p.user_id)}).value(0, 0));
    const int64_t take = std::min(delta, balance);
    if (take > 0)
      repo::add_ledger_entry(c, p.user_id, -take,
                             std::string(p.amount_disputed > 0 ? "dispute" : "refund") + ": payment " + std::to_string(p.id));
    p.refunded_seconds += take;
    p.shortfall_seconds += delta - take;
  }
  if (p.amount_disputed > 0) p.status = "disputed";
  else if (p.amount_refunded >= p.amount) p.status = "refunded";
  else if (p.amount_refunded > 0) p.status = "partially_refunded";
  else p.status = "paid";
}

// Adds the pack's credits once: only a payment not yet paid is credited.
void credit_once(db::Connection& c, Payment& p) {
  if (p.status != "pending" && p.status != "processing") return;
  p.credited_seconds = int64_t(p.credits) * kSecondsPerCredit;
  repo::add_ledger_entry(c, p.user_id, p.credited_seconds, "purchase: payment " + std::to_string(p.id));
  p.status = "paid";
  settle(c, p);
}

bool is_session_event(const std::string& type) { return type.rfind("checkout.session.", 0) == 0; }

// The events Mirage acts on; every other type is acknowledged and ignored.
bool handled(const std::string& type) {
  return type == "checkout.session.completed" || type == "checkout.session.async_payment_succeeded" ||
         type == "checkout.session.async_payment_failed" || type == "checkout.session.expired" ||
         type == "charge.succeeded" || type == "charge.refunded" || type == "charge.dispute.created";
}

// What an event's object says about the payment it belongs to.
struct Keys {
  std::optional<int64_t> payment_id;        // our metadata.payment_id
  std::optional<std::string> intent, session;
};

Keys keys_of(const std::string& type, const rapidjson::Value& object) {
  Keys k;
  k.intent = string_field(object, "payment_intent");
  if (is_session_event(type)) k.session = string_field(object, "id");
  if (object.IsObject() && object.HasMember("metadata")) {
    auto id = string_field(object["metadata"], "payment_id");
    if (id && !id->empty() && id->size() <= 18 && id->find_first_not_of("0123456789") == std::string::npos)
      k.payment_id = std::stoll(*id);
  }
  return k;
}

// Locked for the rest of the transaction.
std::optional<Payment> find_payment(db::Connection& c, const Keys& k) {
  if (k.session)
    if (auto p = repo::payment_by_session_for_update(c, *k.session)) return p;
  if (k.payment_id)
    if (auto p = repo::payment_by_id_for_update(c, *k.payment_id)) return p;
  if (k.intent)
    if (auto p = repo::payment_by_intent_for_update(c, *k.intent)) return p;
  return std::nullopt;
}

void apply_event(db::Connection& c, const std::string& type, const rapidjson::Value& object, Payment& p) {
  const Keys k = keys_of(type, object);
  if (!p.payment_intent && k.intent) p.payment_intent = k.intent;
  if (!p.session_id && k.session) p.session_id = k.session;  // saved now if a crash kept us from it
  if (is_session_event(type)) {
    if (type == "checkout.session.async_payment_failed") {
      if (p.status == "pending" || p.status == "processing") p.status = "failed";
    } else if (type == "checkout.session.expired") {
      if (p.status == "pending") p.status = "expired";
    } else if (type == "checkout.session.async_payment_succeeded" ||
               string_field(object, "payment_status") == std::optional<std::string>("paid")) {
      credit_once(c, p);
    } else if (p.status == "pending") {
      p.status = "processing";  // e.g. a bank debit still on its way
    }
  } else if (type == "charge.succeeded" || type == "charge.refunded") {
    if (auto url = string_field(object, "receipt_url")) p.receipt_url = url;
    if (type == "charge.refunded") {
      p.amount_refunded = std::max(p.amount_refunded, std::min(int_field(object, "amount_refunded"), p.amount));
      settle(c, p);
    }
  } else if (type == "charge.dispute.created") {
    p.amount_disputed = std::max(p.amount_disputed, std::min(int_field(object, "amount"), p.amount));
    settle(c, p);
  }
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
  if (pack == settings_.packs.end()) throw field_error(ErrorKind::kInvalid, "unknown_pack", "pack", "no credit pack '" + pack_id + "'");
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
  if (auto problem = parse_untrusted_json(body, &event, kMaxStripeDepth, "the event"))
    throw Error(ErrorKind::kInvalid, "invalid_event", *problem);
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
  if (!handled(*type)) {
    tx.commit();
    return outcome;
  }
  const Keys keys = keys_of(*type, object);
  if (keys.intent) repo::lock_payment_intent(*c, *keys.intent);
  std::optional<Payment> payment = find_payment(*c, keys);
  if (!payment) {
    // Not ours yet (or never): kept, not recorded as done, and answered
    // non-2xx so that Stripe delivers it again. It is also applied as soon
    // as its payment becomes known, whichever comes first.
    c->exec("DELETE FROM stripe_events WHERE id = $1", {*id});  // not done: a redelivery is no duplicate
    repo::keep_pending_event(*c, *id, *type, keys.payment_id, keys.intent, keys.session, body);
    tx.commit();
    throw Error(ErrorKind::kConflict, "unmatched_event",
                "no payment matches this event yet; it is kept, and applied once its payment is known");
  }
  apply_event(*c, *type, object, *payment);
  repo::drop_pending_event(*c, *id);
  // Events that came before this payment could be matched (a refund before
  // the completion that told us its PaymentIntent): applied now, once.
  if (payment->payment_intent && payment->payment_intent != keys.intent)
    repo::lock_payment_intent(*c, *payment->payment_intent);
  for (const auto& pending : repo::pending_events_for(*c, *payment)) {
    rapidjson::Document kept;
    if (parse_untrusted_json(pending.body, &kept, kMaxStripeDepth, "the event") || !kept.IsObject() ||
        !kept.HasMember("data") || !kept["data"].IsObject() || !kept["data"].HasMember("object"))
      continue;
    if (repo::record_event(*c, pending.id, pending.type)) apply_event(*c, pending.type, kept["data"]["object"], *payment);
    repo::drop_pending_event(*c, pending.id);
  }
  repo::update_payment(*c, *payment);
  outcome.result = "applied";
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
