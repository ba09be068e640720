#include "password.h"

#include <argon2.h>
#include <openssl/rand.h>

#include <vector>

namespace mirage::auth {

namespace {
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
}  // namespace

std::optional<std::string> hash_password(const std::string& password, const Argon2Params& params) {
  unsigned char salt[kSaltBytes];
  if (RAND_bytes(salt, sizeof salt) != 1) return std::nullopt;
  const size_t length = argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism,
                                          sizeof salt, kHashBytes, Argon2_id);
  std::vector<char> encoded(length);
  const int rc = argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism,
                                       password.data(), password.size(), salt, sizeof salt,
                                       kHashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return std::nullopt;
  return std::string(encoded.data());
}

bool verify_password(const std::string& password, const std::string& phc_hash) {
  if (phc_hash.rfind("$argon2id$", 0) != 0) return false;
  return argon2id_verify(phc_hash.c_str(), password.data(), password.size()) == ARGON2_OK;
}

}  // namespace mirage::auth
