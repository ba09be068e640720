// cluster-bench: how long the control plane takes to reach a media worker
// when the two share nothing but PostgreSQL (a row, then NOTIFY; the worker
// also polls every 2 s). Two API replicas and two media workers as
// processes on loopback (tests/cluster/process_cluster.h), the sample styles
// model at 160x120 on the CPU. Each row is measured through the replica that
// started the stream and through the other one, side by side: the design
// promises no difference.
//
//   cluster-bench [--samples N]
//
// Rows: a comment POSTed until it arrives on a viewer's /events; a viewer's
// style POSTed until the first processed frame in that style reaches
// /watch; POST /api/streams until the first processed frame of a fresh
// stream (placement, the worker's reconcile, the pipeline and the model
// built, the publisher's first frames); the stop until the worker closed
// the publisher's socket.
#include <gst/gst.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "process_cluster.h"
#include "sample_models.h"

namespace {

using Clock = std::chrono::steady_clock;
using mirage::WsClient;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

double brightness(const std::string& jpeg) {
  const auto rgb = mirage::mean_rgb(jpeg);
  return (rgb[0] + rgb[1] + rgb[2]) / 3;
}

struct Samples {
  std::vector<double> ms;
  int failed = 0;
  void add(bool ok, double v) { ok ? ms.push_back(v) : void(++failed); }
  std::string cells() {
    std::sort(ms.begin(), ms.end());
    if (ms.empty()) return "| 0 | " + std::to_string(failed) + " | – | – | – |";
    char line[160];
    std::snprintf(line, sizeof line, "| %zu | %d | %.1f | %.1f | %.1f |", ms.size(), failed, ms[ms.size() / 2],
                  ms[std::min(ms.size() - 1, size_t(double(ms.size()) * 0.99))], ms.back());
    return line;
  }
};

// A live stream of |user| with a publisher feeding black frames at 15 fps
// and a viewer on /watch and /events.
struct LiveStream {
  std::unique_ptr<WsClient> ingest, watcher, events;
  std::string ingest_url;
  std::vector<std::string> frames = mirage::jpeg_frames(15, "black", 160, 120);
  size_t next = 0;
  Clock::time_point last_frame = Clock::now();

  bool connect(const rapidjson::Document& started) {
    ingest_url = started["ingest"]["websocket"].GetString();
    ingest = WsClient::once_open(ingest_url);
    watcher = WsClient::once_open(started["watch"]["websocket"].GetString());
    events = WsClient::once_open(started["watch"]["events"].GetString());
    return ingest && watcher && events;
  }
  // Runs the main loop until |done|, sending a frame every 66 ms meanwhile.
  bool feed_until(const std::function<bool()>& done, int ms) {
    return WsClient::spin(
        [&] {
          if (ingest->open() && Clock::now() - last_frame >= std::chrono::milliseconds(66)) {
            ingest->send(frames[next++ % frames.size()]);
            last_frame = Clock::now();
          }
          return done();
        },
        ms);
  }
  bool has_event(const std::string& needle) {
    for (const auto& t : events->text())
      if (t.find(needle) != std::string::npos) return true;
    return false;
  }
};

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int samples = 20;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--samples")) samples = std::atoi(argv[i + 1]);

  char dir[] = "/tmp/mirage-cluster-bench-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  mirage::test::ClusterOptions options;
  options.model = std::string(dir) + "/styles.pt";
  if (auto status = mirage::models::write_styles(options.model); !status.ok()) {
    std::fprintf(stderr, "cluster-bench: %s\n", status.message().c_str());
    return 1;
  }
  options.capacity = 2;
  options.style_seconds = 1;
  options.api_args = {"--comments-per-window", "10000"};
  options.netns = false;  // loopback: the numbers are the design's, not a veth's
  mirage::test::ProcessCluster cluster(options);
  if (const std::string failed = cluster.wait_ready(); !failed.empty()) {
    std::fprintf(stderr, "cluster-bench: %s\n", failed.c_str());
    cluster.keep_files();
    return 1;
  }
  const std::string streamer = cluster.user("bencher", 50), viewer = cluster.user("viewer");

  Samples comment[2], style[2], first_frame[2], stop[2];
  for (int round = 0; round < 4; ++round) {
    // Started through replica round % 2, driven through round / 2: each
    // pairing once. [0]: driven through the replica that started it.
    const int start = round % 2, drive = round / 2, via = start == drive ? 0 : 1;
    auto t0 = Clock::now();
    auto started = cluster.call(start, "POST", "/api/streams", R"({"title":"bench"})", streamer);
    if (started.status != 201) {
      std::fprintf(stderr, "cluster-bench: start failed: %d %s\n", started.status, started.body.c_str());
      return 1;
    }
    LiveStream live;
    const auto doc = parse(started.body);
    const bool connected = live.connect(doc);
    first_frame[start].add(connected && live.feed_until([&] { return !live.watcher->binary().empty(); }, 30000), ms_since(t0));
    if (!connected) continue;
    live.feed_until([&] { return live.watcher->binary().size() >= 5; }, 10000);
    live.feed_until([&] { return brightness(live.watcher->binary().back()) < 60; }, 10000);  // black, unstyled

    for (int i = 0; i < samples; ++i) {
      const std::string text = "bench " + std::to_string(round) + "." + std::to_string(i);
      t0 = Clock::now();
      const bool posted = cluster.call(drive, "POST", "/api/streams/bencher/comments", "{\"text\":\"" + text + "\"}", viewer).status == 201;
      comment[via].add(posted && live.feed_until([&] { return live.has_event("\"text\":\"" + text + "\""); }, 5000), ms_since(t0));
    }
    // Styles, alternately invert (black frames turn white) and sepia (they
    // stay black), each posted once the last one's second has run out, so
    // that it applies at once instead of queueing.
    const double plain = brightness(live.watcher->binary().back());
    for (int i = 0; i < samples / 4 + 1; ++i) {
      const bool invert = i % 2 == 0;
      live.feed_until([] { return false; }, 1300);
      t0 = Clock::now();
      const bool posted = cluster.call(drive, "POST", "/api/streams/bencher/styles",
                                       invert ? R"({"style":"invert"})" : R"({"style":"sepia"})", viewer).status == 201;
      style[via].add(posted && live.feed_until(
                                   [&] {
                                     const double b = brightness(live.watcher->binary().back());
                                     return invert ? b > plain + 100 : b < plain + 50;
                                   },
                                   5000),
                     ms_since(t0));
    }
    t0 = Clock::now();
    const bool stopped = cluster.call(drive, "POST", "/api/streams/current/stop", "", streamer).status == 200;
    stop[via].add(stopped && live.feed_until([&] { return !live.ingest->open(); }, 5000), ms_since(t0));
  }

  // More starts: POST /api/streams until the first processed frame, then stop.
  for (int i = 0; i < 6; ++i) {
    const int start = i % 2;
    const auto t0 = Clock::now();
    auto started = cluster.call(start, "POST", "/api/streams", R"({"title":"bench"})", streamer);
    LiveStream live;
    const bool ok = started.status == 201 && live.connect(parse(started.body));
    first_frame[start].add(ok && live.feed_until([&] { return !live.watcher->binary().empty(); }, 30000), ms_since(t0));
    cluster.call(start, "POST", "/api/streams/current/stop", "", streamer);
  }

  std::printf("\n## Control plane → media worker through PostgreSQL (2 API replicas, 2 workers, loopback; %s)\n\n",
              cluster.where().c_str());
  std::printf("| from the request to | through | samples | failed | p50 ms | p99 ms | max ms |\n"
              "|---|---|---:|---:|---:|---:|---:|\n");
  const char* same_or_other[2] = {"the replica that started it", "the other replica"};
  const char* replica[2] = {"replica 1", "replica 2"};
  struct Row {
    const char* what;
    Samples* s;
    const char** through;
  } rows[] = {{"comment on a viewer's /events", comment, same_or_other},
              {"first frame in a viewer's style on /watch", style, same_or_other},
              {"first processed frame of a new stream (POST /api/streams)", first_frame, replica},
              {"the publisher's socket closed (stop)", stop, same_or_other}};
  for (auto& row : rows)
    for (int i = 0; i < 2; ++i) std::printf("| %s | %s %s\n", row.what, row.through[i], row.s[i].cells().c_str());
  std::fflush(stdout);
  return 0;
}
