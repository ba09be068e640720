// media-bench: the media plane measured the way it is used, on this
// machine, with the identity model (so the numbers are the plane's own):
//
//   1. concurrent streams: JPEG frames over the WebSocket ingest at 30 fps
//      into 1, 2, 4 and 8 streams at once, one WebSocket viewer each:
//      processed frames per second each viewer gets, ingest-to-viewer
//      latency, and whether the stream is sustained (>= 27 of 30 fps);
//   2. viewers per stream: one stream, 1 to 64 WebSocket viewers: frames
//      per second per viewer (the worst and the mean) and latency;
//   3. HLS: one stream, the playlist polled every 50 ms like a player:
//      the time from sending a frame to the moment the segment holding it
//      is listed (a player adds its own buffer of 1-3 segments on top).
//
// Each frame carries its index as a colour (6 levels, 40 apart, in each of
// R, G and B: 216 codes, 7.2 s at 30 fps) that survives JPEG, YUV and H.264, so
// a received frame names the sent frame it shows; latency = time received -
// time sent.
//
//   media-bench [--seconds N]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <fstream>
#include <set>

#include "db/migrations.h"
#include "db/pool.h"
#include "http_client.h"
#include "media/media_server.h"
#include "media_util.h"
#include "pg_cluster.h"
#include "sample_models.h"
#include "service/accounts.h"
#include "media/worker.h"
#include "service/streams.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kLevels = 6;                           // per channel, 40 apart
constexpr int kCodes = kLevels * kLevels * kLevels;  // 216: 7.2 s at 30 fps
constexpr int kFps = 30;

std::string colour_frame(int code) {
  const unsigned r = unsigned(16 + (code / 36) * 40), g = unsigned(16 + (code / 6 % 6) * 40),
                 b = unsigned(16 + (code % 6) * 40);
  char colour[32];
  std::snprintf(colour, sizeof colour, "%u", 0xff000000u | (r << 16) | (g << 8) | b);
  auto jpeg = mirage::pull_buffers(std::string("videotestsrc pattern=solid-color foreground-color=") + colour +
                                   " num-buffers=1 ! video/x-raw,width=320,height=240 ! jpegenc ! appsink name=out");
  return jpeg.empty() ? std::string() : jpeg[0];
}

// -1 when a channel is not within 12 of a level: such a frame is not
// counted rather than mistaken for another.
int code_of_rgb(const std::array<double, 3>& rgb) {
  int code = 0;
  for (double v : rgb) {
    const int level = std::clamp(int(std::lround((v - 16) / 40)), 0, kLevels - 1);
    if (std::abs(v - (16 + level * 40)) > 12) return -1;
    code = code * kLevels + level;
  }
  return code;
}

// The code of the first and the last frame of an MPEG-TS segment.
std::pair<int, int> segment_codes(const std::string& ts, const std::string& file) {
  std::ofstream(file, std::ios::binary) << ts;
  GstElement* p = gst_parse_launch(("filesrc location=" + file +
                                    " ! tsdemux ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB "
                                    "! appsink name=out sync=false")
                                       .c_str(),
                                   nullptr);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  int first = -1, last = -1;
  while (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
    GstMapInfo map;
    gst_buffer_map(gst_sample_get_buffer(s), &map, GST_MAP_READ);
    std::array<double, 3> mean{0, 0, 0};
    for (size_t i = 0; i + 2 < map.size; i += 3)
      for (int c = 0; c < 3; ++c) mean[size_t(c)] += map.data[i + size_t(c)];
    for (double& m : mean) m /= double(map.size / 3);
    gst_buffer_unmap(gst_sample_get_buffer(s), &map);
    gst_sample_unref(s);
    last = code_of_rgb(mean);
    if (first < 0) first = last;
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  std::remove(file.c_str());
  return {first, last};
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

// The last time |code| was sent before |when| (codes repeat every 7.2 s).
std::optional<Clock::time_point> sent_before(const std::map<int, std::vector<Clock::time_point>>& sent, int code,
                                             Clock::time_point when) {
  auto it = sent.find(code);
  if (it == sent.end()) return std::nullopt;
  std::optional<Clock::time_point> best;
  for (auto t : it->second)
    if (t <= when) best = t;
  return best;
}

struct Bench {
  mirage::service::Accounts& accounts;
  mirage::service::Streams& streams;
  mirage::media::MediaServer& media;
  std::vector<std::string> frames;  // one per code
  double seconds;
  int users = 0;

  struct Result {
    int sent = 0;                      // frames sent per stream
    std::vector<double> fps;           // per viewer
    std::vector<double> latencies_ms;  // every received frame
    std::vector<std::pair<double, double>> hls_ms;  // per segment: last frame, first frame
  };

  // |streams| streams at 30 fps, |viewers| WebSocket viewers each, and
  // optionally an HLS poller on the first stream.
  Result run(int n_streams, int viewers, bool hls) {
    std::vector<mirage::service::User> owners;
    std::vector<std::string> names;
    std::vector<std::unique_ptr<mirage::WsClient>> ingests;
    std::vector<std::vector<std::unique_ptr<mirage::WsClient>>> watchers;
    watchers.resize(size_t(n_streams));
    const std::string base = "ws://127.0.0.1:" + std::to_string(media.port());
    for (int i = 0; i < n_streams; ++i) {
      const std::string name = "bench" + std::to_string(users++);
      accounts.register_user(name, name + "@example.org", "bench-password", "127.0.0.1");
      accounts.grant(name, 10, "bench");
      auto user = accounts.authenticate(accounts.login(name, "bench-password", "127.0.0.1").token);
      auto stream = streams.start(user, "bench");
      // The worker hears of it through PostgreSQL (NOTIFY); ingest is refused until then.
      while (!media.stream_of(name)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ingests.push_back(std::make_unique<mirage::WsClient>(base + "/ingest/" + name + "?secret=" + stream.secret));
      for (int v = 0; v < viewers; ++v)
        watchers[size_t(i)].push_back(std::make_unique<mirage::WsClient>(base + "/watch/" + name));
      owners.push_back(user);
      names.push_back(name);
    }
    Result result;
    std::vector<std::map<int, std::vector<Clock::time_point>>> sent;  // code -> every time sent
    sent.resize(size_t(n_streams));
    std::vector<std::vector<size_t>> seen(size_t(n_streams), std::vector<size_t>(size_t(viewers), 0));
    std::set<std::string> segments_seen;
    std::vector<std::pair<std::string, Clock::time_point>> segments;  // body, when listed
    auto next_poll = Clock::now();
    const auto start = Clock::now();
    int frame = 0;
    while (Clock::now() - start < std::chrono::duration<double>(seconds)) {
      const int code = frame % kCodes;
      for (int i = 0; i < n_streams; ++i) {
        ingests[size_t(i)]->send(frames[size_t(code)]);
        sent[size_t(i)][code].push_back(Clock::now());
      }
      ++frame;
      const auto next = start + std::chrono::microseconds(int64_t(frame) * 1000000 / kFps);
      while (Clock::now() < next) {
        g_main_context_iteration(nullptr, FALSE);
        // Latency from each stream's first viewer (decoding every viewer's
        // frames here would measure this process, not the server).
        for (int i = 0; i < n_streams; ++i) {
          auto& received = watchers[size_t(i)][0]->binary();
          for (size_t& k = seen[size_t(i)][0]; k < received.size(); ++k) {
            const auto now = Clock::now();
            if (auto at = sent_before(sent[size_t(i)], code_of_rgb(mirage::mean_rgb(received[k])), now))
              result.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - *at).count());
          }
        }
        if (hls && Clock::now() >= next_poll) {
          next_poll = Clock::now() + std::chrono::milliseconds(50);
          auto playlist = mirage::test::http(media.port(), "GET", "/live/" + names[0] + "/index.m3u8?viewer=bench");
          const auto listed = Clock::now();
          size_t pos = 0;
          while ((pos = playlist.body.find("segment", pos)) != std::string::npos) {
            const std::string file = playlist.body.substr(pos, playlist.body.find('\n', pos) - pos);
            pos += file.size();
            if (!segments_seen.insert(file).second) continue;
            auto body = mirage::test::http(media.port(), "GET", "/live/" + names[0] + "/" + file);
            if (body.status == 200) segments.emplace_back(body.body, listed);
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    }
    result.sent = frame;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    for (auto& per_stream : watchers)
      for (auto& w : per_stream) result.fps.push_back(double(w->binary().size()) / elapsed);
    // Segments decode after the run (decoding is not part of the latency).
    // The first listed segment may predate the poller: skipped.
    for (size_t k = 1; k < segments.size(); ++k) {
      auto [first, last] = segment_codes(segments[k].first, "/tmp/mirage-media-bench-segment.ts");
      auto f = sent_before(sent[0], first, segments[k].second), l = sent_before(sent[0], last, segments[k].second);
      if (!f || !l) continue;
      result.hls_ms.emplace_back(std::chrono::duration<double, std::milli>(segments[k].second - *l).count(),
                                 std::chrono::duration<double, std::milli>(segments[k].second - *f).count());
    }
    ingests.clear();
    watchers.clear();
    for (auto& u : owners) streams.stop(u);
    return result;
  }
};

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / double(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  double seconds = 10;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);

  mirage::test::PgCluster cluster;
  {
    mirage::db::Connection c(cluster.url());
    mirage::db::migrate(c, mirage::db::load_migrations(MIRAGE_MIGRATIONS_DIR));
  }
  char dir_template[] = "/tmp/mirage-media-bench-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  mirage::models::write_delay(dir + "/identity.pt", 0);
  mirage::db::Pool pool(cluster.url(), 6);
  mirage::service::AccountSettings account_settings;
  account_settings.argon2 = {1024, 1, 1};
  mirage::service::Accounts accounts(pool, account_settings);
  account_settings.registrations_per_address = 1 << 30;
  mirage::media::MediaSettings m;
  m.addr = "127.0.0.1:0";
  m.srt_addr = "";
  m.rtsp_addr = "";
  m.templates_dir = MIRAGE_PIPELINES_DIR;
  m.hls_root = dir + "/hls";
  m.model = dir + "/identity.pt";
  m.width = 320;
  m.height = 240;
  m.fps = kFps;
  m.connections_per_address = 1 << 20;  // every viewer here comes from 127.0.0.1
  mirage::media::MediaServer media(m);
  std::string error;
  if (!media.start(&error)) {
    std::fprintf(stderr, "media-bench: %s\n", error.c_str());
    return 1;
  }
  mirage::media::WorkerSettings ws;
  ws.database_url = cluster.url();
  ws.quiet = true;
  ws.registration.name = "bench";
  ws.registration.media_url = "http://127.0.0.1:" + std::to_string(media.port());
  ws.registration.capacity = 100;
  ws.registration.model = m.model;
  ws.registration.device = "cpu";
  mirage::media::Worker worker(ws, media);
  worker.start();
  mirage::service::Streams streams(pool, {});
  Bench bench{accounts, streams, media, {}, seconds};
  for (int code = 0; code < kCodes; ++code) bench.frames.push_back(colour_frame(code));

  std::printf("\n## Media plane: concurrent streams, WebSocket ingest to WebSocket viewer (%u hardware threads; "
              "identity model, 320x240, 30 fps in, %.0f s each)\n\n",
              std::thread::hardware_concurrency(), seconds);
  std::printf("| streams | frames sent per stream | viewer fps, worst | viewer fps, mean | latency p50 ms | p95 ms | sustained (>= 27 fps) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|:---|\n");
  int sustained = 0;
  for (int n : {1, 2, 4, 8}) {
    auto r = bench.run(n, 1, false);
    const double worst = *std::min_element(r.fps.begin(), r.fps.end());
    if (worst >= 27) sustained = n;
    std::printf("| %d | %d | %.1f | %.1f | %.1f | %.1f | %s |\n", n, r.sent, worst, mean_of(r.fps),
                percentile(r.latencies_ms, 0.5), percentile(r.latencies_ms, 0.95), worst >= 27 ? "yes" : "no");
    std::fflush(stdout);
  }
  std::printf("\nstreams sustained at 30 fps on this machine: %d (of 1, 2, 4, 8 tried)\n", sustained);

  std::printf("\n## Media plane: WebSocket viewers of one stream (30 fps in, %.0f s each; viewers run in the "
              "benchmark's process, on the same cores)\n\n", seconds);
  std::printf("| viewers | viewer fps, worst | viewer fps, mean | latency p50 ms | p95 ms |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int v : {1, 16, 64, 256}) {
    auto r = bench.run(1, v, false);
    std::printf("| %d | %.1f | %.1f | %.1f | %.1f |\n", v, *std::min_element(r.fps.begin(), r.fps.end()),
                mean_of(r.fps), percentile(r.latencies_ms, 0.5), percentile(r.latencies_ms, 0.95));
    std::fflush(stdout);
  }

  const double hls_seconds = std::max(seconds, 15.0);
  bench.seconds = hls_seconds;
  auto r = bench.run(1, 1, true);
  std::vector<double> newest, oldest;
  for (auto [l, f] : r.hls_ms) newest.push_back(l), oldest.push_back(f);
  std::printf("\n## Media plane: HLS (1 s target segments, one stream, playlist polled every 50 ms, %.0f s)\n\n",
              hls_seconds);
  std::printf("| segments | newest frame of a segment: sent to listed, p50 ms | max ms | oldest frame: p50 ms | max ms | WebSocket p50 ms, same run |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %zu | %.0f | %.0f | %.0f | %.0f | %.1f |\n", r.hls_ms.size(), percentile(newest, 0.5),
              newest.empty() ? 0.0 : *std::max_element(newest.begin(), newest.end()), percentile(oldest, 0.5),
              oldest.empty() ? 0.0 : *std::max_element(oldest.begin(), oldest.end()), percentile(r.latencies_ms, 0.5));
  std::printf("\nlatency includes JPEG decode, scaling, the model, the encoders and the hops; frames a WebSocket viewer "
              "missed (dropped as newer ones arrived) are not counted. An HLS player starts 1-3 segments behind the "
              "newest listed one, adding 1-3 s to the HLS figures.\n");
  std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
