#include "accounts.h"

#include <cctype>

#include "auth/token.h"
#include "repo/users.h"
#include "service/error.h"
#include "service/validation.h"

namespace mirage::service {

namespace {

void require(const char* field, const std::optional<std::string>& problem) {
  if (problem) throw invalid_field(field, *problem);
}

// A real hash of a throwaway password: a login for an unknown user costs
// as much as one with a wrong password, so timing does not tell names apart.
const std::string& dummy_hash(const auth::Argon2Params& params) {
  static const std::string hash = auth::hash_password("not a password of anyone", params).value_or("");
  return hash;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

User Accounts::register_user(const std::string& username, const std::string& email,
                             const std::string& password, const std::string& address) {
  require("username", check_username(username));
  require("password", check_password(password));
  if (email.size() < 3 || email.size() > 254 || email.find('@') == std::string::npos)
    throw invalid_field("email", "'email' must be an e-mail address");
  {
    // Every well-formed attempt costs a hash: counted per address, taken or not.
    auto c = pool_.acquire();
    auto [hits, retry_after] =
        repo::rate_limit_hit(*c, "register-addr:" + address, settings_.registration_window_seconds);
    if (hits > settings_.registrations_per_address)
      throw Error(ErrorKind::kRateLimited, "rate_limited", "too many sign-ups from this address; try again later",
                  retry_after);
  }
  auto hash = auth::hash_password(password, settings_.argon2);
  if (!hash) throw std::runtime_error("password hashing failed");
  auto c = pool_.acquire();
  try {
    return repo::insert_user(*c, username, email, *hash);
  } catch (const db::Error& e) {
    if (e.sqlstate() != "23505") throw;
    // Both are unique whatever their case (users_username_key, users_email_key).
    if (e.constraint() == "users_email_key")
      throw field_error(ErrorKind::kConflict, "email_taken", "email", "an account with that e-mail address exists");
    throw field_error(ErrorKind::kConflict, "username_taken", "username", "that username is taken");
    throw;
  }
}

// Throws 429 while |key| has used up |limit| in its window.
void Accounts::refuse_if_limited(const std::string& key, int limit, const char* message) {
  auto c = pool_.acquire();
  auto [hits, retry_after] = repo::rate_limit_peek(*c, key, settings_.login_window_seconds);
  if (hits >= limit) throw Error(ErrorKind::kRateLimited, "rate_limited", message, retry_after);
}

Session Accounts::login(const std::string& username, const std::string& password, const std::string& address) {
  // Consulted before the password: once a name or an address has used up
  // its failures, even the right password waits for the window to pass.
  // Names are unique whatever the case, so the per-name counter is too; a
  // string that cannot be a username has no account and no counter of its own.
  const bool plausible = !check_username(lower(username)).has_value();
  const std::string user_key = "login-user:" + lower(username), addr_key = "login-addr:" + address;
  if (plausible)
    refuse_if_limited(user_key, settings_.login_failures_per_user, "too many failed logins; try again later");
  refuse_if_limited(addr_key, settings_.login_failures_per_address, "too many failed logins; try again later");
  std::optional<User> user;
  std::optional<std::string> hash;
  if (plausible) {
    auto c = pool_.acquire();
    user = repo::user_by_name(*c, username);
    if (user) hash = repo::password_hash_of(*c, user->id);
  }
  const bool ok = auth::verify_password(password, hash ? *hash : dummy_hash(settings_.argon2)) && user;
  if (!ok) {
    // Only failures count, per username and per address.
    auto c = pool_.acquire();
    if (plausible) repo::rate_limit_hit(*c, user_key, settings_.login_window_seconds);
    repo::rate_limit_hit(*c, addr_key, settings_.login_window_seconds);
    throw Error(ErrorKind::kUnauthorized, "invalid_credentials", "wrong username or password");
  }
  auto token = auth::new_token();
  if (!token) throw std::runtime_error("no randomness for a session token");
  auto c = pool_.acquire();
  repo::insert_session(*c, auth::token_hash(*token), user->id, settings_.session_ttl_seconds);
  return {*token, *user};
}

void Accounts::logout(const std::string& token) {
  auto c = pool_.acquire();
  repo::delete_session(*c, auth::token_hash(token));
}

User Accounts::authenticate(const std::optional<std::string>& token) {
  if (token && !token->empty()) {
    auto c = pool_.acquire();
    if (auto user = repo::user_by_session(*c, auth::token_hash(*token))) return *user;
  }
  throw Error(ErrorKind::kUnauthorized, "unauthorized", "log in first");
}

User Accounts::update_profile(const User& user, const std::optional<std::string>& display_name,
                              const std::optional<std::string>& bio) {
  if (display_name && display_name->size() > 64)
    throw invalid_field("display_name", "'display_name' must be at most 64 characters long");
  if (bio && bio->size() > 1000)
    throw invalid_field("bio", "'bio' must be at most 1000 characters long");
  auto c = pool_.acquire();
  repo::update_profile(*c, user.id, display_name, bio);
  return *repo::user_by_id(*c, user.id);
}

void Accounts::change_password(const User& user, const std::string& token, const std::string& current,
                               const std::string& next) {
  require("new_password", check_password(next));
  std::optional<std::string> hash;
  {
    auto c = pool_.acquire();
    hash = repo::password_hash_of(*c, user.id);
  }
  if (!hash || !auth::verify_password(current, *hash))
    throw field_error(ErrorKind::kForbidden, "wrong_password", "current_password", "the current password is wrong");
  auto fresh = auth::hash_password(next, settings_.argon2);
  if (!fresh) throw std::runtime_error("password hashing failed");
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  repo::set_password_hash(*c, user.id, *fresh);
  repo::delete_sessions_except(*c, user.id, auth::token_hash(token));
  tx.commit();
}

Credits Accounts::credits(const User& user, int ledger_limit) {
  auto c = pool_.acquire();
  Credits credits;
  credits.balance_seconds = repo::user_by_id(*c, user.id)->balance_seconds;
  credits.ledger = repo::ledger(*c, user.id, ledger_limit);
  return credits;
}

int64_t Accounts::grant(const std::string& username, int64_t credits, const std::string& reason) {
  if (credits <= 0 || credits > 1000000)
    throw Error(ErrorKind::kInvalid, "invalid_field", "credits must be between 1 and 1000000");
  auto c = pool_.acquire();
  auto user = repo::user_by_name(*c, username);
  if (!user) throw Error(ErrorKind::kNotFound, "not_found", "no user '" + username + "'");
  return repo::add_ledger_entry(*c, user->id, credits * kSecondsPerCredit, "grant: " + reason);
}

}  // namespace mirage::service
