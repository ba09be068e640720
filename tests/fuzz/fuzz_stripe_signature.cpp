// The Stripe-Signature header parser (daemon/payments/signature.cpp): the
// first line of the input is the header, the rest the payload. Nothing but
// the right HMAC is ever valid.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "payments/signature.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string header = text.substr(0, nl), payload = nl == std::string::npos ? "" : text.substr(nl + 1);
  const std::string secret = "whsec_fuzz";
  const auto check = mirage::payments::verify_signature(header, payload, secret, 1700000000, 300);
  if (check != mirage::payments::SignatureCheck::kValid) return 0;
  // Valid: the header holds t=T and the HMAC of "T.payload".
  std::string timestamp;
  for (size_t pos = 0; pos <= header.size();) {
    const size_t comma = std::min(header.find(',', pos), header.size());
    const std::string item = header.substr(pos, comma - pos);
    if (item.rfind("t=", 0) == 0) timestamp = item.substr(2);
    pos = comma + 1;
  }
  if (header.find(mirage::payments::hmac_sha256_hex(secret, timestamp + "." + payload)) == std::string::npos) std::abort();
  return 0;
}
