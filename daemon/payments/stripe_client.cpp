#include "stripe_client.h"

#include <curl/curl.h>
#include <rapidjson/document.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "json_input.h"

namespace mirage::payments {

namespace {

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string encode(CURL* curl, const std::vector<std::pair<std::string, std::string>>& form) {
  std::string body;
  for (const auto& [key, value] : form) {
    char* k = curl_easy_escape(curl, key.c_str(), int(key.size()));
    char* v = curl_easy_escape(curl, value.c_str(), int(value.size()));
    if (!body.empty()) body += '&';
    body += std::string(k) + "=" + v;
    curl_free(k);
    curl_free(v);
  }
  return body;
}

}  // namespace

std::string StripeClient::post_form(const std::string& path,
                                    const std::vector<std::pair<std::string, std::string>>& form,
                                    const std::string& idempotency_key, const std::string& what) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw StripeError("libcurl could not start", true);
  const std::string body = encode(curl.get(), form);
  const std::string url = settings_.api_base + path;

  std::string last_error;
  for (int attempt = 1; attempt <= settings_.attempts; ++attempt) {
    std::string response;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, ("Authorization: Bearer " + settings_.secret_key).c_str());
    headers = curl_slist_append(headers, ("Idempotency-Key: " + idempotency_key).c_str());
    headers = curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded");
    curl_easy_reset(curl.get());
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, long(body.size()));
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, settings_.timeout_ms);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response);
    const CURLcode rc = curl_easy_perform(curl.get());
    curl_slist_free_all(headers);
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);

    if (rc != CURLE_OK) {
      last_error = std::string("Stripe unreachable: ") + curl_easy_strerror(rc);
    } else {
      if (status >= 200 && status < 300) return response;
      rapidjson::Document doc;
      // A broken or hostile reply leaves |doc| null: only the status is said.
      (void)parse_untrusted_json(response, &doc, kMaxStripeDepth, "Stripe's reply");
      std::string message = "HTTP " + std::to_string(status);
      if (doc.IsObject() && doc.HasMember("error") && doc["error"].IsObject() && doc["error"].HasMember("message") &&
          doc["error"]["message"].IsString())
        message = doc["error"]["message"].GetString();
      if (status < 500 && status != 429) throw StripeError("Stripe refused " + what + ": " + message, false);
      last_error = "Stripe failed: " + message;
    }
    if (attempt < settings_.attempts)
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * (1 << attempt)));  // 200, 400 ms
  }
  throw StripeError(last_error, true);
}

CheckoutSession StripeClient::create_checkout_session(
    const std::vector<std::pair<std::string, std::string>>& form, const std::string& idempotency_key) {
  const std::string reply = post_form("/v1/checkout/sessions", form, idempotency_key, "the checkout");
  rapidjson::Document doc;
  (void)parse_untrusted_json(reply, &doc, kMaxStripeDepth, "Stripe's reply");
  if (doc.IsObject() && doc.HasMember("id") && doc["id"].IsString() && doc.HasMember("url") && doc["url"].IsString())
    return {doc["id"].GetString(), doc["url"].GetString()};
  throw StripeError("Stripe answered without a session id and url", true);
}

void StripeClient::expire_checkout_session(const std::string& session_id) {
  // The id goes into the path: only Stripe's id characters.
  if (session_id.empty() || session_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                                std::string::npos)
    throw StripeError("not a Checkout Session id", false);
  const std::string reply = post_form("/v1/checkout/sessions/" + session_id + "/expire", {},
                                      "mirage-expire-" + session_id, "to expire the checkout");
  rapidjson::Document doc;
  (void)parse_untrusted_json(reply, &doc, kMaxStripeDepth, "Stripe's reply");
  if (!doc.IsObject() || !doc.HasMember("status") || !doc["status"].IsString() ||
      std::string(doc["status"].GetString()) != "expired")
    throw StripeError("Stripe answered the expiry without status 'expired'", true);
}

}  // namespace mirage::payments
