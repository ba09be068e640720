// Accounts: registration, sessions, profile, passwords, credits.
// Knows neither HTTP nor libpq: it talks to the database through repo/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "auth/password.h"
#include "db/pool.h"
#include "service/model.h"

namespace mirage::service {

struct AccountSettings {
  auth::Argon2Params argon2;
  int session_ttl_seconds = 30 * 24 * 3600;
  // Failed logins allowed per window, per username and per client address.
  int login_failures_per_user = 5;
  int login_failures_per_address = 20;
  int login_window_seconds = 300;
  // Sign-ups per window and client address.
  int registrations_per_address = 10;
  int registration_window_seconds = 3600;
};

struct Session {
  std::string token;  // given to the client once; only its hash is stored
  User user;
};

struct Credits {
  int64_t balance_seconds = 0;
  // The balance less the live stream's time not billed yet, as of now.
  int64_t seconds_remaining = 0;
  bool counting_down = false;  // a live stream is being billed
  std::vector<LedgerEntry> ledger;
};

class Accounts {
 public:
  Accounts(db::Pool& pool, AccountSettings settings) : pool_(pool), settings_(settings) {}

  // |address| is the client's (rate limits).
  User register_user(const std::string& username, const std::string& email, const std::string& password,
                     const std::string& address);
  Session login(const std::string& username, const std::string& password, const std::string& address);
  void logout(const std::string& token);
  // The user of a live session; throws kUnauthorized.
  User authenticate(const std::optional<std::string>& token);
  User update_profile(const User& user, const std::optional<std::string>& display_name,
                      const std::optional<std::string>& bio);
  // Other sessions of the user end; |token| stays valid.
  void change_password(const User& user, const std::string& token, const std::string& current,
                       const std::string& next);
  Credits credits(const User& user, int ledger_limit = 50);
  // Operator grant (`miraged credits grant`), recorded in the ledger.
  int64_t grant(const std::string& username, int64_t credits, const std::string& reason);

  int session_ttl_seconds() const { return settings_.session_ttl_seconds; }

 private:
  void refuse_if_limited(const std::string& key, int limit, const char* message);
  db::Pool& pool_;
  const AccountSettings settings_;
};

}  // namespace mirage::service
