// Stripe webhook signatures, as Stripe documents them: the header
// "Stripe-Signature: t=TIMESTAMP,v1=HEX[,v1=HEX...]" where each v1 is
// HMAC-SHA256(endpoint secret, "TIMESTAMP.RAW_BODY") in lower-case hex. Any
// v1 may match (secrets being rolled); the timestamp must be within the
// tolerance of now; comparisons are constant-time.
#pragma once

#include <cstdint>
#include <string>

namespace mirage::payments {

enum class SignatureCheck { kValid, kMissing, kMalformed, kStale, kMismatch };

const char* to_string(SignatureCheck check);

SignatureCheck verify_signature(const std::string& header, const std::string& payload,
                                const std::string& secret, int64_t now_unix, int64_t tolerance_seconds = 300);

// HMAC-SHA256 of |message| with |key|, lower-case hex.
std::string hmac_sha256_hex(const std::string& key, const std::string& message);

}  // namespace mirage::payments
