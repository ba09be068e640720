#include "migrations.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace mirage::db {

namespace {

// Any constant shared by all replicas: the key of the migration lock.
constexpr const char* kLockKey = "7302115127";

}  // namespace

int migration_version(const std::string& file_name) {
  static const std::regex pattern("([0-9]{3,})_[a-z0-9_]+\\.sql");
  std::smatch match;
  if (!std::regex_match(file_name, match, pattern)) return -1;
  return std::stoi(match[1].str());
}

std::vector<Migration> load_migrations(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) throw std::runtime_error("cannot read the migrations folder '" + dir + "'");
  std::vector<Migration> migrations;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".sql") != 0) continue;
    Migration m;
    m.version = migration_version(name);
    if (m.version < 0) {
      closedir(d);
      throw std::runtime_error("migration '" + name + "' is not named NNN_name.sql");
    }
    std::ifstream in(dir + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    m.name = name;
    m.sql = text.str();
    migrations.push_back(std::move(m));
  }
  closedir(d);
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < migrations.size(); ++i)
    if (migrations[i].version == migrations[i - 1].version)
      throw std::runtime_error("migrations '" + migrations[i - 1].name + "' and '" + migrations[i].name +
                               "' have the same version");
  return migrations;
}

std::vector<std::string> migrate(Connection& connection, const std::vector<Migration>& migrations) {
  connection.exec(std::string("SELECT pg_advisory_lock(") + kLockKey + ")");
  std::vector<std::string> applied;
  try {
    connection.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    for (const Migration& m : migrations) {
      Transaction tx(connection);
      Result done = connection.exec("SELECT 1 FROM schema_migrations WHERE version = $1",
                                    {std::to_string(m.version)});
      if (done.rows() > 0) continue;
      try {
        connection.exec_script(m.sql);
      } catch (const Error& e) {
        throw Error("migration " + m.name + " failed: " + e.what(), e.sqlstate());
      }
      connection.exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                      {std::to_string(m.version), m.name});
      tx.commit();
      applied.push_back(m.name);
    }
  } catch (...) {
    connection.exec(std::string("SELECT pg_advisory_unlock(") + kLockKey + ")");
    throw;
  }
  connection.exec(std::string("SELECT pg_advisory_unlock(") + kLockKey + ")");
  return applied;
}

}  // namespace mirage::db
