// Password hashing with Argon2id. Hashes are PHC strings
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash) that carry their own
// parameters, so the cost can be raised later without breaking old hashes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mirage::auth {

struct Argon2Params {
  // OWASP's recommendation for Argon2id: 19 MiB, 2 iterations, 1 lane.
  uint32_t memory_kib = 19 * 1024;
  uint32_t iterations = 2;
  uint32_t parallelism = 1;
};

// A fresh random salt every call. Returns nullopt only if the library fails.
std::optional<std::string> hash_password(const std::string& password, const Argon2Params& params = {});

// Constant-time comparison inside libargon2; false for a malformed hash.
bool verify_password(const std::string& password, const std::string& phc_hash);

}  // namespace mirage::auth
