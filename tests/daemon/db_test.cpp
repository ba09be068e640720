// daemon/db against a real PostgreSQL started by the test: migrations and
// the credit ledger's guarantees, which live in the schema.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>

#include "connection.h"
#include "migrations.h"
#include "pg_cluster.h"

namespace mirage::db {
namespace {

test::PgCluster* cluster = nullptr;

class Environment : public ::testing::Environment {
 public:
  void SetUp() override { cluster = new test::PgCluster(); }
  void TearDown() override { delete cluster; }
};

int database_counter = 0;

// Each test gets its own database, migrated from sql/migrations.
class Db : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = cluster->create_database("t" + std::to_string(++database_counter));
    conn_ = std::make_unique<Connection>(url_);
  }
  std::vector<std::string> migrate_all() { return migrate(*conn_, load_migrations(MIRAGE_MIGRATIONS_DIR)); }
  std::string user(const std::string& name) {
    return conn_->exec("INSERT INTO users (username, email, password_hash) VALUES ($1, $2, 'x') RETURNING id",
                       {name, name + "@example.org"}).value(0, 0);
  }
  long long balance(const std::string& id) {
    return std::stoll(conn_->exec("SELECT balance_seconds FROM users WHERE id = $1", {id}).value(0, 0));
  }
  std::string sqlstate_of(const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.sqlstate();
    }
    return "";
  }

  std::string url_;
  std::unique_ptr<Connection> conn_;
};

TEST(MigrationNames, OnlyNumberedSqlFiles) {
  EXPECT_EQ(migration_version("001_accounts.sql"), 1);
  EXPECT_EQ(migration_version("120_add_x_2.sql"), 120);
  for (const char* bad : {"1_x.sql", "001-accounts.sql", "001_Accounts.sql", "001_x.sql.bak", "abc_x.sql"})
    EXPECT_EQ(migration_version(bad), -1) << bad;
}

TEST_F(Db, MigrateAppliesEverythingOnceAndIsSafeToRepeat) {
  auto first = migrate_all();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first.front(), "001_accounts.sql");
  EXPECT_TRUE(migrate_all().empty());  // a second run applies nothing
  Result recorded = conn_->exec("SELECT count(*) FROM schema_migrations");
  EXPECT_EQ(recorded.value(0, 0), std::to_string(first.size()));
}

TEST_F(Db, AFailingMigrationLeavesNothingBehind) {
  migrate_all();
  std::vector<Migration> extra = load_migrations(MIRAGE_MIGRATIONS_DIR);
  extra.push_back({999, "999_broken.sql", "CREATE TABLE half_done (x int); SELECT no_such_function();"});
  EXPECT_THROW(migrate(*conn_, extra), Error);
  EXPECT_EQ(conn_->exec("SELECT to_regclass('half_done') IS NULL").value(0, 0), "t");
  EXPECT_EQ(conn_->exec("SELECT count(*) FROM schema_migrations WHERE version = 999").value(0, 0), "0");
}

TEST_F(Db, LedgerKeepsTheBalanceAndNeverGoesNegative) {
  migrate_all();
  const std::string id = user("alice");
  conn_->exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) VALUES ($1, 1200, 'grant')", {id});
  conn_->exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) VALUES ($1, -300, 'stream')", {id});
  EXPECT_EQ(balance(id), 900);
  // Spending more than the balance fails in the database, and changes nothing.
  EXPECT_EQ(sqlstate_of([&] {
              conn_->exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) VALUES ($1, -901, 'x')", {id});
            }),
            "23514");  // check_violation
  EXPECT_EQ(balance(id), 900);
  EXPECT_EQ(conn_->exec("SELECT count(*) FROM credit_ledger").value(0, 0), "2");
  // Append-only.
  EXPECT_FALSE(sqlstate_of([&] { conn_->exec("DELETE FROM credit_ledger"); }).empty());
  EXPECT_FALSE(sqlstate_of([&] { conn_->exec("UPDATE credit_ledger SET delta_seconds = 5"); }).empty());
}

TEST_F(Db, UsernamesAreUniqueWhateverTheCaseAndShaped) {
  migrate_all();
  user("bob");
  EXPECT_EQ(sqlstate_of([&] {
              conn_->exec("INSERT INTO users (username, email, password_hash) VALUES ('BOB', 'b@x', 'x')");
            }),
            "23514");  // upper case is not a valid username at all
  EXPECT_EQ(sqlstate_of([&] { user("bob"); }), "23505");  // unique_violation
  // SQL metacharacters travel as values, never as SQL.
  EXPECT_EQ(sqlstate_of([&] { user("x'; DROP TABLE users; --"); }), "23514");
  EXPECT_EQ(conn_->exec("SELECT count(*) FROM users").value(0, 0), "1");
}

TEST_F(Db, TransactionRollsBackUnlessCommitted) {
  migrate_all();
  {
    Transaction tx(*conn_);
    user("carol");
  }
  EXPECT_EQ(conn_->exec("SELECT count(*) FROM users").value(0, 0), "0");
  {
    Transaction tx(*conn_);
    user("carol");
    tx.commit();
  }
  EXPECT_EQ(conn_->exec("SELECT count(*) FROM users").value(0, 0), "1");
}

TEST(Connection, BadUrlIsAClearError) {
  try {
    Connection c("postgresql://test@127.0.0.1:1/nowhere?connect_timeout=2");
    FAIL() << "connected to nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect to the database"), std::string::npos);
  }
}

}  // namespace
}  // namespace mirage::db

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new mirage::db::Environment);
  return RUN_ALL_TESTS();
}
