// Forward-only schema migrations: sql/migrations/NNN_name.sql, applied in
// order, each in its own transaction, recorded in schema_migrations. Safe to
// run twice and from several replicas at once (an advisory lock serialises
// them).
#pragma once

#include <string>
#include <vector>

#include "connection.h"

namespace mirage::db {

struct Migration {
  int version = 0;
  std::string name;  // file name, e.g. 001_accounts.sql
  std::string sql;
};

// Parses a migration file name: three or more digits, '_', a name of
// [a-z0-9_], ".sql". Returns the version or -1.
int migration_version(const std::string& file_name);

// Reads every migration in |dir|, sorted by version. Throws std::runtime_error
// on a badly named .sql file or two files with the same version.
std::vector<Migration> load_migrations(const std::string& dir);

// Applies the migrations not yet recorded; returns the names applied.
std::vector<std::string> migrate(Connection& connection, const std::vector<Migration>& migrations);

}  // namespace mirage::db
