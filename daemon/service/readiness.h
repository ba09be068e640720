// What /healthz and /readyz answer (the API's port and a worker's media
// port): /healthz that the process runs, /readyz whether it should get
// traffic. Each readiness check has a name, a verdict and a sentence.
//
//   {"status":"ready","checks":{"database":{"ok":true,"detail":"..."},...}}
//
// 200 when every check is ok, else 503 with "status":"not_ready".
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mirage::db {
class Connection;
}

namespace mirage::service {

struct Check {
  std::string name;
  bool ok = false;
  std::string detail;
};

// The body of /readyz for |checks|; *ready = all of them ok.
std::string readiness_json(const std::vector<Check>& checks, bool* ready);
// The body of /healthz.
std::string liveness_json();

// The database checks both processes share: PostgreSQL answers, and its
// schema is at least at the newest migration this build knows (the highest
// NNN in migrations_dir; 0 skips the check). On a connection of its own
// (the pool's may all be busy, which is not an outage), with a 2 s connect
// and statement timeout, reopened when it broke. A result is reused for one
// second, so that probes cannot load the database.
class DatabaseProbe {
 public:
  DatabaseProbe(std::string database_url, int expected_migration);
  ~DatabaseProbe();
  std::vector<Check> check();
  int expected_migration() const { return expected_; }

 private:
  std::vector<Check> run();

  const std::string url_;
  const int expected_;
  std::mutex mutex_;  // one check at a time; guards the fields below
  std::unique_ptr<db::Connection> conn_;
  std::chrono::steady_clock::time_point checked_at_;
  std::vector<Check> last_;
};

// The newest migration in |dir| (0 when it has none or cannot be read).
int newest_migration(const std::string& dir);

}  // namespace mirage::service
