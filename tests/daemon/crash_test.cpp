// miraged killed with SIGKILL while a stream is live, then restarted: the
// ledger stays consistent. Billing is never doubled (charged seconds never
// exceed the stream's age) and little is lost (after the restart, metering
// catches up from the last billed point).
//
// Real time is needed: the daemon meters on its own clock (every second
// here); waits are polls with deadlines.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "connection.h"
#include "http_client.h"
#include "pg_cluster.h"

extern char** environ;

namespace mirage {
namespace {

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool eventually(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

class Daemon {
 public:
  Daemon(const std::string& url, int port) {
    std::vector<std::string> args = {MIRAGED_PATH,
                                     "serve",
                                     "--database-url", url,
                                     "--http-addr", "127.0.0.1:" + std::to_string(port),
                                     "--meter-seconds", "1",
                                     "--argon2-memory-kib", "1024",
                                     "--argon2-iterations", "1"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn(&pid_, MIRAGED_PATH, nullptr, nullptr, argv.data(), environ);
  }
  ~Daemon() { kill(SIGKILL); }
  void kill(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

TEST(Crash, KillDashNineKeepsTheLedgerConsistent) {
  test::PgCluster cluster;
  const std::string url = cluster.url();
  const int port = free_port();
  auto up = [&] { return test::http(uint16_t(port), "GET", "/api/streams/nobody").status == 404; };

  auto daemon = std::make_unique<Daemon>(url, port);
  ASSERT_TRUE(eventually(up, std::chrono::seconds(20)));
  ASSERT_EQ(test::http(port, "POST", "/api/auth/register",
                       R"({"username":"sam","email":"s@example.org","password":"password123"})").status, 201);
  db::Connection db(url);
  db.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) "
          "SELECT id, 6000, 'grant' FROM users WHERE username = 'sam'");
  auto login = test::http(port, "POST", "/api/auth/login", R"({"username":"sam","password":"password123"})");
  const std::string token = login.body.substr(login.body.find("\"token\":\"") + 9, 43);
  ASSERT_EQ(test::http(port, "POST", "/api/streams", R"({"title":"crash"})", {{"Authorization", "Bearer " + token}}).status, 201);

  auto charges = [&] {
    return std::stoi(db.exec("SELECT count(*) FROM credit_ledger WHERE reason LIKE 'stream %'").value(0, 0));
  };
  ASSERT_TRUE(eventually([&] { return charges() >= 2; }, std::chrono::seconds(20)));
  daemon->kill(SIGKILL);
  const int before_restart = charges();

  // Down for a while: that time is still owed and billed after the restart.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  daemon = std::make_unique<Daemon>(url, port);
  ASSERT_TRUE(eventually(up, std::chrono::seconds(20)));
  ASSERT_TRUE(eventually([&] { return charges() >= before_restart + 2; }, std::chrono::seconds(20)));
  daemon->kill(SIGKILL);

  db::Result r = db.exec(
      "SELECT u.balance_seconds, (SELECT sum(delta_seconds) FROM credit_ledger WHERE user_id = u.id), "
      "       -(SELECT sum(delta_seconds) FROM credit_ledger WHERE user_id = u.id AND reason LIKE 'stream %'), "
      "       s.seconds_billed, floor(extract(epoch FROM now() - s.started_at))::bigint "
      "FROM users u JOIN streams s ON s.user_id = u.id WHERE u.username = 'sam'");
  const long long balance = std::stoll(r.value(0, 0)), ledger_sum = std::stoll(r.value(0, 1));
  const long long charged = std::stoll(r.value(0, 2)), billed = std::stoll(r.value(0, 3));
  const long long age = std::stoll(r.value(0, 4));
  EXPECT_EQ(balance, ledger_sum);       // the balance is the ledger
  EXPECT_EQ(charged, billed);           // the stream's record matches its ledger entries
  EXPECT_LE(charged, age + 1);          // never billed twice
  // Unbilled at most: the last metering interval (1 s) before the final kill,
  // plus scheduling slack on a loaded machine.
  EXPECT_GE(charged, age - 5);          // the downtime was billed after the restart
}

}  // namespace
}  // namespace mirage
