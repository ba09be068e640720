#include "connection.h"

#include <chrono>
#include <string>

#include "log/log.h"
#include "metrics/metrics.h"

namespace mirage::db {

namespace {

void check(PGconn* conn, PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* constraint = PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME);
  std::string message = result ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  // No result or no SQLSTATE with a broken connection: the server went away.
  std::string sqlstate = state ? state : (PQstatus(conn) == CONNECTION_BAD ? "08006" : "");
  std::string constraint_name = constraint ? constraint : "";
  PQclear(result);
  throw Error(message, sqlstate, constraint_name);
}

}  // namespace

std::optional<std::string> Result::get(int row, int column) const {
  if (PQgetisnull(result_.get(), row, column)) return std::nullopt;
  return std::string(PQgetvalue(result_.get(), row, column), PQgetlength(result_.get(), row, column));
}

std::string Result::value(int row, int column) const {
  auto v = get(row, column);
  if (!v) throw Error("unexpected NULL in column " + std::string(PQfname(result_.get(), column)));
  return *v;
}

Connection::Connection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str()), PQfinish) {
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    std::string message = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw Error("cannot connect to the database: " + message, "08001");
  }
  // The server's NOTICEs ("already exists, skipping") go into the log as
  // debug lines, not straight to stderr.
  PQsetNoticeProcessor(
      conn_.get(),
      [](void*, const char* message) {
        std::string text = message;
        while (!text.empty() && text.back() == '\n') text.pop_back();
        log::debug("database notice", {{"notice", text}});
      },
      nullptr);
}

Result Connection::exec(const std::string& sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  const auto started = std::chrono::steady_clock::now();
  PGresult* result = PQexecParams(conn_.get(), sql.c_str(), int(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0);
  metrics::db_query(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  check(conn_.get(), result);
  return Result(result);
}

void Connection::exec_script(const std::string& sql) {
  PGresult* result = PQexec(conn_.get(), sql.c_str());
  check(conn_.get(), result);
  PQclear(result);
}

std::vector<Connection::Notification> Connection::notifications() {
  if (!PQconsumeInput(conn_.get())) {
    std::string message = PQerrorMessage(conn_.get());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw Error("lost the database connection: " + message, "08006");
  }
  std::vector<Notification> out;
  while (PGnotify* n = PQnotifies(conn_.get())) {
    out.push_back({n->relname, n->extra ? n->extra : ""});
    PQfreemem(n);
  }
  return out;
}

Transaction::Transaction(Connection& connection) : connection_(connection) {
  connection_.exec("BEGIN");
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    connection_.exec("ROLLBACK");
  } catch (const Error&) {
    // The connection is broken; nothing left to roll back.
  }
}

void Transaction::commit() {
  connection_.exec("COMMIT");
  done_ = true;
}

}  // namespace mirage::db
