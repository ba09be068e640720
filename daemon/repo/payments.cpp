#include "payments.h"

#include "rows.h"

namespace mirage::repo {

namespace {

#define MIRAGE_PAYMENT_COLUMNS                                                                          \
  "id, user_id, pack_id, credits, amount, currency, status, " MIRAGE_TIME("created_at")                \
  ", stripe_session_id, payment_intent, receipt_url, " MIRAGE_TIME("paid_at")                          \
  ", credited_seconds, refunded_seconds, shortfall_seconds, amount_refunded, amount_disputed"

PaymentRow read_payment(const db::Result& r, int i) {
  PaymentRow p;
  p.id = to_i64(r.value(i, 0));
  p.user_id = to_i64(r.value(i, 1));
  p.pack_id = r.value(i, 2);
  p.credits = int(to_i64(r.value(i, 3)));
  p.amount = to_i64(r.value(i, 4));
  p.currency = r.value(i, 5);
  p.status = r.value(i, 6);
  p.created_at = r.value(i, 7);
  p.session_id = r.get(i, 8);
  p.payment_intent = r.get(i, 9);
  p.receipt_url = r.get(i, 10);
  p.paid_at = r.get(i, 11);
  p.credited_seconds = to_i64(r.value(i, 12));
  p.refunded_seconds = to_i64(r.value(i, 13));
  p.shortfall_seconds = to_i64(r.value(i, 14));
  p.amount_refunded = to_i64(r.value(i, 15));
  p.amount_disputed = to_i64(r.value(i, 16));
  return p;
}

std::optional<PaymentRow> one(const db::Result& r) {
  if (r.rows() == 0) return std::nullopt;
  return read_payment(r, 0);
}

}  // namespace

int64_t insert_payment(db::Connection& c, int64_t user_id, const std::string& pack_id, int credits, int64_t amount,
                       const std::string& currency) {
  return to_i64(c.exec("INSERT INTO payments (user_id, pack_id, credits, amount, currency) VALUES ($1, $2, $3, $4, $5) "
                       "RETURNING id",
                       {std::to_string(user_id), pack_id, std::to_string(credits), std::to_string(amount), currency})
                    .value(0, 0));
}

void set_payment_session(db::Connection& c, int64_t payment_id, const std::string& session_id) {
  c.exec("UPDATE payments SET stripe_session_id = $2 WHERE id = $1", {std::to_string(payment_id), session_id});
}

void set_payment_status(db::Connection& c, int64_t payment_id, const std::string& status) {
  c.exec("UPDATE payments SET status = $2 WHERE id = $1", {std::to_string(payment_id), status});
}

std::vector<PaymentRow> payments_of(db::Connection& c, int64_t user_id) {
  db::Result r = c.exec("SELECT " MIRAGE_PAYMENT_COLUMNS " FROM payments WHERE user_id = $1 ORDER BY id DESC",
                        {std::to_string(user_id)});
  std::vector<PaymentRow> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_payment(r, i));
  return out;
}

std::optional<PaymentRow> payment_of(db::Connection& c, int64_t user_id, int64_t payment_id) {
  return one(c.exec("SELECT " MIRAGE_PAYMENT_COLUMNS " FROM payments WHERE user_id = $1 AND id = $2",
                    {std::to_string(user_id), std::to_string(payment_id)}));
}

std::optional<PaymentRow> payment_of_session(db::Connection& c, int64_t user_id, const std::string& session_id) {
  return one(c.exec("SELECT " MIRAGE_PAYMENT_COLUMNS " FROM payments WHERE user_id = $1 AND stripe_session_id = $2",
                    {std::to_string(user_id), session_id}));
}

bool cancel_payment(db::Connection& c, int64_t payment_id) {
  return c.exec("UPDATE payments SET status = 'cancelled' WHERE id = $1 AND status = 'pending' RETURNING id",
                {std::to_string(payment_id)}).rows() == 1;
}

std::optional<PaymentRow> payment_by_session_for_update(db::Connection& c, const std::string& session_id) {
  return one(c.exec("SELECT " MIRAGE_PAYMENT_COLUMNS " FROM payments WHERE stripe_session_id = $1 FOR UPDATE",
                    {session_id}));
}

std::optional<PaymentRow> payment_by_intent_for_update(db::Connection& c, const std::string& payment_intent) {
  return one(c.exec("SELECT " MIRAGE_PAYMENT_COLUMNS " FROM payments WHERE payment_intent = $1 FOR UPDATE",
                    {payment_intent}));
}

std::optional<PaymentRow> payment_by_id_for_update(db::Connection& c, int64_t payment_id) {
  return one(c.exec("SELECT " MIRAGE_PAYMENT_COLUMNS " FROM payments WHERE id = $1 FOR UPDATE",
                    {std::to_string(payment_id)}));
}

void lock_payment_intent(db::Connection& c, const std::string& payment_intent) {
  c.exec("SELECT pg_advisory_xact_lock(hashtext('payment_intent:' || $1))", {payment_intent});
}

void keep_pending_event(db::Connection& c, const std::string& id, const std::string& type,
                        const std::optional<int64_t>& payment_id, const std::optional<std::string>& payment_intent,
                        const std::optional<std::string>& session_id, const std::string& body) {
  c.exec("INSERT INTO stripe_pending_events (id, type, payment_id, payment_intent, session_id, body) "
         "VALUES ($1, $2, $3, $4, $5, $6) "
         "ON CONFLICT (id) DO UPDATE SET deliveries = stripe_pending_events.deliveries + 1",
         {id, type, payment_id ? db::Param(std::to_string(*payment_id)) : db::Param(std::nullopt), payment_intent,
          session_id, body});
}

std::vector<PendingEvent> pending_events_for(db::Connection& c, const PaymentRow& p) {
  db::Result r = c.exec("SELECT id, type, body FROM stripe_pending_events "
                        "WHERE payment_id = $1 OR payment_intent = $2 OR session_id = $3 "
                        "ORDER BY received_at, id FOR UPDATE",
                        {std::to_string(p.id), p.payment_intent, p.session_id});
  std::vector<PendingEvent> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.value(i, 0), r.value(i, 1), r.value(i, 2)});
  return out;
}

void drop_pending_event(db::Connection& c, const std::string& id) {
  c.exec("DELETE FROM stripe_pending_events WHERE id = $1", {id});
}

bool record_event(db::Connection& c, const std::string& event_id, const std::string& type) {
  return c.exec("INSERT INTO stripe_events (id, type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id",
                {event_id, type}).rows() == 1;
}

void update_payment(db::Connection& c, const PaymentRow& p) {
  c.exec("UPDATE payments SET status = $2, payment_intent = $3, receipt_url = $4, "
         "  paid_at = CASE WHEN $5::bigint > 0 AND paid_at IS NULL THEN now() ELSE paid_at END, "
         "  credited_seconds = $5, refunded_seconds = $6, shortfall_seconds = $7, amount_refunded = $8, "
         "  amount_disputed = $9, stripe_session_id = coalesce(stripe_session_id, $10) "
         "WHERE id = $1",
         {std::to_string(p.id), p.status, p.payment_intent, p.receipt_url, std::to_string(p.credited_seconds),
          std::to_string(p.refunded_seconds), std::to_string(p.shortfall_seconds), std::to_string(p.amount_refunded),
          std::to_string(p.amount_disputed), p.session_id});
}

}  // namespace mirage::repo
