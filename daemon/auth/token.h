// Session tokens: 256 random bits, given to the client once as base64url
// text; the database keeps only their SHA-256, so a leaked table does not
// leak sessions. Lookups by hash need no constant-time comparison: the
// attacker does not control the stored value.
#pragma once

#include <optional>
#include <string>

namespace mirage::auth {

// 43 characters of base64url (no padding); nullopt if the RNG fails.
std::optional<std::string> new_token();

// The 32-byte SHA-256 digest of |token|, as raw bytes.
std::string token_hash(const std::string& token);

// Compares secrets in time that does not depend on where they differ.
bool constant_time_equals(const std::string& a, const std::string& b);

}  // namespace mirage::auth
