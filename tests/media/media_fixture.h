// The media tests' fixture: the daemon's services and REST API (Api) with
// a media worker whose media plane is a real media server on loopback
// ports (the API and the worker meet only in PostgreSQL), and helpers to
// publish with gst-launch-1.0.
#pragma once

#include <gst/gst.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "../daemon/api_fixture.h"
#include "media/media_server.h"
#include "media_util.h"

namespace mirage {

class Media : public Api {
 protected:
  void start_worker() override {
    media::MediaSettings m;
    m.addr = "127.0.0.1:0";
    m.srt_addr = "127.0.0.1:0";
    m.rtsp_addr = "127.0.0.1:0";
    m.templates_dir = MIRAGE_PIPELINES_DIR;
    m.hls_root = "/tmp/mirage-media-test-" + std::to_string(getpid());
    m.model = std::string(std::getenv("MIRAGE_TEST_MODELS")) + "/styles.pt";
    m.width = 160;
    m.height = 120;
    m.silence_seconds = 2;
    m.restarts_per_minute = 2;
    configure(m);
    media_server_ = std::make_unique<media::MediaServer>(m);
    std::string error;
    ASSERT_TRUE(media_server_->start(&error)) << error;
    const std::string port = std::to_string(media_server_->port());
    media_server_->set_public_url("http://127.0.0.1:" + port);
    worker_ = make_worker(*media_server_, "media-test-worker", 100, "http://127.0.0.1:" + port,
                          "srt://127.0.0.1:" + std::to_string(media_server_->srt_port()),
                          "rtsp://127.0.0.1:" + std::to_string(media_server_->rtsp_port()), m.srt_passphrase);
  }
  using Api::configure;
  virtual void configure(media::MediaSettings&) {}
  void TearDown() override {
    worker_.reset();
    media_server_.reset();
    Api::TearDown();
  }
  // A REST call. A GET first lets the worker report (viewers, health) and
  // end what it must, so that it reads the media plane's state of now; any
  // other call is followed by the worker applying it, so that the test
  // never races the worker's NOTIFY (tests/cluster does, as clients do).
  test::HttpResponse api(const std::string& method, const std::string& path, const std::string& body = "",
                         const std::string& token = "") {
    if (method == "GET" && worker_->running()) sync_worker();
    std::map<std::string, std::string> headers;
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    auto response = test::http(server_->port(), method, path, body, headers);
    if (method != "GET" && worker_->running()) sync_worker();
    return response;
  }
  std::string ws(const std::string& path) { return "ws://127.0.0.1:" + std::to_string(media_server_->port()) + path; }
  std::string secret_of(const std::string& start_body) {
    std::string url = parse(start_body)["ingest"]["websocket"].GetString();
    return url.substr(url.find("secret=") + 7);
  }
  // Waits until |username|'s pipeline runs (it is built in the background
  // after POST /api/streams; frames sent before are dropped and counted).
  void wait_live(const std::string& username) {
    ASSERT_TRUE(WsClient::spin([&] { return media_server_->health_of(username) != "null"; }));
  }
  // The health's sent_bytes.|protocol| of |username|'s stream (0 while it
  // has no health, between pipelines).
  uint64_t sent_bytes(const std::string& username, const char* protocol) {
    auto h = parse(media_server_->health_of(username));
    return h.IsObject() && h.HasMember("sent_bytes") ? h["sent_bytes"][protocol].GetUint64() : 0;
  }
  // The HLS playlist is served and its newest segment decodes.
  void expect_hls_decodes(const std::string& username) {
    test::HttpResponse playlist;
    ASSERT_TRUE(WsClient::spin([&] {
      playlist = test::http(media_server_->port(), "GET", "/live/" + username + "/index.m3u8");
      return playlist.status == 200 && playlist.body.find("segment") != std::string::npos;
    }));
    const auto seg = playlist.body.rfind("segment");
    auto segment = test::http(media_server_->port(), "GET",
                              "/live/" + username + "/" + playlist.body.substr(seg, playlist.body.find('\n', seg) - seg));
    ASSERT_EQ(segment.status, 200);
    const std::string file = "/tmp/mirage-media-seg-" + std::to_string(getpid()) + ".ts";
    std::ofstream(file, std::ios::binary) << segment.body;
    EXPECT_EQ(std::system(("gst-discoverer-1.0 " + file + " > /dev/null 2>&1").c_str()), 0);
    std::remove(file.c_str());
  }

  std::unique_ptr<media::MediaServer> media_server_;
};

// gst-launch-1.0 with a deadline; its exit status.
inline int gst_launch(const std::string& pipeline, int seconds = 30) {
  const std::string command = "timeout " + std::to_string(seconds) + " gst-launch-1.0 -q " + pipeline + " > /dev/null 2>&1";
  return std::system(command.c_str());
}

// A live H.264 test pattern for |seconds|, as OBS would send it (SPS/PPS
// with every keyframe).
inline std::string h264_source(int seconds, int width = 320, int height = 240) {
  return "videotestsrc is-live=true pattern=ball num-buffers=" + std::to_string(seconds * 15) +
         " ! video/x-raw,width=" + std::to_string(width) + ",height=" + std::to_string(height) +
         ",framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
         "key-int-max=15 ! h264parse config-interval=-1";
}

// main() of a media test binary: GStreamer, then the tests with a
// PostgreSQL cluster for the whole binary.
inline int media_test_main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new Environment);
  return RUN_ALL_TESTS();
}

}  // namespace mirage
