// SQL for payments and Stripe events.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connection.h"

namespace mirage::repo {

struct PaymentRow {
  int64_t id = 0, user_id = 0;
  std::string pack_id;
  int credits = 0;
  int64_t amount = 0;
  std::string currency, status, created_at;
  std::optional<std::string> session_id, payment_intent, receipt_url, paid_at;
  int64_t credited_seconds = 0, refunded_seconds = 0, shortfall_seconds = 0, amount_refunded = 0;
  int64_t amount_disputed = 0;
};

// A Stripe event kept until its payment is known.
struct PendingEvent {
  std::string id, type, body;
};

int64_t insert_payment(db::Connection& c, int64_t user_id, const std::string& pack_id, int credits, int64_t amount,
                       const std::string& currency);
void set_payment_session(db::Connection& c, int64_t payment_id, const std::string& session_id);
void set_payment_status(db::Connection& c, int64_t payment_id, const std::string& status);
std::vector<PaymentRow> payments_of(db::Connection& c, int64_t user_id);
std::optional<PaymentRow> payment_of(db::Connection& c, int64_t user_id, int64_t payment_id);
std::optional<PaymentRow> payment_of_session(db::Connection& c, int64_t user_id, const std::string& session_id);
// pending -> cancelled; false when it was no longer pending.
bool cancel_payment(db::Connection& c, int64_t payment_id);
// Locked for the rest of the transaction.
std::optional<PaymentRow> payment_by_session_for_update(db::Connection& c, const std::string& session_id);
std::optional<PaymentRow> payment_by_intent_for_update(db::Connection& c, const std::string& payment_intent);
std::optional<PaymentRow> payment_by_id_for_update(db::Connection& c, int64_t payment_id);
// Serialises every transaction about one PaymentIntent until commit: a
// refund that comes while the checkout's completion is being applied waits
// for it, then sees the payment the completion just matched.
void lock_payment_intent(db::Connection& c, const std::string& payment_intent);
// Keeps (or counts one more delivery of) an event no payment matched.
void keep_pending_event(db::Connection& c, const std::string& id, const std::string& type,
                        const std::optional<int64_t>& payment_id, const std::optional<std::string>& payment_intent,
                        const std::optional<std::string>& session_id, const std::string& body);
// The kept events that belong to |p|, oldest first.
std::vector<PendingEvent> pending_events_for(db::Connection& c, const PaymentRow& p);
void drop_pending_event(db::Connection& c, const std::string& id);
// Records the event id; false when it was recorded before (a replay).
bool record_event(db::Connection& c, const std::string& event_id, const std::string& type);
void update_payment(db::Connection& c, const PaymentRow& p);

}  // namespace mirage::repo
