#include "signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <sstream>
#include <vector>

namespace mirage::payments {

const char* to_string(SignatureCheck check) {
  switch (check) {
    case SignatureCheck::kValid: return "valid";
    case SignatureCheck::kMissing: return "the Stripe-Signature header is missing";
    case SignatureCheck::kMalformed: return "the Stripe-Signature header is malformed";
    case SignatureCheck::kStale: return "the signature's timestamp is outside the tolerance";
    case SignatureCheck::kMismatch: return "no signature matches";
  }
  return "?";
}

std::string hmac_sha256_hex(const std::string& key, const std::string& message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), digest, &length);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

SignatureCheck verify_signature(const std::string& header, const std::string& payload, const std::string& secret,
                                int64_t now_unix, int64_t tolerance_seconds) {
  if (header.empty()) return SignatureCheck::kMissing;
  std::string timestamp;
  std::vector<std::string> signatures;
  std::stringstream in(header);
  for (std::string item; std::getline(in, item, ',');) {
    auto eq = item.find('=');
    if (eq == std::string::npos) continue;
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "t") timestamp = value;
    else if (key == "v1") signatures.push_back(value);  // other schemes (v0) are ignored, as Stripe says
  }
  if (timestamp.empty() || signatures.empty()) return SignatureCheck::kMalformed;
  char* end = nullptr;
  const long long t = std::strtoll(timestamp.c_str(), &end, 10);
  if (*end != '\0') return SignatureCheck::kMalformed;
  if (std::llabs(now_unix - t) > tolerance_seconds) return SignatureCheck::kStale;
  const std::string expected = hmac_sha256_hex(secret, timestamp + "." + payload);
  bool match = false;
  for (const std::string& s : signatures)
    if (s.size() == expected.size() && CRYPTO_memcmp(s.data(), expected.data(), s.size()) == 0) match = true;
  return match ? SignatureCheck::kValid : SignatureCheck::kMismatch;
}

}  // namespace mirage::payments
