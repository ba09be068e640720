// failover-bench: what a streamer and its viewers lose when a media worker
// dies or is drained, and what the nginx front saves a worker with many HLS
// viewers. One API replica and two media workers of capacity 1 as processes
// on loopback (tests/cluster/process_cluster.h) behind nginx as
// deploy/nginx/render makes it, the sample styles model at 160x120 on the
// CPU; the publisher and the viewer are tests/cluster/live_clients.h's,
// which reconnect as the web app and examples/python do.
//
//   failover-bench [--trials N] [--drains N] [--hls-seconds S]
//
// Tables:
//   failover  kill -9 of the worker holding a live stream → the stream row
//             names the other worker (moved), and → the viewer's first
//             processed frame from the new worker; p50 and max over N trials
//             (--worker-timeout-seconds 5 is most of it)
//   drain     SIGTERM to the stream's worker → it exited; the viewer's
//             longest wait between two frames across the move (the gap)
//   HLS       1, 10 and 100 viewers polling the playlist twice a second and
//             fetching every new segment for S seconds, through the front
//             and directly at the worker: requests the viewers made, requests
//             that reached the worker (front: its access log's upstream
//             field; direct: every one), per segment
#include <gst/gst.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "live_clients.h"
#include "process_cluster.h"
#include "sample_models.h"

namespace {

using mirage::test::Clock;
using mirage::test::LiveClients;
using mirage::test::ProcessCluster;
using mirage::test::seconds_between;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

struct Samples {
  std::vector<double> s;
  int failed = 0;
  std::string cells() {
    std::sort(s.begin(), s.end());
    if (s.empty()) return "– | –";
    char line[64];
    std::snprintf(line, sizeof line, "%.2f | %.2f", s[s.size() / 2], s.back());
    return line;
  }
};

// One HLS viewer: the playlist twice a second, each segment it lists once.
void hls_viewer(const std::string& host, int port, const std::string& playlist, Clock::time_point until,
                std::atomic<long>* requests, std::set<std::string>* seen, std::mutex* seen_mutex) {
  const std::string dir = playlist.substr(0, playlist.rfind('/') + 1);
  std::set<std::string> mine;
  while (Clock::now() < until) {
    auto r = mirage::test::http_at(host, uint16_t(port), "GET", playlist);
    std::istringstream lines(r.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.size() < 4 || line.compare(line.size() - 3, 3, ".ts") != 0 || mine.count(line)) continue;
      mine.insert(line);
      if (mirage::test::http_at(host, uint16_t(port), "GET", dir + line).status == 200) {
        ++*requests;
        std::lock_guard<std::mutex> lock(*seen_mutex);
        seen->insert(line);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int trials = 10, drains = 5, hls_seconds = 8;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--trials")) trials = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--drains")) drains = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--hls-seconds")) hls_seconds = std::atoi(argv[i + 1]);
  }
  char dir[] = "/tmp/mirage-failover-bench-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  mirage::test::ClusterOptions options;
  options.model = std::string(dir) + "/styles.pt";
  if (auto status = mirage::models::write_styles(options.model); !status.ok()) {
    std::fprintf(stderr, "failover-bench: %s\n", status.message().c_str());
    return 1;
  }
  options.replicas = 1;
  options.front = true;
  options.netns = false;  // loopback: the numbers are the design's, not a veth's
  options.api_args = {"--meter-seconds", "1", "--registrations-per-address", "100000"};
  // Direct HLS viewers all come from 127.0.0.1.
  options.worker_args = {"--media-connections-per-address", "1000", "--hls-viewers-per-address", "1000"};
  ProcessCluster cluster(options);
  if (const std::string failed = cluster.wait_ready(); !failed.empty()) {
    std::fprintf(stderr, "failover-bench: %s\n", failed.c_str());
    cluster.keep_files();
    return 1;
  }
  int users = 0;
  // A live stream with its clients feeding and watching; the worker it is on.
  auto go_live = [&](std::unique_ptr<LiveClients>* clients, std::string* token, std::string* worker) {
    const std::string name = "bench" + std::to_string(++users);
    *token = cluster.user(name, 50);
    auto started = cluster.call(0, "POST", "/api/streams", R"({"title":"bench"})", *token);
    if (started.status != 201) {
      std::fprintf(stderr, "failover-bench: start failed: %d %s\n", started.status, started.body.c_str());
      return false;
    }
    *worker = parse(started.body)["ingest"]["worker"].GetString();
    *clients = std::make_unique<LiveClients>(cluster, name, *token);
    return (*clients)->pump_until([&] { return (*clients)->frames() >= 5; }, 30000);
  };
  auto restart = [&](const std::string& worker) {
    cluster.start_worker(ProcessCluster::worker_index(worker));
    return cluster.wait_ready(30000).empty();
  };

  Samples moved, back;
  for (int t = 0; t < trials; ++t) {
    std::unique_ptr<LiveClients> clients;
    std::string token, worker;
    if (!go_live(&clients, &token, &worker)) {
      ++back.failed;
      continue;
    }
    const int again = clients->viewer_connects() + 1;
    cluster.worker(ProcessCluster::worker_index(worker)).kill(SIGKILL);
    const auto killed = Clock::now();
    mirage::db::Connection db(cluster.database_url());
    bool placed = false;
    const bool ok = clients->pump_until(
        [&] {
          if (!placed &&
              db.exec("SELECT w.name <> $1 FROM streams s JOIN media_workers w ON w.id = s.worker_id "
                      "WHERE s.ended_at IS NULL",
                      {worker}).value(0, 0) == "t") {
            placed = true;
            moved.s.push_back(seconds_between(killed, Clock::now()));
          }
          return clients->frames_on(again) >= 1;
        },
        30000);
    if (ok) back.s.push_back(seconds_between(killed, *clients->first_frame_on(again)));
    else ++back.failed;
    cluster.call(0, "POST", "/api/streams/current/stop", "", token);
    if (!restart(worker)) break;
  }

  Samples gap, exited;
  for (int t = 0; t < drains; ++t) {
    std::unique_ptr<LiveClients> clients;
    std::string token, worker;
    if (!go_live(&clients, &token, &worker)) {
      ++gap.failed;
      continue;
    }
    auto& process = cluster.worker(ProcessCluster::worker_index(worker));
    const auto t0 = Clock::now();
    ::kill(process.pid(), SIGTERM);
    const bool ok = clients->pump_until([&] { return !process.alive(); }, 40000);
    const auto end = Clock::now();
    if (ok && clients->pump_until([&] { return clients->frames_after(end) >= 3; }, 10000)) {
      exited.s.push_back(seconds_between(t0, end));
      gap.s.push_back(clients->longest_gap_after(t0));
    } else {
      ++gap.failed;
    }
    cluster.call(0, "POST", "/api/streams/current/stop", "", token);
    if (!restart(worker)) break;
  }

  // HLS: one stream, viewers through the front and directly.
  struct HlsRow {
    int viewers;
    const char* via;
    long requests = 0, reached = 0;
    size_t segments = 0;
  };
  std::vector<HlsRow> hls;
  {
    std::unique_ptr<LiveClients> clients;
    std::string token, worker;
    if (go_live(&clients, &token, &worker)) {
      const std::string user = "bench" + std::to_string(users);
      const auto& place = cluster.place(worker);
      for (int viewers : {1, 10, 100})
        for (const char* via : {"nginx front", "direct"}) {
          const bool front = !std::strcmp(via, "nginx front");
          const std::string playlist = (front ? "/w/" + worker : std::string()) + "/live/" + user + "/index.m3u8";
          const long before = cluster.front_upstream_requests(".ts");
          std::atomic<long> requests{0};
          std::set<std::string> seen;
          std::mutex seen_mutex;
          const auto until = Clock::now() + std::chrono::seconds(hls_seconds);
          std::vector<std::thread> threads;
          for (int v = 0; v < viewers; ++v)
            threads.emplace_back(hls_viewer, front ? std::string("127.0.0.1") : place.host,
                                 front ? cluster.front_port() : place.port, playlist, until, &requests, &seen,
                                 &seen_mutex);
          clients->pump(hls_seconds * 1000 + 500);  // the publisher goes on meanwhile
          for (auto& t : threads) t.join();
          HlsRow row{viewers, via};
          row.requests = requests;
          row.segments = seen.size();
          row.reached = front ? cluster.front_upstream_requests(".ts") - before : row.requests;
          hls.push_back(row);
        }
      cluster.call(0, "POST", "/api/streams/current/stop", "", token);
    }
  }

  std::printf("\n## Failover and drain (1 API replica, 2 workers, loopback, behind nginx; worker timeout 5 s)\n\n");
  std::printf("| event | trials | failed | p50 s | max s |\n|---|---|---|---|---|\n");
  std::printf("| kill -9 → stream placed on the other worker | %zu | %d | %s |\n", moved.s.size(), back.failed,
              moved.cells().c_str());
  std::printf("| kill -9 → the viewer's first processed frame from it | %zu | %d | %s |\n", back.s.size(), back.failed,
              back.cells().c_str());
  std::printf("| SIGTERM → the drained worker exited | %zu | %d | %s |\n", exited.s.size(), gap.failed,
              exited.cells().c_str());
  std::printf("| drain: the viewer's longest gap between two frames | %zu | %d | %s |\n", gap.s.size(), gap.failed,
              gap.cells().c_str());
  std::printf("\n## HLS segments reaching the worker (%d s of viewers polling twice a second)\n\n", hls_seconds);
  std::printf("| viewers | through | segment requests | reached the worker | segments | worker fetches per segment |\n"
              "|---|---|---|---|---|---|\n");
  for (const auto& r : hls)
    std::printf("| %d | %s | %ld | %ld | %zu | %.2f |\n", r.viewers, r.via, r.requests, r.reached, r.segments,
                r.segments ? double(r.reached) / double(r.segments) : 0.0);
  std::fflush(stdout);
  std::system((std::string("rm -rf ") + dir).c_str());
  return 0;
}
