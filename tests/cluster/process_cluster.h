// The deployment shape, as processes, for the cluster test and
// cluster-bench: PostgreSQL, API replicas (`miraged serve`, no model) and
// media workers (`miraged worker`, the sample styles model), sharing
// nothing but the database: no files (each worker has its own HLS folder and
// GStreamer registry), no sockets.
//
// With |netns| and root, each worker runs in its own network namespace,
// joined to the host by a veth pair made here (10.251.K.0/30: .1 the host
// end, where it reaches PostgreSQL; .2 its own, where clients reach it);
// otherwise every process listens on 127.0.0.1 ports. where() says which.
#pragma once

#include <rapidjson/document.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../media/media_util.h"
#include "child_process.h"
#include "connection.h"
#include "http_client.h"
#include "pg_cluster.h"

namespace mirage::test {

struct ClusterOptions {
  int replicas = 2, workers = 2;
  int capacity = 1;          // per worker
  int style_seconds = 30;    // how long a viewer's style lasts
  bool netns = true;         // namespaces when root may make them
  std::string model;         // "": $MIRAGE_TEST_MODELS/styles.pt
  std::vector<std::string> api_args;     // more flags for every replica
  std::vector<std::string> worker_args;  // more flags for every worker
  // An nginx front (deploy/nginx/render) on a loopback port: the workers
  // publish their URLs under it (/w/NAME/) and believe its X-Forwarded-For.
  bool front = false;
};

class ProcessCluster {
 public:
  // One worker: where it listens, and how it reaches the database.
  struct Place {
    std::string name, netns;  // netns: "" on loopback
    std::string host;         // its address, as clients reach it
    int port = 0;             // its media port
    std::string db_host;      // PostgreSQL, as it reaches it
  };

  explicit ProcessCluster(ClusterOptions options) : options_(std::move(options)) {
    char dir[] = "/tmp/mirage-cluster-XXXXXX";  // one per cluster: a test binary may make several
    if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    sh("chmod 755 " + dir_);
    std::string host_ends;
    const bool netns = options_.netns && geteuid() == 0 && make_namespaces(&host_ends);
    if (!netns) {
      for (int i = 0; i < options_.workers; ++i)
        places_.push_back({"w" + std::to_string(i + 1), "", "127.0.0.1", free_port(), "127.0.0.1"});
      where_ = "workers on loopback ports";
      if (options_.netns) where_ += " (network namespaces need root with CAP_NET_ADMIN)";
    } else {
      where_ = "workers in network namespaces";
      for (const auto& w : places_) where_ += " " + w.netns + " (" + w.host + ")";
    }
    pg_ = std::make_unique<PgCluster>(host_ends, netns ? "10.251.0.0/16" : "");
    api_ports_.resize(size_t(options_.replicas));
    apis_.resize(size_t(options_.replicas));
    workers_.resize(size_t(options_.workers));
    if (options_.front) front_port_ = free_port();
    for (int i = 0; i < options_.replicas; ++i) start_api(i);
    for (int i = 0; i < options_.workers; ++i) start_worker(i);
    if (options_.front) start_front();
  }

  ~ProcessCluster() {
    // SIGTERM, not the SIGKILL a ChildProcess ends with: nginx's master
    // then stops its workers, which SIGKILL would leave listening.
    if (front_) front_->kill(SIGTERM);
    front_.reset();
    workers_.clear();
    apis_.clear();
    pg_.reset();
    for (const auto& w : places_)
      if (!w.netns.empty()) sh("ip netns del " + w.netns);
    if (!keep_) sh("rm -rf " + dir_);
  }

  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  // Waits until every replica answers and every worker has registered; ""
  // or what did not come up, with the log to read.
  std::string wait_ready(int ms = 60000) {
    for (int i = 0; i < options_.replicas; ++i)
      if (!WsClient::spin([&] { return call(i, "GET", "/api/streams/nobody").status == 404; }, ms))
        return "API replica " + std::to_string(i + 1) + " did not start (" + dir_ + "/api" + std::to_string(i + 1) + ".log)";
    db::Connection db(pg_->url());
    const std::string sql = "SELECT count(*) FROM media_workers WHERE heartbeat_at > now() - interval '5 s'";
    if (!WsClient::spin([&] { return db.exec(sql).value(0, 0) == std::to_string(options_.workers); }, ms))
      return "the workers did not register (" + dir_ + "/w*.log)";
    return "";
  }

  void start_api(int i) {
    if (api_ports_[size_t(i)] == 0) api_ports_[size_t(i)] = free_port();
    std::vector<std::string> args = {MIRAGED_PATH, "serve", "--database-url", pg_->url(), "--http-addr",
                                     "127.0.0.1:" + std::to_string(api_ports_[size_t(i)]), "--argon2-memory-kib", "1024",
                                     "--argon2-iterations", "1", "--style-cooldown-seconds", "0", "--style-seconds",
                                     std::to_string(options_.style_seconds)};
    args.insert(args.end(), options_.api_args.begin(), options_.api_args.end());
    apis_[size_t(i)] = std::make_unique<ChildProcess>(args, dir_ + "/api" + std::to_string(i + 1) + ".log");
  }

  void start_worker(int i) {
    const Place& w = places_[size_t(i)];
    std::vector<std::string> args;
    if (!w.netns.empty()) args = {"ip", "netns", "exec", w.netns};
    const std::vector<std::string> worker = {
        MIRAGED_PATH, "worker", "--database-url",
        "postgresql://test@" + w.db_host + ":" + std::to_string(pg_->port()) + "/mirage", "--worker-name", w.name,
        "--capacity", std::to_string(options_.capacity), "--model", model(), "--media-addr",
        w.host + ":" + std::to_string(w.port), "--srt-addr", "", "--rtsp-addr", "", "--hls-dir",
        dir_ + "/hls-" + w.name, "--media-width", "160", "--media-height", "120", "--pipelines-dir",
        MIRAGE_PIPELINES_DIR, "--ingest-silence-seconds", "60"};
    args.insert(args.end(), worker.begin(), worker.end());
    if (options_.front) {
      const std::vector<std::string> behind = {"--public-media-url",
                                               "http://127.0.0.1:" + std::to_string(front_port_) + "/w/" + w.name,
                                               "--trusted-proxies", "127.0.0.1/32,10.251.0.0/16"};
      args.insert(args.end(), behind.begin(), behind.end());
    }
    args.insert(args.end(), options_.worker_args.begin(), options_.worker_args.end());
    workers_[size_t(i)] = std::make_unique<ChildProcess>(
        args, dir_ + "/" + w.name + ".log", std::vector<std::string>{"GST_REGISTRY=" + dir_ + "/registry-" + w.name + ".bin"});
  }

  HttpResponse call(int replica, const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& token = "") {
    std::map<std::string, std::string> headers;
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    return http(uint16_t(api_ports_[size_t(replica)]), method, path, body, headers);
  }

  // Through the nginx front (options.front).
  HttpResponse call_front(const std::string& method, const std::string& path, const std::string& body = "",
                          const std::string& token = "") {
    std::map<std::string, std::string> headers;
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    return http(uint16_t(front_port_), method, path, body, headers);
  }
  int front_port() const { return front_port_; }
  // Requests in the front's access log (deploy/nginx/mirage.conf's format)
  // that name |needle| and reached a worker (an upstream address, not "-").
  long front_upstream_requests(const std::string& needle) const {
    FILE* f = std::fopen((dir_ + "/front/access.log").c_str(), "r");
    if (!f) return 0;
    long n = 0;
    char line[4096];
    while (std::fgets(line, sizeof line, f)) {
      const std::string l = line;
      if (l.find(needle) != std::string::npos && l.find("upstream=-") == std::string::npos) ++n;
    }
    std::fclose(f);
    return n;
  }
  int replicas() const { return options_.replicas; }

  // Signs |name| up through replica 1 with |credits|; "" or its session token.
  std::string user(const std::string& name, int credits = 0) {
    if (call(0, "POST", "/api/auth/register",
             R"({"username":")" + name + R"(","email":")" + name + R"(@example.org","password":"password123"})")
            .status != 201)
      return "";
    if (credits) {
      db::Connection db(pg_->url());
      db.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) SELECT id, $2, 'test' FROM users WHERE username = $1",
              {name, std::to_string(credits * 600)});
    }
    rapidjson::Document login;
    login.Parse(call(0, "POST", "/api/auth/login", R"({"username":")" + name + R"(","password":"password123"})").body.c_str());
    return login.IsObject() && login.HasMember("token") ? login["token"].GetString() : "";
  }

  const Place& place(const std::string& name) const {
    for (const auto& p : places_)
      if (p.name == name) return p;
    throw std::runtime_error("no worker " + name);
  }
  static std::string media_base(const Place& w) { return w.host + ":" + std::to_string(w.port); }
  ChildProcess& api(int i) { return *apis_[size_t(i)]; }
  ChildProcess& worker(int i) { return *workers_[size_t(i)]; }
  // Worker "wN"'s index.
  static int worker_index(const std::string& name) { return std::stoi(name.substr(1)) - 1; }
  PgCluster& postgres() { return *pg_; }
  int api_port(int i) const { return api_ports_[size_t(i)]; }
  std::string database_url() const { return pg_->url(); }
  const std::string& where() const { return where_; }
  const std::string& dir() const { return dir_; }
  void keep_files() { keep_ = true; }  // for a failed test's logs

 private:
  // nginx as deploy/nginx/render makes it, in the foreground; waits until
  // it answers.
  void start_front() {
    std::string command = "python3 " MIRAGE_DEPLOY_DIR "/nginx/render --out " + dir_ + "/front --listen 127.0.0.1:" +
                          std::to_string(front_port_) + " --app 127.0.0.1:9 --processes 1";
    for (int port : api_ports_) command += " --api 127.0.0.1:" + std::to_string(port);
    for (const auto& w : places_) command += " --worker " + w.name + "=" + media_base(w);
    if (!sh(command)) throw std::runtime_error("deploy/nginx/render failed: " + command);
    front_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/sbin/nginx", "-p", dir_ + "/front", "-c", dir_ + "/front/nginx.conf", "-g",
                                 "daemon off;"},
        dir_ + "/front.log");
    if (!WsClient::spin([&] { return call_front("GET", "/api/streams/nobody").status != 0; }, 10000))
      throw std::runtime_error("nginx did not start (" + dir_ + "/front.log)");
  }

  std::string model() const {
    if (!options_.model.empty()) return options_.model;
    const char* dir = std::getenv("MIRAGE_TEST_MODELS");
    return std::string(dir ? dir : ".") + "/styles.pt";
  }

  static bool sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

  bool make_namespaces(std::string* host_ends) {
    const int base = int(getpid() % 60) * 4;  // K = base + i
    for (int i = 0; i < options_.workers; ++i) {
      Place w;
      w.name = "w" + std::to_string(i + 1);
      w.netns = "mirage-" + std::to_string(getpid()) + "-" + w.name;
      const std::string net = "10.251." + std::to_string(base + i) + ".";
      const std::string veth = "mc" + std::to_string(getpid() % 100000) + "h" + std::to_string(i);
      w.host = net + "2";
      w.port = 8081;
      w.db_host = net + "1";
      places_.push_back(w);
      if (!(sh("ip netns add " + w.netns) && sh("ip -n " + w.netns + " link set lo up") &&
            sh("ip link add " + veth + " type veth peer name eth0 netns " + w.netns) &&
            sh("ip addr add " + net + "1/30 dev " + veth) && sh("ip link set " + veth + " up") &&
            sh("ip -n " + w.netns + " addr add " + net + "2/30 dev eth0") &&
            sh("ip -n " + w.netns + " link set eth0 up"))) {
        for (const auto& p : places_) sh("ip netns del " + p.netns);  // takes its veth end along
        places_.clear();
        return false;
      }
      *host_ends += (host_ends->empty() ? "" : ",") + w.db_host;
    }
    return true;
  }

  ClusterOptions options_;
  std::string dir_, where_;
  bool keep_ = false;
  std::vector<Place> places_;
  std::unique_ptr<PgCluster> pg_;
  std::vector<int> api_ports_;
  std::vector<std::unique_ptr<ChildProcess>> apis_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  int front_port_ = 0;
  std::unique_ptr<ChildProcess> front_;
};

}  // namespace mirage::test
