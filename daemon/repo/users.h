// SQL for users, sessions, the credit ledger and rate limits.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "service/model.h"

namespace mirage::repo {

// Throws db::Error with SQLSTATE 23505 when the username is taken.
service::User insert_user(db::Connection& c, const std::string& username, const std::string& email,
                          const std::string& password_hash);
std::optional<service::User> user_by_name(db::Connection& c, const std::string& username);
std::optional<service::User> user_by_id(db::Connection& c, int64_t id);
std::optional<std::string> password_hash_of(db::Connection& c, int64_t user_id);
void set_password_hash(db::Connection& c, int64_t user_id, const std::string& hash);
void update_profile(db::Connection& c, int64_t user_id, const std::optional<std::string>& display_name,
                    const std::optional<std::string>& bio);
// Unset values stay as they are. default_*: the streamer's style and
// strength for their next stream.
void update_settings(db::Connection& c, int64_t user_id, std::optional<bool> comments_enabled,
                     std::optional<bool> styles_enabled, const std::optional<std::string>& default_style = std::nullopt,
                     std::optional<double> default_strength = std::nullopt);

void insert_session(db::Connection& c, const std::string& token_hash, int64_t user_id, int ttl_seconds);
std::optional<service::User> user_by_session(db::Connection& c, const std::string& token_hash);
void delete_session(db::Connection& c, const std::string& token_hash);
void delete_sessions_except(db::Connection& c, int64_t user_id, const std::string& keep_hash);

// Appends to the ledger; throws db::Error with SQLSTATE 23514 if the balance
// would go below zero. Returns the new balance.
int64_t add_ledger_entry(db::Connection& c, int64_t user_id, int64_t delta_seconds,
                         const std::string& reason);
std::vector<service::LedgerEntry> ledger(db::Connection& c, int64_t user_id, int limit);

// One hit in a fixed window of |window_seconds| for |key|: returns the hits
// in the current window (this one included) and the seconds left in it.
std::pair<int, int> rate_limit_hit(db::Connection& c, const std::string& key, int window_seconds);
// The hits in |key|'s current window without adding one, and the seconds
// left in it (0 hits when the window is over or never started).
std::pair<int, int> rate_limit_peek(db::Connection& c, const std::string& key, int window_seconds);
// Forgets expired sessions, rate-limit windows older than |max_window_seconds|,
// outbox rows older than an hour and the runtime reports of ended streams.
// Returns the rows deleted.
int64_t purge_expired(db::Connection& c, int max_window_seconds);

}  // namespace mirage::repo
