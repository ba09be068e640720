#include "readiness.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "db/connection.h"
#include "db/migrations.h"

namespace mirage::service {

std::string readiness_json(const std::vector<Check>& checks, bool* ready) {
  *ready = true;
  for (const auto& c : checks) *ready = *ready && c.ok;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("status");
  w.String(*ready ? "ready" : "not_ready");
  w.Key("checks");
  w.StartObject();
  for (const auto& c : checks) {
    w.Key(c.name.c_str());
    w.StartObject();
    w.Key("ok");
    w.Bool(c.ok);
    w.Key("detail");
    w.String(c.detail.c_str());
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return buffer.GetString();
}

std::string liveness_json() { return "{\"status\":\"ok\"}"; }

int newest_migration(const std::string& dir) {
  if (dir.empty()) return 0;
  try {
    int newest = 0;
    for (const auto& m : db::load_migrations(dir)) newest = std::max(newest, m.version);
    return newest;
  } catch (const std::exception&) {
    return 0;
  }
}

namespace {

// libpq takes a URL or key=value pairs; both get the probe's timeouts and
// its application name (visible in pg_stat_activity).
std::string with_probe_options(const std::string& url) {
  const bool is_url = url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
  if (!is_url) return url + " connect_timeout=2 application_name=miraged-readyz";
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=2&application_name=miraged-readyz";
}

}  // namespace

DatabaseProbe::DatabaseProbe(std::string database_url, int expected_migration)
    : url_(with_probe_options(database_url)), expected_(expected_migration) {}

DatabaseProbe::~DatabaseProbe() = default;

std::vector<Check> DatabaseProbe::check() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (last_.empty() || now - checked_at_ >= std::chrono::seconds(1)) {
    last_ = run();
    checked_at_ = std::chrono::steady_clock::now();
  }
  return last_;
}

std::vector<Check> DatabaseProbe::run() {
  Check database{"database", false, ""};
  Check migrations{"migrations", false, "not checked: the database does not answer"};
  try {
    if (!conn_ || !conn_->healthy()) {
      conn_.reset();
      conn_ = std::make_unique<db::Connection>(url_);
      conn_->exec("SET statement_timeout = 2000");
    }
    const bool migrated = conn_->exec("SELECT to_regclass('schema_migrations') IS NOT NULL").value(0, 0) == "t";
    const int at = migrated ? std::stoi(conn_->exec("SELECT coalesce(max(version), 0) FROM schema_migrations").value(0, 0))
                            : 0;
    database = {"database", true, "PostgreSQL answers"};
    if (expected_ == 0)
      migrations = {"migrations", true, "at " + std::to_string(at) + " (this build's migrations folder is unknown)"};
    else if (at >= expected_)
      migrations = {"migrations", true, "at " + std::to_string(at) + ", this build needs " + std::to_string(expected_)};
    else
      migrations = {"migrations", false,
                    "at " + std::to_string(at) + ", this build needs " + std::to_string(expected_) + ": run `miraged migrate`"};
  } catch (const std::exception& e) {
    conn_.reset();
    database.detail = std::string("unreachable: ") + e.what();
  }
  return {database, migrations};
}

}  // namespace mirage::service
