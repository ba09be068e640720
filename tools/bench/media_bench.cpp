// media-bench: ingest-to-viewer latency through the media plane, the way a
// browser streams and watches: JPEG frames over the WebSocket ingest at
// 30 fps, processed frames back over the WebSocket watch endpoint, for 1, 2
// and 4 streams at once on this machine (identity model, 320x240).
//
// Each frame carries its index as a grey level (28 levels, 8 apart, so a
// decoded JPEG names its frame unambiguously within 0.9 s); latency = time
// a viewer receives a frame - time the ingest sent the frame it shows.
//
//   media-bench [--seconds N]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "db/migrations.h"
#include "db/pool.h"
#include "media/media_server.h"
#include "media_util.h"
#include "pg_cluster.h"
#include "sample_models.h"
#include "service/accounts.h"
#include "service/streams.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kLevels = 28;

std::string grey_frame(int level) {
  const unsigned v = unsigned(16 + level * 8);
  char colour[32];
  std::snprintf(colour, sizeof colour, "%u", 0xff000000u | (v << 16) | (v << 8) | v);
  GstElement* p = gst_parse_launch((std::string("videotestsrc pattern=solid-color foreground-color=") + colour +
                                    " num-buffers=1 ! video/x-raw,width=320,height=240 ! jpegenc ! appsink name=out")
                                       .c_str(),
                                   nullptr);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  std::string jpeg;
  if (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
    GstMapInfo map;
    gst_buffer_map(gst_sample_get_buffer(s), &map, GST_MAP_READ);
    jpeg.assign(reinterpret_cast<const char*>(map.data), map.size);
    gst_buffer_unmap(gst_sample_get_buffer(s), &map);
    gst_sample_unref(s);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  return jpeg;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
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
  mirage::service::Streams* streams_ptr = nullptr;
  mirage::media::MediaSettings m;
  m.addr = "127.0.0.1:0";
  m.templates_dir = MIRAGE_PIPELINES_DIR;
  m.hls_root = dir + "/hls";
  m.model = dir + "/identity.pt";
  m.width = 320;
  m.height = 240;
  m.fps = 30;
  mirage::media::MediaServer media(m, [&](const std::string& u, const std::string& s) {
    return streams_ptr->ingest_allowed(u, s);
  });
  std::string error;
  if (!media.start(&error)) {
    std::fprintf(stderr, "media-bench: %s\n", error.c_str());
    return 1;
  }
  mirage::service::Streams streams(pool, media, {});
  streams_ptr = &streams;

  std::vector<std::string> frames;
  for (int level = 0; level < kLevels; ++level) frames.push_back(grey_frame(level));
  auto level_of = [](const std::string& jpeg) {
    const double grey = mirage::mean_rgb(jpeg)[1];
    return int(std::lround((grey - 16) / 8)) % kLevels;
  };

  std::printf("\n## Media plane: WebSocket ingest to WebSocket viewer (%u hardware threads; identity model, "
              "320x240, 30 fps in, %.0f s)\n\n",
              std::thread::hardware_concurrency(), seconds);
  std::printf("| streams | frames sent per stream | frames received per viewer | latency p50 ms | p95 ms | max ms |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  int user_counter = 0;
  for (int n : {1, 2, 4}) {
    std::vector<mirage::service::User> users;
    std::vector<std::unique_ptr<mirage::WsClient>> ingests, watchers;
    for (int i = 0; i < n; ++i) {
      const std::string name = "bench" + std::to_string(user_counter++);
      accounts.register_user(name, name + "@example.org", "bench-password");
      accounts.grant(name, 10, "bench");
      auto user = accounts.authenticate(accounts.login(name, "bench-password", "127.0.0.1").token);
      auto stream = streams.start(user, "bench");
      const std::string base = "ws://127.0.0.1:" + std::to_string(media.port());
      ingests.push_back(std::make_unique<mirage::WsClient>(base + "/ingest/" + name + "?secret=" + stream.secret));
      watchers.push_back(std::make_unique<mirage::WsClient>(base + "/watch/" + name));
      users.push_back(user);
    }
    // Sent times per level, per stream; latency computed as frames arrive.
    std::vector<std::map<int, Clock::time_point>> sent(static_cast<size_t>(n), std::map<int, Clock::time_point>{});
    std::vector<size_t> seen(size_t(n), 0);
    std::vector<double> latencies;
    const auto start = Clock::now();
    int frame = 0;
    while (Clock::now() - start < std::chrono::duration<double>(seconds)) {
      const int level = frame % kLevels;
      for (int i = 0; i < n; ++i) {
        ingests[size_t(i)]->send(frames[size_t(level)]);
        sent[size_t(i)][level] = Clock::now();
      }
      ++frame;
      const auto next = start + std::chrono::microseconds(int64_t(frame) * 1000000 / 30);
      while (Clock::now() < next) {
        g_main_context_iteration(nullptr, FALSE);
        for (int i = 0; i < n; ++i) {
          auto& received = watchers[size_t(i)]->binary();
          for (; seen[size_t(i)] < received.size(); ++seen[size_t(i)]) {
            const auto now = Clock::now();
            const int l = level_of(received[seen[size_t(i)]]);
            auto it = sent[size_t(i)].find(l);
            if (it != sent[size_t(i)].end())
              latencies.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    }
    size_t received = 0;
    for (auto& w : watchers) received += w->binary().size();
    std::printf("| %d | %d | %zu | %.1f | %.1f | %.1f |\n", n, frame, received / size_t(n), percentile(latencies, 0.5),
                percentile(latencies, 0.95), latencies.empty() ? 0.0 : *std::max_element(latencies.begin(), latencies.end()));
    std::fflush(stdout);
    ingests.clear();
    watchers.clear();
    for (auto& u : users) streams.stop(u);
  }
  std::printf("\nlatency includes JPEG decode, scaling, the model, the JPEG encode for viewers and the WebSocket hops; "
              "frames a viewer missed (dropped as newer ones arrived) are not counted.\n");
  std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
