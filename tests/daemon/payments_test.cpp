// Buying credits: Checkout Sessions through a local fake of Stripe's API,
// and webhooks signed in the test itself with OpenSSL, following Stripe's
// documented scheme (HMAC-SHA256 of "t.body", header "t=...,v1=...").
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>

#include "api_fixture.h"
#include "fake_stripe.h"

namespace mirage {
namespace {

// Independent of daemon/payments/signature.cpp on purpose.
std::string sign(const std::string& body, const std::string& secret, long long t) {
  const std::string message = std::to_string(t) + "." + body;
  unsigned char digest[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), int(secret.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), digest, &length);
  char hex[65];
  for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return "t=" + std::to_string(t) + ",v1=" + hex;
}

std::string event(const std::string& id, const std::string& type, const std::string& object) {
  return R"({"id":")" + id + R"(","object":"event","type":")" + type + R"(","data":{"object":)" + object + "}}";
}

std::string completed(const std::string& session, const std::string& payment_status, const std::string& intent) {
  return R"({"id":")" + session + R"(","object":"checkout.session","payment_status":")" + payment_status +
         R"(","payment_intent":")" + intent + R"("})";
}

class Payments : public Api {
 protected:
  payments::StripeSettings stripe_settings() override {
    payments::StripeSettings s;
    s.secret_key = "sk_test_mirage";
    s.api_base = fake_.base_url();
    s.timeout_ms = 500;
    s.attempts = 3;
    return s;
  }

  test::HttpResponse webhook(const std::string& body, const std::string& signature) {
    std::map<std::string, std::string> headers;
    if (!signature.empty()) headers["Stripe-Signature"] = signature;
    return test::http(server_->port(), "POST", "/api/stripe/webhook", body, headers);
  }
  test::HttpResponse deliver(const std::string& body) {
    return webhook(body, sign(body, webhook_secret_, std::time(nullptr)));
  }

  // Buys |pack| through the fake; returns the Checkout Session id.
  std::string checkout(const std::string& token, const std::string& pack = "small") {
    auto r = call("POST", "/api/credits/checkout", R"({"pack":")" + pack + R"("})", token);
    EXPECT_EQ(r.status, 200) << r.body;
    return parse(r.body)["session_id"].GetString();
  }

  test::FakeStripe fake_;
};

TEST_F(Api, PacksArePublicAndCheckoutNeedsAKey) {
  auto packs = parse(call("GET", "/api/credits/packs").body);
  ASSERT_EQ(packs["packs"].Size(), 2u);
  EXPECT_STREQ(packs["packs"][0]["id"].GetString(), "small");
  EXPECT_EQ(packs["packs"][0]["credits"].GetInt(), 5);
  EXPECT_EQ(packs["packs"][0]["amount"].GetInt64(), 500);
  std::string token = user("nora");
  auto r = call("POST", "/api/credits/checkout", R"({"pack":"small"})", token);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(error_code(r), "payments_not_configured");
}

TEST_F(Payments, CheckoutSendsStripeWhatItDocuments) {
  std::string token = user("olga");
  EXPECT_EQ(call("POST", "/api/credits/checkout", R"({"pack":"small"})").status, 401);
  EXPECT_EQ(call("POST", "/api/credits/checkout", R"({"pack":"huge"})", token).status, 400);
  auto r = call("POST", "/api/credits/checkout", R"({"pack":"large"})", token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = parse(r.body);
  const std::string session = body["session_id"].GetString();
  EXPECT_EQ(std::string(body["checkout_url"].GetString()), "https://checkout.stripe.com/c/pay/" + session);

  auto requests = fake_.requests();
  ASSERT_EQ(requests.size(), 1u);
  auto& req = requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/v1/checkout/sessions");
  EXPECT_EQ(req.headers["authorization"], "Bearer sk_test_mirage");
  EXPECT_EQ(req.headers["content-type"], "application/x-www-form-urlencoded");
  EXPECT_FALSE(req.headers["idempotency-key"].empty());
  EXPECT_EQ(req.form["mode"], "payment");
  EXPECT_EQ(req.form["line_items[0][quantity]"], "1");
  EXPECT_EQ(req.form["line_items[0][price_data][unit_amount]"], "4800");
  EXPECT_EQ(req.form["line_items[0][price_data][currency]"], "eur");
  EXPECT_EQ(req.form["metadata[pack]"], "large");
  EXPECT_EQ(req.form["success_url"], "http://app.test/ok?session_id={CHECKOUT_SESSION_ID}");
  EXPECT_EQ(req.form["cancel_url"], "http://app.test/cancel");
  auto me = parse(call("GET", "/api/me", "", token).body);
  EXPECT_EQ(req.form["client_reference_id"], std::to_string(me["id"].GetInt64()));

  auto list = parse(call("GET", "/api/me/transactions", "", token).body);
  ASSERT_EQ(list["transactions"].Size(), 1u);
  EXPECT_STREQ(list["transactions"][0]["status"].GetString(), "pending");
  EXPECT_EQ(balance(token), 0);  // nothing credited before Stripe says paid
}

TEST_F(Payments, StripeErrorsAreReportedAndRetriedSafely) {
  std::string token = user("pia");
  fake_.set_mode(test::FakeStripe::Mode::kCardError);
  auto refused = call("POST", "/api/credits/checkout", R"({"pack":"small"})", token);
  EXPECT_EQ(refused.status, 502);
  EXPECT_NE(refused.body.find("Invalid currency"), std::string::npos) << refused.body;
  EXPECT_EQ(fake_.requests().size(), 1u);  // a refusal is not retried

  fake_.set_mode(test::FakeStripe::Mode::kServerErrorOnce);
  auto retried = call("POST", "/api/credits/checkout", R"({"pack":"small"})", token);
  EXPECT_EQ(retried.status, 200) << retried.body;
  auto requests = fake_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].headers["idempotency-key"], requests[2].headers["idempotency-key"]);
  EXPECT_NE(requests[0].headers["idempotency-key"], requests[1].headers["idempotency-key"]);

  fake_.set_mode(test::FakeStripe::Mode::kHang);
  auto timed_out = call("POST", "/api/credits/checkout", R"({"pack":"small"})", token);
  EXPECT_EQ(timed_out.status, 502);
  EXPECT_NE(timed_out.body.find("Stripe unreachable"), std::string::npos) << timed_out.body;
  // Three attempts. The fake answers one connection at a time, so the last
  // may still be in its backlog when the daemon has given up: wait for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fake_.requests().size() < 6 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(fake_.requests().size(), 6u);

  auto list = parse(call("GET", "/api/me/transactions", "", token).body);
  EXPECT_STREQ(list["transactions"][0]["status"].GetString(), "failed");
}

TEST_F(Payments, PaidSessionCreditsExactlyOnce) {
  std::string token = user("quinn");
  const std::string session = checkout(token);
  const std::string paid = event("evt_1", "checkout.session.completed", completed(session, "paid", "pi_1"));
  auto first = deliver(paid);
  EXPECT_EQ(first.status, 200);
  EXPECT_STREQ(parse(first.body)["result"].GetString(), "applied");
  EXPECT_EQ(balance(token), 3000);
  auto replay = deliver(paid);
  EXPECT_EQ(replay.status, 200);
  EXPECT_STREQ(parse(replay.body)["result"].GetString(), "duplicate");
  // Another event about the same session adds nothing either.
  deliver(event("evt_2", "checkout.session.async_payment_succeeded", completed(session, "paid", "pi_1")));
  EXPECT_EQ(balance(token), 3000);
  auto list = parse(call("GET", "/api/me/transactions", "", token).body);
  EXPECT_STREQ(list["transactions"][0]["status"].GetString(), "paid");
}

TEST_F(Payments, TenConcurrentDeliveriesCreditOnce) {
  std::string token = user("rita");
  const std::string session = checkout(token);
  const std::string paid = event("evt_race", "checkout.session.completed", completed(session, "paid", "pi_r"));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i) threads.emplace_back([&] { ok += deliver(paid).status == 200; });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 10);
  EXPECT_EQ(balance(token), 3000);
  auto credits = parse(call("GET", "/api/me/credits", "", token).body);
  EXPECT_EQ(credits["ledger"].Size(), 1u);
}

TEST_F(Payments, DelayedPaymentsCreditOnlyWhenTheyClear) {
  std::string token = user("sven");
  const std::string a = checkout(token), b = checkout(token);
  deliver(event("evt_a1", "checkout.session.completed", completed(a, "unpaid", "pi_a")));
  deliver(event("evt_b1", "checkout.session.completed", completed(b, "unpaid", "pi_b")));
  EXPECT_EQ(balance(token), 0);
  deliver(event("evt_a2", "checkout.session.async_payment_succeeded", completed(a, "paid", "pi_a")));
  deliver(event("evt_b2", "checkout.session.async_payment_failed", completed(b, "unpaid", "pi_b")));
  EXPECT_EQ(balance(token), 3000);
  auto list = parse(call("GET", "/api/me/transactions", "", token).body);
  EXPECT_STREQ(list["transactions"][0]["status"].GetString(), "failed");  // newest first: b
  EXPECT_STREQ(list["transactions"][1]["status"].GetString(), "paid");
}

TEST_F(Payments, BadSignaturesChangeNothing) {
  std::string token = user("tara");
  const std::string session = checkout(token);
  const std::string body = event("evt_sig", "checkout.session.completed", completed(session, "paid", "pi_s"));
  const long long now = std::time(nullptr);
  struct Case {
    const char* what;
    std::string body, signature;
  };
  const std::vector<Case> cases = {
      {"stale timestamp", body, sign(body, webhook_secret_, now - 301)},
      {"future timestamp", body, sign(body, webhook_secret_, now + 301)},
      {"wrong secret", body, sign(body, "whsec_other", now)},
      {"tampered body", body + " ", sign(body, webhook_secret_, now)},
      {"missing header", body, ""},
      {"no v1", body, "t=" + std::to_string(now)},
      {"garbage", body, "nonsense"},
  };
  for (const Case& c : cases) {
    auto r = webhook(c.body, c.signature);
    EXPECT_EQ(r.status, 400) << c.what;
    EXPECT_EQ(error_code(r), "invalid_signature") << c.what;
  }
  EXPECT_EQ(balance(token), 0);
  // Several v1 signatures (a secret being rolled): one valid is enough.
  const std::string rolled = sign(body, "whsec_old", now) + ",v1=" + sign(body, webhook_secret_, now).substr(
      sign(body, webhook_secret_, now).find("v1=") + 3);
  EXPECT_EQ(webhook(body, rolled).status, 200);
  EXPECT_EQ(balance(token), 3000);
}

TEST_F(Payments, UnknownEventsAreAcknowledgedAndIgnored) {
  auto r = deliver(event("evt_x", "customer.created", R"({"id":"cus_1"})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_STREQ(parse(r.body)["result"].GetString(), "ignored");
  EXPECT_EQ(deliver("{not json").status, 400);
}

TEST_F(Payments, RefundTakesBackWhatIsLeftAndRecordsTheShortfall) {
  std::string token = user("uma");
  const std::string full = checkout(token), half = checkout(token);
  deliver(event("evt_f", "checkout.session.completed", completed(full, "paid", "pi_full")));
  deliver(event("evt_h", "checkout.session.completed", completed(half, "paid", "pi_half")));
  EXPECT_EQ(balance(token), 6000);
  // Stream for 5000 s of it.
  {
    db::Connection c(config_.database_url);
    c.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) "
           "SELECT id, -5000, 'stream 1' FROM users WHERE username = 'uma'");
  }
  // Half of one pack refunded: 1500 s back out of the 1000 left.
  deliver(event("evt_r1", "charge.refunded",
                R"({"id":"ch_h","object":"charge","payment_intent":"pi_half","amount":500,"amount_refunded":250,"receipt_url":"https://pay.stripe.com/receipts/h"})"));
  EXPECT_EQ(balance(token), 0);  // never below zero
  auto list = parse(call("GET", "/api/me/transactions", "", token).body);
  const auto& h = list["transactions"][0];
  EXPECT_STREQ(h["status"].GetString(), "partially_refunded");
  EXPECT_EQ(h["credits_refunded_seconds"].GetInt64(), 1000);
  EXPECT_EQ(h["refund_shortfall_seconds"].GetInt64(), 500);
  EXPECT_STREQ(h["receipt_url"].GetString(), "https://pay.stripe.com/receipts/h");
  // The same refund delivered again adds nothing.
  deliver(event("evt_r1", "charge.refunded",
                R"({"id":"ch_h","object":"charge","payment_intent":"pi_half","amount":500,"amount_refunded":250})"));
  EXPECT_EQ(parse(call("GET", "/api/me/transactions", "", token).body)["transactions"][0]["refund_shortfall_seconds"].GetInt64(), 500);
}

// The payment row's id for a Checkout Session.
long long payment_id_of(const std::string& url, const std::string& session) {
  db::Connection c(url);
  return std::stoll(c.exec("SELECT id FROM payments WHERE stripe_session_id = $1", {session}).value(0, 0));
}

// Main: a crash between creating the Stripe session and saving its id left
// a payment Stripe's events could not find: answered 200, never credited.
// Now the session's metadata.payment_id finds it (and the id is saved).
TEST_F(Payments, ASessionWhoseIdWasNeverSavedIsFoundByItsMetadata) {
  std::string token = user("abe");
  const std::string session = checkout(token);
  const long long id = payment_id_of(config_.database_url, session);
  {
    db::Connection c(config_.database_url);
    c.exec("UPDATE payments SET stripe_session_id = NULL WHERE id = $1", {std::to_string(id)});  // the crash
  }
  const std::string object = R"({"id":")" + session + R"(","object":"checkout.session","payment_status":"paid",)"
                             R"("payment_intent":"pi_abe","metadata":{"pack":"small","payment_id":")" +
                             std::to_string(id) + R"("}})";
  auto r = deliver(event("evt_abe", "checkout.session.completed", object));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(balance(token), 3000);
  EXPECT_EQ(payment_id_of(config_.database_url, session), id);  // saved now
}

// Main: an event that matched no payment was answered 200 and forgotten.
// Now it is kept and answered 409 so Stripe delivers it again; the next
// delivery, once the payment is known, applies it.
TEST_F(Payments, AnUnmatchedEventIsKeptAndRetried) {
  std::string token = user("bea");
  const std::string body = event("evt_orphan", "checkout.session.completed", completed("cs_unknown", "paid", "pi_x"));
  auto r = deliver(body);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_code(r), "unmatched_event");
  db::Connection c(config_.database_url);
  EXPECT_EQ(c.exec("SELECT deliveries FROM stripe_pending_events WHERE id = 'evt_orphan'").value(0, 0), "1");
  EXPECT_EQ(deliver(body).status, 409);
  EXPECT_EQ(c.exec("SELECT deliveries FROM stripe_pending_events WHERE id = 'evt_orphan'").value(0, 0), "2");
  EXPECT_EQ(c.exec("SELECT count(*) FROM stripe_events WHERE id = 'evt_orphan'").value(0, 0), "0");
  // The session turns out to be ours (say the row was restored): applied once.
  const std::string session = checkout(token);
  c.exec("UPDATE payments SET stripe_session_id = 'cs_unknown' WHERE stripe_session_id = $1", {session});
  r = deliver(body);
  EXPECT_EQ(r.status, 200);
  EXPECT_STREQ(parse(r.body)["result"].GetString(), "applied");
  EXPECT_EQ(balance(token), 3000);
  EXPECT_EQ(c.exec("SELECT count(*) FROM stripe_pending_events").value(0, 0), "0");
  EXPECT_STREQ(parse(deliver(body).body)["result"].GetString(), "duplicate");
}

// Main: a refund (or a receipt) that came before checkout.session.completed
// told us the PaymentIntent was "ignored", and Stripe's retries were then
// "duplicate": the buyer kept the credits. Now it waits, and the
// completion applies it in the same transaction that credits.
TEST_F(Payments, ARefundBeforeTheCompletionIsAppliedWhenItComes) {
  std::string token = user("cid");
  const std::string session = checkout(token);
  const std::string refund = event("evt_early_refund", "charge.refunded",
                                   R"({"id":"ch_c","object":"charge","payment_intent":"pi_cid","amount":500,)"
                                   R"("amount_refunded":500,"receipt_url":"https://pay.stripe.com/receipts/c"})");
  EXPECT_EQ(deliver(refund).status, 409);
  EXPECT_EQ(deliver(event("evt_done", "checkout.session.completed", completed(session, "paid", "pi_cid"))).status, 200);
  EXPECT_EQ(balance(token), 0);  // credited, then taken back
  auto doc = parse(call("GET", "/api/me/transactions", "", token).body);
  const auto& p = doc["transactions"][0];
  EXPECT_STREQ(p["status"].GetString(), "refunded");
  EXPECT_EQ(p["credits_refunded_seconds"].GetInt64(), 3000);
  EXPECT_STREQ(p["receipt_url"].GetString(), "https://pay.stripe.com/receipts/c");
  // Stripe's retry of the refund: already applied, nothing more happens.
  auto again = deliver(refund);
  EXPECT_EQ(again.status, 200);
  EXPECT_STREQ(parse(again.body)["result"].GetString(), "duplicate");
  EXPECT_EQ(balance(token), 0);
}

// Main: 42 of 100 full refunds were lost when each came while its
// completion was being applied. Here 40 purchases, each completion and
// refund delivered at the same moment, retried like Stripe on any non-2xx;
// every refunded buyer ends at 0 and every ledger adds up.
TEST_F(Payments, RefundsRacingTheirCompletionAreNeverLost) {
  constexpr int kBuyers = 40;
  std::vector<std::string> tokens, sessions;
  for (int i = 0; i < kBuyers; ++i) {
    tokens.push_back(user("racer" + std::to_string(i)));
    sessions.push_back(checkout(tokens.back()));
  }
  auto until_2xx = [&](const std::string& body) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      const int status = deliver(body).status;
      if (status >= 200 && status < 300) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  };
  std::vector<std::thread> threads;
  std::atomic<int> delivered{0};
  for (int i = 0; i < kBuyers; ++i) {
    const std::string pi = "pi_race_" + std::to_string(i);
    const std::string done = event("evt_c" + std::to_string(i), "checkout.session.completed",
                                   completed(sessions[size_t(i)], "paid", pi));
    // Half of the charges carry our metadata (Stripe copies the
    // PaymentIntent's), half do not: both paths are raced.
    const std::string meta = i % 2 ? R"(,"metadata":{"payment_id":")" +
                                         std::to_string(payment_id_of(config_.database_url, sessions[size_t(i)])) + R"("})"
                                   : "";
    const std::string refund = event("evt_r" + std::to_string(i), "charge.refunded",
                                     R"({"id":"ch_)" + std::to_string(i) + R"(","object":"charge","payment_intent":")" +
                                         pi + R"(","amount":500,"amount_refunded":500)" + meta + "}");
    threads.emplace_back([&, done] { delivered += until_2xx(done) == 200; });
    threads.emplace_back([&, refund] { delivered += until_2xx(refund) == 200; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(delivered, 2 * kBuyers);
  for (const auto& token : tokens) EXPECT_EQ(balance(token), 0);
  db::Connection c(config_.database_url);
  EXPECT_EQ(c.exec("SELECT count(*) FROM payments WHERE status = 'refunded'").value(0, 0), std::to_string(kBuyers));
  EXPECT_EQ(c.exec("SELECT count(*) FROM users u WHERE balance_seconds <> "
                   "(SELECT coalesce(sum(delta_seconds), 0) FROM credit_ledger WHERE user_id = u.id)").value(0, 0), "0");
}

// Main: an expired Checkout stayed "pending" forever, and disputes were ignored.
TEST_F(Payments, ExpiredSessionsAndDisputes) {
  std::string token = user("dee");
  const std::string lapsed = checkout(token), disputed = checkout(token);
  EXPECT_EQ(deliver(event("evt_exp", "checkout.session.expired", completed(lapsed, "unpaid", ""))).status, 200);
  deliver(event("evt_paid", "checkout.session.completed", completed(disputed, "paid", "pi_dee")));
  EXPECT_EQ(balance(token), 3000);
  auto r = deliver(event("evt_dp", "charge.dispute.created",
                         R"({"id":"dp_1","object":"dispute","charge":"ch_dee","payment_intent":"pi_dee","amount":500,"reason":"fraudulent"})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(balance(token), 0);  // frozen, as a refund would
  auto doc = parse(call("GET", "/api/me/transactions", "", token).body);
  const auto& list = doc["transactions"];
  EXPECT_STREQ(list[0]["status"].GetString(), "disputed");
  EXPECT_STREQ(list[1]["status"].GetString(), "expired");
  EXPECT_EQ(parse(call("GET", "/api/me/credits", "", token).body)["ledger"][0]["reason"].GetString(),
            "dispute: payment " + std::to_string(list[0]["id"].GetInt64()));
}

// Main: a webhook body nested deeply enough crashed the daemon; Stripe's
// replies were parsed the same way.
TEST_F(Payments, DeepOrBrokenEventsAreRefused) {
  auto r = deliver(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_code(r), "invalid_event");
  EXPECT_EQ(deliver("{\"id\":\"evt_\xff\",\"type\":\"charge.refunded\",\"data\":{\"object\":{}}}").status, 400);
}

TEST_F(Payments, ReceiptsAsJsonAndHtml) {
  std::string token = user("vera");
  std::string other = user("walt");
  const std::string session = checkout(token, "large");
  deliver(event("evt_v", "checkout.session.completed", completed(session, "paid", "pi_v")));
  deliver(event("evt_c", "charge.succeeded",
                R"({"id":"ch_v","object":"charge","payment_intent":"pi_v","receipt_url":"https://pay.stripe.com/receipts/v?a=1&b=<2>"})"));
  const long long id = parse(call("GET", "/api/me/transactions", "", token).body)["transactions"][0]["id"].GetInt64();
  const std::string path = "/api/me/transactions/" + std::to_string(id) + "/receipt";
  auto json = call("GET", path, "", token);
  ASSERT_EQ(json.status, 200);
  auto r = parse(json.body);
  EXPECT_STREQ(r["pack"].GetString(), "large");
  EXPECT_EQ(r["credits"].GetInt(), 60);
  EXPECT_EQ(r["amount"].GetInt64(), 4800);
  EXPECT_STREQ(r["status"].GetString(), "paid");
  EXPECT_EQ(std::string(r["number"].GetString()).rfind("MRG-", 0), 0u);
  auto html = call("GET", path + "?format=html", "", token);
  ASSERT_EQ(html.status, 200);
  EXPECT_NE(html.headers["content-type"].find("text/html"), std::string::npos);
  EXPECT_NE(html.body.find("48.00 EUR"), std::string::npos);
  EXPECT_NE(html.body.find("60 (600 minutes of streaming)"), std::string::npos);
  EXPECT_NE(html.body.find("receipts/v?a=1&amp;b=&lt;2&gt;"), std::string::npos);  // escaped
  EXPECT_EQ(call("GET", path, "", other).status, 404);  // someone else's
  EXPECT_EQ(call("GET", "/api/me/transactions/abc/receipt", "", token).status, 404);
}

// The buyer gives up a checkout: it is expired at Stripe and shows as
// cancelled; a paid one cannot be; only one's own.
TEST_F(Payments, CancelledCheckoutExpiresAtStripe) {
  std::string token = user("canceller"), other = user("stranger");
  const std::string session = checkout(token);
  EXPECT_EQ(call("POST", "/api/credits/checkout/" + session + "/cancel").status, 401);
  EXPECT_EQ(call("POST", "/api/credits/checkout/" + session + "/cancel", "", other).status, 404);  // not theirs
  EXPECT_EQ(call("POST", "/api/credits/checkout/cs_nope/cancel", "", token).status, 404);
  EXPECT_EQ(call("POST", "/api/credits/checkout/cs%27%3B--/cancel", "", token).status, 404);  // not an id
  auto r = call("POST", "/api/credits/checkout/" + session + "/cancel", "", token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_STREQ(parse(r.body)["status"].GetString(), "cancelled");
  bool expired_at_stripe = false;
  for (const auto& q : fake_.requests())
    expired_at_stripe |= q.method == "POST" && q.path == "/v1/checkout/sessions/" + session + "/expire";
  EXPECT_TRUE(expired_at_stripe);
  EXPECT_EQ(call("POST", "/api/credits/checkout/" + session + "/cancel", "", token).status, 200);  // again: same answer
  EXPECT_STREQ(parse(call("GET", "/api/me/transactions", "", token).body)["transactions"][0]["status"].GetString(),
               "cancelled");
  // Stripe's later checkout.session.expired leaves it cancelled.

  // Complete at Stripe but its webhook not in yet: Stripe refuses, 409.
  const std::string paid = checkout(token);
  fake_.mark_complete(paid);
  auto refused = call("POST", "/api/credits/checkout/" + paid + "/cancel", "", token);
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(error_code(refused), "already_paid");
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new mirage::Environment);
  return RUN_ALL_TESTS();
}
