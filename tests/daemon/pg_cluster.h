// A throwaway PostgreSQL cluster for tests: initdb into a private folder,
// start on a free loopback port and a Unix socket in that folder, create a
// database, stop and delete everything at the end. Never touches a system
// database. As root, the server runs as the `postgres` user (PostgreSQL
// refuses to run as root).
#pragma once

#include <arpa/inet.h>
#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace mirage::test {

// A TCP port on 127.0.0.1 that nothing listens on right now.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("no free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}
class PgCluster {
 public:
  // |more_addresses|: further addresses to listen on (comma-separated: the
  // host ends of a test's network namespaces), and |more_clients| the CIDR
  // whose clients may connect there without a password.
  explicit PgCluster(const std::string& more_addresses = "", const std::string& more_clients = "") {
    bin_ = find_bin();
    char pattern[] = "/tmp/mirage-pg-XXXXXX";
    if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    port_ = free_port();
    if (geteuid() == 0) {
      as_ = "runuser -u postgres -- ";
      run("chown postgres:postgres '" + dir_ + "'");
    }
    run(as_ + bin_ + "/initdb -D '" + dir_ + "/data' -U test --auth=trust -E UTF8 --no-locale --no-sync >'" +
        dir_ + "/initdb.log' 2>&1");
    if (!more_clients.empty())
      run("echo 'host all all " + more_clients + " trust' >> '" + dir_ + "/data/pg_hba.conf'");
    const std::string listen = "127.0.0.1" + (more_addresses.empty() ? "" : "," + more_addresses);
    start_ = as_ + bin_ + "/pg_ctl -D '" + dir_ + "/data' -l '" + dir_ + "/pg.log' -w -t 30 -o \"-k " + dir_ +
             " -p " + std::to_string(port_) + " -c listen_addresses=" + listen + " -c fsync=off\" start >/dev/null";
    run(start_);
    run(as_ + bin_ + "/createdb -h '" + dir_ + "' -p " + std::to_string(port_) + " -U test mirage");
  }
  ~PgCluster() {
    std::system((as_ + bin_ + "/pg_ctl -D '" + dir_ + "/data' -m immediate -w stop >/dev/null 2>&1").c_str());
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // A libpq connection string for the test database, over loopback TCP.
  std::string url() const {
    return "postgresql://test@127.0.0.1:" + std::to_string(port_) + "/mirage";
  }

  int port() const { return port_; }

  // Stops the server (fast: sessions are cut, committed work is kept), waits
  // |down_ms| and starts it again on the same port.
  void restart(int down_ms) {
    run(as_ + bin_ + "/pg_ctl -D '" + dir_ + "/data' -m fast -w stop >/dev/null");
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
    run(start_);
  }

  // A fresh, empty database in the same cluster.
  std::string create_database(const std::string& name) const {
    run(as_ + bin_ + "/createdb -h '" + dir_ + "' -p " + std::to_string(port_) + " -U test " + name);
    return "postgresql://test@127.0.0.1:" + std::to_string(port_) + "/" + name;
  }

 private:
  static void run(const std::string& command) {
    if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
  }

  static std::string find_bin() {
    glob_t g;
    std::string bin;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0 && g.gl_pathc > 0) {
      bin = g.gl_pathv[g.gl_pathc - 1];  // the newest version
      bin.resize(bin.size() - std::string("/initdb").size());
    }
    globfree(&g);
    if (bin.empty()) throw std::runtime_error("PostgreSQL server not installed (./dev setup installs it)");
    return bin;
  }



  std::string bin_, dir_, as_, start_;
  int port_ = 0;
};

}  // namespace mirage::test
