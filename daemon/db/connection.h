// A small RAII layer over libpq: a connection, its results and
// transactions. Parameterised statements only: values never become SQL text.
//
// Thread safety: a Connection is used by one thread at a time (a pool hands
// connections out; see the daemon issue).
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mirage::db {

// A database error, with PostgreSQL's SQLSTATE when the server sent one
// (e.g. "23505" unique violation, "23514" check violation).
class Error : public std::runtime_error {
 public:
  Error(const std::string& message, std::string sqlstate = "", std::string constraint = "")
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)), constraint_(std::move(constraint)) {}
  const std::string& sqlstate() const { return sqlstate_; }
  // The violated constraint or unique index ("users_email_key"), when the
  // server named one: tells apart two unique violations of one INSERT.
  const std::string& constraint() const { return constraint_; }
  // The server is down, restarting or unreachable (SQLSTATE class 08, or
  // 57P01-57P03): a retry later may work.
  bool unavailable() const {
    return sqlstate_.rfind("08", 0) == 0 || sqlstate_ == "57P01" || sqlstate_ == "57P02" || sqlstate_ == "57P03";
  }

 private:
  std::string sqlstate_, constraint_;
};

using Param = std::optional<std::string>;  // nullopt is SQL NULL

class Result {
 public:
  explicit Result(PGresult* result) : result_(result, PQclear) {}
  int rows() const { return PQntuples(result_.get()); }
  int columns() const { return PQnfields(result_.get()); }
  bool is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column); }
  // The text value of a cell; nullopt for NULL.
  std::optional<std::string> get(int row, int column) const;
  // The text value of a cell that must not be NULL.
  std::string value(int row, int column) const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
};

class Connection {
 public:
  // Connects with a libpq connection string or URL; throws Error.
  explicit Connection(const std::string& conninfo);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One statement with $1..$n parameters, sent as text. Throws Error.
  Result exec(const std::string& sql, const std::vector<Param>& params = {});
  // Several statements without parameters (migration files). Throws Error.
  void exec_script(const std::string& sql);
  // False once the server connection is lost.
  bool healthy() const { return PQstatus(conn_.get()) == CONNECTION_OK; }

  // LISTEN: the socket to wait on for notifications, and those that arrived
  // (what the socket holds is read first). Throws Error when the connection
  // is lost.
  struct Notification {
    std::string channel, payload;
  };
  int socket() const { return PQsocket(conn_.get()); }
  std::vector<Notification> notifications();

 private:
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
};

// Rolls back unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Connection& connection);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& connection_;
  bool done_ = false;
};

}  // namespace mirage::db
