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

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new mirage::Environment);
  return RUN_ALL_TESTS();
}
