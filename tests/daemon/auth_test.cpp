// Passwords, session tokens and input rules: no database, no HTTP.
#include <gtest/gtest.h>

#include <set>

#include "auth/password.h"
#include "auth/token.h"
#include "service/validation.h"

namespace mirage {
namespace {

// Small Argon2 costs keep the test fast; production uses OWASP's defaults.
const auth::Argon2Params kCheap{1024, 1, 1};

TEST(Password, HashVerifiesOnlyTheRightPassword) {
  auto hash = auth::hash_password("correct horse battery", kCheap);
  ASSERT_TRUE(hash);
  EXPECT_EQ(hash->rfind("$argon2id$v=19$m=1024,t=1,p=1$", 0), 0u) << *hash;
  EXPECT_EQ(hash->find("correct horse"), std::string::npos);
  EXPECT_TRUE(auth::verify_password("correct horse battery", *hash));
  EXPECT_FALSE(auth::verify_password("correct horse batterY", *hash));
  EXPECT_FALSE(auth::verify_password("", *hash));
}

TEST(Password, SaltMakesEveryHashDifferent) {
  auto a = auth::hash_password("same password", kCheap);
  auto b = auth::hash_password("same password", kCheap);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(Password, MalformedOrForeignHashesNeverVerify) {
  for (const char* bad : {"", "plaintext", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA",
                          "$argon2id$v=19$m=1024,t=1,p=1$", "$2b$12$bcrypt.hash.is.not.accepted"})
    EXPECT_FALSE(auth::verify_password("plaintext", bad)) << bad;
}

TEST(Password, DefaultsAreOwasp) {
  auth::Argon2Params p;
  EXPECT_EQ(p.memory_kib, 19u * 1024);
  EXPECT_EQ(p.iterations, 2u);
  EXPECT_EQ(p.parallelism, 1u);
}

TEST(Token, Has256BitsOfBase64UrlAndIsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto t = auth::new_token();
    ASSERT_TRUE(t);
    ASSERT_EQ(t->size(), 43u);
    for (char c : *t) ASSERT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << *t;
    EXPECT_TRUE(seen.insert(*t).second);
  }
}

TEST(Token, HashIsSha256) {
  // SHA-256("abc"), FIPS 180-2 test vector.
  const std::string h = auth::token_hash("abc");
  ASSERT_EQ(h.size(), 32u);
  static const unsigned char expected[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(static_cast<unsigned char>(h[i]), expected[i]);
  EXPECT_NE(auth::token_hash("abd"), h);
}

TEST(Validation, Usernames) {
  for (const char* ok : {"abc", "a_b_9", "streamer_2026", "0123456789012345678901234567890x"})
    EXPECT_FALSE(service::check_username(ok)) << ok;
  EXPECT_EQ(*service::check_username("ab"), "'username' must be 3 to 32 characters long");
  EXPECT_TRUE(service::check_username(std::string(33, 'a')));
  EXPECT_EQ(*service::check_username("Alice"), "'username' may contain only a-z, 0-9 and _");
  for (const char* bad : {"a-b", "a b", "ab'; DROP TABLE users; --", "caf\xc3\xa9", "a/b"})
    EXPECT_TRUE(service::check_username(bad)) << bad;
  for (const char* reserved : {"api", "live", "admin", "watch", "ingest"})
    EXPECT_NE(service::check_username(reserved)->find("reserved"), std::string::npos) << reserved;
}

TEST(Validation, Passwords) {
  EXPECT_TRUE(service::check_password("short"));
  EXPECT_FALSE(service::check_password("ten chars!"));
  EXPECT_FALSE(service::check_password(std::string(256, 'x')));
  EXPECT_TRUE(service::check_password(std::string(257, 'x')));
}

}  // namespace
}  // namespace mirage
