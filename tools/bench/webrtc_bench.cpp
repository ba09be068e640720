// webrtc-bench: WHEP against the WebSocket JPEG frames and HLS for one
// stream at 640x480 15 fps, side by side in one run. One API replica and one
// media worker as processes on loopback (tests/cluster/process_cluster.h),
// the sample styles model on the CPU; a WebSocket publisher sends black
// frames, then white ones, and back; viewers of each kind (WHEP: a real
// webrtcbin peer, tests/media/webrtc_client.h) report the brightness of what
// they show.
//
//   webrtc-bench [--steps N] [--viewers LIST]
//
// Tables:
//   latency   glass to glass as a step response: from the first white frame
//             sent to the first bright frame a viewer shows (HLS: in a
//             segment it fetched and decoded); p50 and p95 over N steps
//   bytes     what one viewer receives per second of each kind, the
//             publisher sending a moving test pattern (flat frames compress
//             to almost nothing)
//   CPU       the worker process's CPU (utime + stime from /proc) per added
//             viewer of each kind, over 5 s with 8 viewers against none
//   capacity  WHEP viewers 1..32: the slowest viewer's frame rate against
//             the stream's (15 fps); the viewers decode in this process, on
//             the same two cores, so this is a floor for the worker's
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "process_cluster.h"
#include "sample_models.h"
#include "webrtc_client.h"

namespace {

using Clock = std::chrono::steady_clock;
using mirage::WsClient;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string percentiles(std::vector<double> v) {
  if (v.empty()) return "– | –";
  std::sort(v.begin(), v.end());
  char line[64];
  std::snprintf(line, sizeof line, "%.0f | %.0f", 1000 * v[v.size() / 2],
                1000 * v[std::min(v.size() - 1, size_t(double(v.size()) * 0.95))]);
  return line;
}

// utime + stime of |pid|, in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  return (utime + stime) / double(sysconf(_SC_CLK_TCK));
}

// The brightest frame of an MPEG-TS segment (mean red, 0..255).
double segment_brightness(const std::string& ts) {
  const std::string file = "/tmp/mirage-webrtc-bench-" + std::to_string(getpid()) + ".ts";
  std::ofstream(file, std::ios::binary) << ts;
  GstElement* p = gst_parse_launch(("filesrc location=" + file +
                                    " ! tsdemux ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB "
                                    "! appsink name=out sync=false").c_str(),
                                   nullptr);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  double best = 0;
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 2 * GST_SECOND)) {
    GstMapInfo map;
    GstBuffer* b = gst_sample_get_buffer(s);
    if (gst_buffer_map(b, &map, GST_MAP_READ)) {
      double sum = 0;
      for (gsize i = 0; i < map.size; i += 3) sum += map.data[i];
      best = std::max(best, sum / double(map.size / 3));
      gst_buffer_unmap(b, &map);
    }
    gst_sample_unref(s);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  std::remove(file.c_str());
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int steps = 8;
  std::vector<int> capacity = {1, 4, 8, 16, 32};
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--viewers")) {
      capacity.clear();
      std::istringstream list(argv[i + 1]);
      for (std::string n; std::getline(list, n, ',');) capacity.push_back(std::stoi(n));
    }
  }
  char dir[] = "/tmp/mirage-webrtc-bench-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  mirage::test::ClusterOptions options;
  options.model = std::string(dir) + "/styles.pt";
  if (auto status = mirage::models::write_styles(options.model); !status.ok()) {
    std::fprintf(stderr, "webrtc-bench: %s\n", status.message().c_str());
    return 1;
  }
  options.replicas = 1;
  options.workers = 1;
  options.netns = false;
  options.api_args = {"--registrations-per-address", "1000"};
  options.worker_args = {"--media-width", "640", "--media-height", "480", "--media-connections-per-address", "1000",
                         "--hls-viewers-per-address", "1000", "--ingest-silence-seconds", "600"};
  mirage::test::ProcessCluster cluster(options);
  if (const std::string failed = cluster.wait_ready(); !failed.empty()) {
    std::fprintf(stderr, "webrtc-bench: %s\n", failed.c_str());
    cluster.keep_files();
    return 1;
  }
  const std::string token = cluster.user("bencher", 50);
  auto started = cluster.call(0, "POST", "/api/streams", R"({"title":"webrtc bench"})", token);
  if (started.status != 201) {
    std::fprintf(stderr, "webrtc-bench: start failed: %s\n", started.body.c_str());
    return 1;
  }
  auto d = parse(started.body);
  const std::string whep = d["watch"]["whep"].GetString();
  const auto& place = cluster.place("w1");
  const int port = place.port;
  auto ingest = WsClient::once_open(d["ingest"]["websocket"].GetString());
  auto watcher = WsClient::once_open(d["watch"]["websocket"].GetString());
  if (!ingest || !watcher) return 1;
  const auto black = mirage::jpeg_frames(4, "black", 640, 480), white = mirage::jpeg_frames(4, "white", 640, 480);
  const auto ball = mirage::jpeg_frames(30, "ball", 640, 480);  // moving content for the bytes and CPU windows
  bool bright = false, moving = false;
  size_t sent = 0;
  // Runs the loop until |done| or |ms|, a frame every 66 ms.
  auto feed = [&](const std::function<bool()>& done, int ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    auto next = Clock::now();
    while (Clock::now() < end && !done()) {
      if (Clock::now() >= next) {
        if (moving) ingest->send(ball[sent++ % ball.size()]);
        else ingest->send((bright ? white : black)[sent++ % 4]);
        next += std::chrono::milliseconds(66);
      }
      WsClient::spin([] { return false; }, 5);
    }
    return done();
  };
  mirage::media::IceSettings ice;
  ice.addresses = {"127.0.0.1"};
  auto whep_viewer = [&]() -> std::unique_ptr<mirage::test::WebRtcClient> {
    auto v = std::make_unique<mirage::test::WebRtcClient>(mirage::test::WebRtcClient::Kind::kViewer, ice);
    auto a = mirage::test::http_at(place.host, uint16_t(port), "POST", "/whep/bencher", v->offer(),
                                   {{"Content-Type", "application/sdp"}});
    if (a.status != 201 || !v->set_answer(a.body)) return nullptr;
    return v;
  };
  feed([&] { return watcher->binary().size() >= 10; }, 30000);

  // Latency: step responses.
  auto viewer = whep_viewer();
  if (!viewer) return 1;
  feed([&] { return viewer->frames() >= 10; }, 20000);
  std::vector<double> lat_whep, lat_ws, lat_hls;
  size_t hls_seen_segment = 0;
  std::string last_segment;
  for (int step = 0; step < steps; ++step) {
    bright = !bright;
    const auto t0 = Clock::now();
    bool got_whep = false, got_ws = false, got_hls = false;
    const size_t ws_from = watcher->binary().size();
    auto shows = [&](double v) { return bright ? v > 128 : v < 100; };
    feed([&] {
      if (!got_whep && shows(viewer->red())) got_whep = true, lat_whep.push_back(seconds_since(t0));
      for (size_t i = ws_from; !got_ws && i < watcher->binary().size(); ++i)
        if (shows(mirage::mean_rgb(watcher->binary()[i])[0])) got_ws = true, lat_ws.push_back(seconds_since(t0));
      if (!got_hls) {
        auto playlist = mirage::test::http_at(place.host, uint16_t(port), "GET", "/live/bencher/index.m3u8");
        const auto at = playlist.body.rfind("segment");
        if (at != std::string::npos) {
          const std::string seg = playlist.body.substr(at, playlist.body.find('\n', at) - at);
          if (seg != last_segment) {
            last_segment = seg;
            ++hls_seen_segment;
            auto ts = mirage::test::http_at(place.host, uint16_t(port), "GET", "/live/bencher/" + seg);
            if (ts.status == 200 && shows(segment_brightness(ts.body))) got_hls = true, lat_hls.push_back(seconds_since(t0));
          }
        }
      }
      return got_whep && got_ws && got_hls;
    }, 15000);
    feed([] { return false; }, 1500);  // settle
  }

  // Bytes per viewer per second, and the worker's CPU per viewer.
  const pid_t worker = cluster.worker(0).pid();
  auto window = [&](double* cpu) {
    const double c0 = cpu_seconds(worker);
    const auto t0 = Clock::now();
    feed([] { return false; }, 5000);
    *cpu = (cpu_seconds(worker) - c0) / seconds_since(t0);
  };
  double cpu_none = 0, cpu_whep = 0, cpu_ws = 0;
  moving = true;
  viewer.reset();
  watcher.reset();
  window(&cpu_none);
  std::vector<std::unique_ptr<mirage::test::WebRtcClient>> wheps;
  for (int i = 0; i < 8; ++i)
    if (auto v = whep_viewer()) wheps.push_back(std::move(v));
  feed([] { return false; }, 2000);
  const uint64_t whep_bytes0 = wheps.empty() ? 0 : wheps[0]->bytes();
  const auto tb = Clock::now();
  window(&cpu_whep);
  const double whep_rate = wheps.empty() ? 0 : double(wheps[0]->bytes() - whep_bytes0) / seconds_since(tb);
  wheps.clear();
  std::vector<std::unique_ptr<WsClient>> sockets;
  for (int i = 0; i < 8; ++i) sockets.push_back(WsClient::once_open(d["watch"]["websocket"].GetString()));
  feed([] { return false; }, 2000);
  auto ws_bytes = [&] {
    uint64_t n = 0;
    for (const auto& f : sockets[0]->binary()) n += f.size();
    return n;
  };
  const uint64_t ws0 = ws_bytes();
  const auto tw = Clock::now();
  window(&cpu_ws);
  const double ws_rate = double(ws_bytes() - ws0) / seconds_since(tw);
  sockets.clear();
  // HLS: one viewer's playlist and segment bytes over 6 s.
  uint64_t hls_bytes = 0;
  std::string fetched;
  const auto th = Clock::now();
  feed([&] {
    static auto next = Clock::now();
    if (Clock::now() < next) return false;
    next = Clock::now() + std::chrono::milliseconds(500);
    auto playlist = mirage::test::http_at(place.host, uint16_t(port), "GET", "/live/bencher/index.m3u8");
    hls_bytes += playlist.body.size();
    const auto at = playlist.body.rfind("segment");
    if (at != std::string::npos) {
      const std::string seg = playlist.body.substr(at, playlist.body.find('\n', at) - at);
      if (seg != fetched) {
        fetched = seg;
        hls_bytes += mirage::test::http_at(place.host, uint16_t(port), "GET", "/live/bencher/" + seg).body.size();
      }
    }
    return false;
  }, 6000);
  const double hls_rate = double(hls_bytes) / seconds_since(th);

  // Capacity: the slowest WHEP viewer's frame rate with N viewers.
  std::vector<std::pair<int, double>> rates;
  for (int n : capacity) {
    std::vector<std::unique_ptr<mirage::test::WebRtcClient>> vs;
    for (int i = 0; i < n; ++i)
      if (auto v = whep_viewer()) vs.push_back(std::move(v));
    feed([] { return false; }, 2500);
    std::vector<int> f0;
    for (auto& v : vs) f0.push_back(v->frames());
    const auto t0 = Clock::now();
    feed([] { return false; }, 4000);
    double slowest = vs.size() == size_t(n) ? 1e9 : 0;
    for (size_t i = 0; i < vs.size(); ++i) slowest = std::min(slowest, (vs[i]->frames() - f0[i]) / seconds_since(t0));
    rates.emplace_back(n, slowest);
  }
  cluster.call(0, "POST", "/api/streams/current/stop", "", token);

  std::printf("\n## WHEP vs WebSocket JPEG vs HLS (one stream, 640x480 at 15 fps, sample styles model, 1 worker, loopback)\n\n");
  std::printf("| viewer kind | latency p50 ms | latency p95 ms | steps seen | bytes/s per viewer | worker CPU per viewer |\n"
              "|---|---|---|---|---|---|\n");
  std::printf("| WHEP (H.264, webrtcbin) | %s | %zu/%d | %.0f | %.1f %% |\n", percentiles(lat_whep).c_str(), lat_whep.size(),
              steps, whep_rate, 100 * (cpu_whep - cpu_none) / 8);
  std::printf("| WebSocket JPEG | %s | %zu/%d | %.0f | %.1f %% |\n", percentiles(lat_ws).c_str(), lat_ws.size(), steps,
              ws_rate, 100 * (cpu_ws - cpu_none) / 8);
  std::printf("| HLS (1 s segments) | %s | %zu/%d | %.0f | – |\n", percentiles(lat_hls).c_str(), lat_hls.size(), steps,
              hls_rate);
  std::printf("\nThe worker's CPU with the stream and no viewer: %.0f %% of a core.\n", 100 * cpu_none);
  std::printf("\n| WHEP viewers | slowest viewer's fps | ≥ 90 %% of 15 fps |\n|---|---|---|\n");
  for (const auto& [n, fps] : rates) std::printf("| %d | %.1f | %s |\n", n, fps, fps >= 13.5 ? "yes" : "no");
  std::fflush(stdout);
  std::system((std::string("rm -rf ") + dir).c_str());
  return 0;
}
