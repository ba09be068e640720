// miraged: the Mirage daemon. This first cut has the database commands;
// `serve` (REST, streams, credits) comes with the daemon issue.
//
//   miraged migrate [--database-url URL] [--migrations DIR]
//
// Settings: flags first, then the environment (MIRAGE_DATABASE_URL,
// MIRAGE_MIGRATIONS_DIR).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "db/connection.h"
#include "db/migrations.h"

namespace {

int usage(FILE* out) {
  std::fputs(
      "usage: miraged migrate [--database-url URL] [--migrations DIR]\n"
      "\n"
      "  migrate   apply the SQL migrations not yet applied, in order, each in a transaction\n"
      "\n"
      "  --database-url URL   libpq connection string or URL (env MIRAGE_DATABASE_URL)\n"
      "  --migrations DIR     folder of NNN_name.sql files (env MIRAGE_MIGRATIONS_DIR; default\n"
      "                       the source tree's sql/migrations)\n",
      out);
  return out == stdout ? 0 : 2;
}

std::string setting(const char* flag_value, const char* env, const char* fallback) {
  if (flag_value) return flag_value;
  if (const char* v = std::getenv(env)) return v;
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") return usage(stdout);
  const char* database_flag = nullptr;
  const char* migrations_flag = nullptr;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--database-url") && i + 1 < argc) database_flag = argv[++i];
    else if (!std::strcmp(argv[i], "--migrations") && i + 1 < argc) migrations_flag = argv[++i];
    else {
      std::fprintf(stderr, "miraged: unknown argument '%s'\n", argv[i]);
      return usage(stderr);
    }
  }
  if (command != "migrate") {
    std::fprintf(stderr, "miraged: unknown command '%s'\n", command.c_str());
    return usage(stderr);
  }
  const std::string url = setting(database_flag, "MIRAGE_DATABASE_URL", "");
  if (url.empty()) {
    std::fputs("miraged: no database: set --database-url or MIRAGE_DATABASE_URL\n", stderr);
    return 2;
  }
  const std::string dir = setting(migrations_flag, "MIRAGE_MIGRATIONS_DIR", MIRAGE_MIGRATIONS_DIR);
  try {
    mirage::db::Connection connection(url);
    auto applied = mirage::db::migrate(connection, mirage::db::load_migrations(dir));
    for (const auto& name : applied) std::printf("applied %s\n", name.c_str());
    std::printf("database is up to date (%zu applied now)\n", applied.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "miraged: %s\n", e.what());
    return 1;
  }
}
