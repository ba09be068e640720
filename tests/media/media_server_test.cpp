// The media plane end to end, through miraged's services and REST API and
// the media server's protocols on loopback: a WebSocket client streams JPEG
// frames as a browser canvas would; a WebSocket viewer receives processed
// frames; an events client sees live, style, comment and offline; the HLS
// playlist is served and its segments decode. Wrong or missing secrets are
// refused before a pipeline sees a byte.
//
// Real time: frames are pushed at 15 fps for a few seconds.
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <future>
#include <random>
#include <thread>
#include <cmath>
#include <chrono>

#include "media_fixture.h"

namespace mirage {
namespace {


TEST_F(Media, WebSocketIngestToHlsAndViewers) {
  std::string token = user("zoe", 3);
  WsClient events(ws("/events/zoe"));
  ASSERT_TRUE(events.open());
  auto started = api("POST", "/api/streams", R"({"title":"media"})", token);
  ASSERT_EQ(started.status, 201) << started.body;
  wait_live("zoe");
  const std::string ingest_url = parse(started.body)["ingest"]["websocket"].GetString();
  const std::string secret = ingest_url.substr(ingest_url.find("secret=") + 7);

  // Refused before any frame: no secret, a wrong one, another user's path.
  EXPECT_FALSE(WsClient(ws("/ingest/zoe")).open());
  EXPECT_FALSE(WsClient(ws("/ingest/zoe?secret=wrong")).open());
  EXPECT_FALSE(WsClient(ws("/ingest/nobody?secret=" + secret)).open());

  WsClient ingest(ws("/ingest/zoe?secret=" + secret));
  ASSERT_TRUE(ingest.open());
  WsClient watcher(ws("/watch/zoe"));
  ASSERT_TRUE(watcher.open());
  const auto frames = jpeg_frames(45);
  for (size_t i = 0; i < frames.size(); ++i) {
    ingest.send(frames[i]);
    if (i == 10) ingest.send("garbage, not a JPEG");  // dropped and counted, the stream goes on
    WsClient::spin([] { return false; }, 66);
  }
  ASSERT_TRUE(WsClient::spin([&] { return watcher.binary().size() >= 5; }));
  for (const auto& jpeg : watcher.binary()) {
    ASSERT_GE(jpeg.size(), 2u);
    EXPECT_EQ(uint8_t(jpeg[0]), 0xFF);
    EXPECT_EQ(uint8_t(jpeg[1]), 0xD8);
  }
  EXPECT_EQ(media_server_->frames_refused("zoe"), 1u);
  EXPECT_EQ(media_server_->pipeline_error("zoe"), "");

  // HLS through the media port; the playlist request counts as a viewer.
  auto playlist = test::http(media_server_->port(), "GET", "/live/zoe/index.m3u8?viewer=v1");
  ASSERT_EQ(playlist.status, 200);
  EXPECT_EQ(playlist.body.rfind("#EXTM3U", 0), 0u);
  EXPECT_EQ(playlist.headers["access-control-allow-origin"], "*");  // players on any page
  EXPECT_EQ(playlist.headers["cache-control"], "no-cache");
  auto seg = playlist.body.find("segment");
  ASSERT_NE(seg, std::string::npos);
  auto segment = test::http(media_server_->port(), "GET",
                            "/live/zoe/" + playlist.body.substr(seg, playlist.body.find('\n', seg) - seg));
  ASSERT_EQ(segment.status, 200);
  const std::string file = "/tmp/mirage-media-seg-" + std::to_string(getpid()) + ".ts";
  std::ofstream(file, std::ios::binary) << segment.body;
  EXPECT_EQ(std::system(("gst-discoverer-1.0 " + file + " > /dev/null 2>&1").c_str()), 0);
  std::remove(file.c_str());
  EXPECT_EQ(test::http(media_server_->port(), "GET", "/live/zoe/../../etc/passwd").status, 404);
  // Every body byte the viewers got is counted (the server counts as it
  // writes, a moment after the client may have read: hence the spin).
  uint64_t watched = 0;
  for (const auto& jpeg : watcher.binary()) watched += jpeg.size();
  EXPECT_TRUE(WsClient::spin([&] {
    return sent_bytes("zoe", "hls") >= playlist.body.size() + segment.body.size() &&
           sent_bytes("zoe", "websocket") >= watched;
  })) << media_server_->health_of("zoe") << " (HLS " << playlist.body.size() + segment.body.size()
      << ", WebSocket " << watched << ")";
  EXPECT_EQ(sent_bytes("zoe", "whep"), 0u);
  WsClient preview(ws("/watch/zoe?preview=1"));  // the streamer's own preview: frames, but no viewer
  ASSERT_TRUE(preview.open());
  EXPECT_EQ(parse(api("GET", "/api/streams/zoe").body)["viewers"].GetInt(), 2);  // watcher + HLS

  // The streamer's dashboard shows the pipeline's health.
  auto dash = parse(api("GET", "/api/me/dashboard", "", token).body);
  ASSERT_TRUE(dash["processing"].IsObject());
  EXPECT_GE(dash["processing"]["frames_received"].GetUint64(), 40u);
  EXPECT_EQ(dash["processing"]["frames_refused"].GetUint64(), 1u);
  EXPECT_GT(dash["processing"]["frames_processed"].GetUint64(), 0u);
  EXPECT_TRUE(dash["processing"]["last_error"].IsNull());

  // Fuzz: 300 random messages (a third framed like JPEG so they reach the
  // decoder), then real frames again: nothing crashes, the stream goes on.
  std::mt19937 rng(20261124);
  for (int i = 0; i < 300; ++i) {
    std::string junk(1 + rng() % 20000, '\0');
    for (char& c : junk) c = char(rng());
    if (i % 3 == 0 && junk.size() >= 4) {
      junk[0] = char(0xFF), junk[1] = char(0xD8);
      junk[junk.size() - 2] = char(0xFF), junk[junk.size() - 1] = char(0xD9);
    }
    ingest.send(junk);
  }
  const size_t before_fuzz = watcher.binary().size();
  for (size_t i = 0; i < 15; ++i) {
    ingest.send(frames[i]);
    WsClient::spin([] { return false; }, 66);
  }
  EXPECT_TRUE(WsClient::spin([&] { return watcher.binary().size() > before_fuzz + 3; }));
  EXPECT_EQ(media_server_->pipeline_error("zoe"), "");
  EXPECT_TRUE(ingest.open());

  // Style and comment events reach /events.
  std::string viewer = user("yann");
  ASSERT_EQ(api("POST", "/api/streams/zoe/styles", R"({"style":"sepia"})", viewer).status, 201);
  ASSERT_EQ(api("POST", "/api/streams/zoe/comments", R"({"text":"wow \"quoted\""})", viewer).status, 201);
  ASSERT_EQ(api("PATCH", "/api/streams/current/settings", R"({"comments_enabled":false})", token).status, 200);
  ASSERT_EQ(api("POST", "/api/streams/current/stop", "", token).status, 200);
  ASSERT_TRUE(WsClient::spin([&] {
    for (const auto& t : events.text()) if (t.find(R"("reason":"stopped")") != std::string::npos) return true;
    return false;
  }));
  std::string all;
  for (const auto& t : events.text()) all += t + "\n";
  EXPECT_NE(all.find(R"({"type":"live"})"), std::string::npos) << all;
  EXPECT_NE(all.find(R"({"type":"style","style":"sepia"})"), std::string::npos) << all;
  EXPECT_NE(all.find(R"("text":"wow \"quoted\"")"), std::string::npos) << all;
  EXPECT_NE(all.find(R"("reason":"stopped")"), std::string::npos) << all;
  EXPECT_NE(all.find(R"({"type":"settings","comments_enabled":false,"styles_enabled":true})"), std::string::npos) << all;
  ASSERT_TRUE(WsClient::spin([&] { return !ingest.open(); }));  // the streamer's ingest is closed
  EXPECT_EQ(test::http(media_server_->port(), "GET", "/live/zoe/index.m3u8").status, 404);
}

// Two streams at once: each viewer sees only its own stream's frames.
// The streamer's style and strength reach diffusionfilter in the running
// pipeline (its `style` and `strength` properties) within a second of the
// API call; a viewer's request takes the style over, then it returns.
// Real time: polls every 10 ms; 1 s is the contract's bound.
TEST_F(Media, StreamerStyleAndStrengthReachTheElement) {
  std::string token = user("stella", 3);
  ASSERT_EQ(api("POST", "/api/streams", R"({"title":"s","style":"sepia","strength":0.3})", token).status, 201);
  wait_live("stella");
  std::string style;
  double strength = -1;
  ASSERT_TRUE(media_server_->filter_settings("stella", &style, &strength));
  EXPECT_EQ(style, "sepia");  // from the pipeline's first frame
  EXPECT_DOUBLE_EQ(strength, 0.3);
  auto within_a_second = [&](const std::string& want_style, double want_strength) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(1)) {
      if (media_server_->filter_settings("stella", &style, &strength) && style == want_style &&
          std::abs(strength - want_strength) < 1e-9)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_EQ(api("PATCH", "/api/streams/current/settings", R"({"style":"toon","strength":0.75})", token).status, 200);
  EXPECT_TRUE(within_a_second("toon", 0.75)) << style << " " << strength;
  std::string viewer = user("vera");
  ASSERT_EQ(api("POST", "/api/streams/stella/styles", R"({"style":"invert"})", viewer).status, 201);
  EXPECT_TRUE(within_a_second("invert", 0.75)) << style << " " << strength;
  ASSERT_EQ(api("POST", "/api/streams/current/styles/skip", "", token).status, 200);
  EXPECT_TRUE(within_a_second("toon", 0.75)) << style << " " << strength;
  ASSERT_EQ(api("PATCH", "/api/streams/current/settings", R"({"strength":0})", token).status, 200);
  EXPECT_TRUE(within_a_second("toon", 0.0)) << style << " " << strength;
}

TEST_F(Media, TwoStreamsDoNotMix) {
  std::string a = user("amy", 3), b = user("ben", 3);
  auto sa = parse(api("POST", "/api/streams", R"({"title":"a"})", a).body);
  auto sb = parse(api("POST", "/api/streams", R"({"title":"b"})", b).body);
  auto secret = [](const rapidjson::Document& d) {
    std::string url = d["ingest"]["websocket"].GetString();
    return url.substr(url.find("secret=") + 7);
  };
  WsClient in_a(ws("/ingest/amy?secret=" + secret(sa))), in_b(ws("/ingest/ben?secret=" + secret(sb)));
  ASSERT_TRUE(in_a.open() && in_b.open());
  // One stream's secret does not open the other's ingest.
  EXPECT_FALSE(WsClient(ws("/ingest/ben?secret=" + secret(sa))).open());
  WsClient watch_a(ws("/watch/amy")), watch_b(ws("/watch/ben"));
  const auto blue = jpeg_frames(30, "blue"), red = jpeg_frames(30, "red");
  for (size_t i = 0; i < blue.size(); ++i) {
    in_a.send(blue[i]);
    in_b.send(red[i]);
    WsClient::spin([] { return false; }, 66);
  }
  ASSERT_TRUE(WsClient::spin([&] { return watch_a.binary().size() >= 3 && watch_b.binary().size() >= 3; }));
  // The styles model (no style set) keeps colours: blue stays blue, red red.
  auto ca = mean_rgb(watch_a.binary().back()), cb = mean_rgb(watch_b.binary().back());
  EXPECT_GT(ca[2], ca[0] + 100) << ca[0] << " " << ca[2];
  EXPECT_GT(cb[0], cb[2] + 100) << cb[0] << " " << cb[2];
  api("POST", "/api/streams/current/stop", "", a);
  api("POST", "/api/streams/current/stop", "", b);
}

// Lifecycle: a failing pipeline is restarted (and the dashboard says so);
// failing too often ends the stream; a silent ingest ends it too, and
// billing stops with it.
TEST_F(Media, FailingPipelinesRestartAndSilentStreamsEnd) {
  std::string token = user("cleo", 3);
  auto started = parse(api("POST", "/api/streams", R"({"title":"l"})", token).body);
  std::string url = started["ingest"]["websocket"].GetString();
  WsClient ingest(ws("/ingest/cleo?secret=" + url.substr(url.find("secret=") + 7)));
  ASSERT_TRUE(ingest.open());
  const auto frames = jpeg_frames(10);
  auto feed = [&] {
    for (const auto& f : frames) {
      ingest.send(f);
      WsClient::spin([] { return false; }, 66);
    }
  };
  WsClient watcher(ws("/watch/cleo"));
  ASSERT_TRUE(watcher.open());
  feed();
  ASSERT_TRUE(WsClient::spin([&] { return sent_bytes("cleo", "websocket") > 0; }));
  const uint64_t sent_before = sent_bytes("cleo", "websocket");
  media_server_->inject_error("cleo", "encoder exploded");
  WsClient::spin([&] { return media_server_->pipeline_error("cleo") != ""; }, 2000);
  sync_worker();  // restart 1
  media_server_->wait_lifecycle_idle();
  // The stream's byte counts outlive its pipelines: no reset.
  EXPECT_GE(sent_bytes("cleo", "websocket"), sent_before);
  auto dash = parse(api("GET", "/api/me/dashboard", "", token).body);
  ASSERT_TRUE(dash["live"].GetBool());
  EXPECT_EQ(dash["processing"]["restarts_last_minute"].GetInt(), 1);
  EXPECT_STREQ(dash["processing"]["previous_error"].GetString(), "encoder exploded");
  feed();  // the same ingest connection feeds the new pipeline
  EXPECT_TRUE(ingest.open());
  EXPECT_TRUE(WsClient::spin([&] { return sent_bytes("cleo", "websocket") > sent_before; }));
  EXPECT_GT(parse(api("GET", "/api/me/dashboard", "", token).body)["processing"]["frames_received"].GetUint64(), 5u);

  media_server_->inject_error("cleo", "encoder exploded again");
  WsClient::spin([&] { return media_server_->pipeline_error("cleo") != ""; }, 2000);
  sync_worker();  // restart 2: the limit
  media_server_->wait_lifecycle_idle();
  media_server_->inject_error("cleo", "and again");
  WsClient::spin([&] { return media_server_->pipeline_error("cleo") != ""; }, 2000);
  sync_worker();  // a third failure within a minute ends it
  auto history = parse(api("GET", "/api/me/streams", "", token).body);
  EXPECT_STREQ(history["streams"][0]["stream"]["end_reason"].GetString(), "pipeline_failed");

  // Silence: a new stream that gets no frames for 2 s ends.
  ASSERT_EQ(api("POST", "/api/streams", R"({"title":"quiet"})", token).status, 201);
  WsClient::spin([] { return false; }, 2500);
  sync_worker();
  history = parse(api("GET", "/api/me/streams", "", token).body);
  EXPECT_STREQ(history["streams"][0]["stream"]["end_reason"].GetString(), "ingest_silent");
  EXPECT_FALSE(parse(api("GET", "/api/streams/cleo").body)["live"].GetBool());

  // Shutdown: every stream on this host ends, billed.
  ASSERT_EQ(api("POST", "/api/streams", R"({"title":"last"})", token).status, 201);
  sync_worker();
  EXPECT_EQ(media_server_->local_streams(), std::vector<int64_t>{media_server_->stream_of("cleo")});
  worker_->stop("shutdown");
  history = parse(api("GET", "/api/me/streams", "", token).body);
  EXPECT_STREQ(history["streams"][0]["stream"]["end_reason"].GetString(), "shutdown");
  EXPECT_TRUE(media_server_->local_streams().empty());
}

// A browser's MediaRecorder: WebM (VP8) chunks over the ingest.
TEST_F(Media, WebmIngest) {
  std::string token = user("wendy", 3);
  auto started = parse(api("POST", "/api/streams", R"({"title":"webm"})", token).body);
  std::string url = started["ingest"]["websocket"].GetString();
  WsClient ingest(ws("/ingest/wendy?format=webm&secret=" + url.substr(url.find("secret=") + 7)));
  ASSERT_TRUE(ingest.open());
  WsClient watcher(ws("/watch/wendy"));
  // A live WebM stream in chunks, as MediaRecorder's ondataavailable gives them.
  const auto chunks = pull_buffers(
      "videotestsrc pattern=ball num-buffers=45 ! video/x-raw,width=160,height=120,framerate=15/1 ! "
      "vp8enc deadline=1 ! webmmux streamable=true ! appsink name=out sync=false");
  for (const auto& c : chunks) {
    ingest.send(c);
    WsClient::spin([] { return false; }, 30);
  }
  EXPECT_TRUE(WsClient::spin([&] { return watcher.binary().size() >= 3; }));
  EXPECT_EQ(media_server_->pipeline_error("wendy"), "");
  auto dash = parse(api("GET", "/api/me/dashboard", "", token).body);
  EXPECT_GT(dash["processing"]["frames_processed"].GetUint64(), 0u);
  api("POST", "/api/streams/current/stop", "", token);
}

// Backpressure: a viewer that stops reading skips frames (counted) instead
// of growing a buffer in the server, and a healthy viewer of the same
// stream is not slowed by it.
TEST_F(Media, SlowViewerSkipsFramesFastViewerKeepsUp) {
  std::string token = user("vera", 3);
  auto started = api("POST", "/api/streams", R"({"title":"slow"})", token);
  ASSERT_EQ(started.status, 201);
  WsClient ingest(ws("/ingest/vera?secret=" + secret_of(started.body)));
  ASSERT_TRUE(ingest.open());
  StalledViewer stalled(media_server_->port(), "/watch/vera");
  ASSERT_TRUE(stalled.upgraded());
  WsClient fast(ws("/watch/vera"));
  ASSERT_TRUE(fast.open());
  const auto frames = jpeg_frames(150, "ball");
  for (const auto& f : frames) {
    ingest.send(f);
    WsClient::spin([] { return false; }, 66);
  }
  WsClient::spin([] { return false; }, 500);
  const uint64_t skipped = media_server_->watch_frames_skipped("vera");
  const size_t received = fast.binary().size();
  EXPECT_GT(skipped, 20u) << "the stalled viewer was sent every frame";
  EXPECT_GT(received, 100u) << "the healthy viewer got " << received << " of 150";
  EXPECT_GE(received + skipped, 130u);
  ASSERT_EQ(api("POST", "/api/streams/current/stop", "", token).status, 200);
}

// SRT: `gst-launch-1.0 ... ! mpegtsmux ! srtsink` with the Access Control
// streamid. Tried: random UDP datagrams at the SRT port, no streamid, the
// wrong secret, mode request, another user's name, an authenticated caller
// sending random bytes instead of MPEG-TS; then a real publisher reaches
// WebSocket viewers and HLS.
TEST_F(Media, SrtIngestToHlsAndViewers) {
  std::string token = user("sam", 3);
  auto started = api("POST", "/api/streams", R"({"title":"srt"})", token);
  ASSERT_EQ(started.status, 201);
  const std::string secret = secret_of(started.body);
  const std::string port = std::to_string(media_server_->srt_port());
  ASSERT_NE(port, "0");

  // Garbage on the SRT port: libsrt drops what is not an SRT handshake.
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(media_server_->srt_port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::mt19937 rng(9000);
  for (int i = 0; i < 500; ++i) {
    std::string junk(1 + rng() % 1500, '\0');
    for (char& c : junk) c = char(rng());
    sendto(udp, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  close(udp);

  auto srt = [&](const std::string& streamid) {
    // alignment=7: 7 TS packets (1316 bytes) per SRT message, as OBS and ffmpeg send.
    return "mpegtsmux alignment=7 ! srtsink uri=srt://127.0.0.1:" + port +
           (streamid.empty() ? std::string() : " streamid=\"" + streamid + "\"");
  };
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + srt("")), 0);
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + srt("#!::r=sam,m=publish,s=wrong")), 0);
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + srt("#!::r=sam,m=request,s=" + secret)), 0);
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + srt("#!::r=nobody,m=publish,s=" + secret)), 0);
  EXPECT_EQ(media_server_->pipeline_error("sam"), "");

  // Authenticated, but random bytes instead of MPEG-TS: dropped by the
  // demuxer, nothing crashes.
  const std::string junk_file = "/tmp/mirage-srt-junk-" + std::to_string(getpid());
  {
    std::ofstream junk(junk_file, std::ios::binary);
    for (int i = 0; i < 200000; ++i) junk.put(char(rng()));
  }
  EXPECT_EQ(gst_launch("filesrc location=" + junk_file + " blocksize=1316 ! srtsink uri=srt://127.0.0.1:" + port +
                       " streamid=\"#!::r=sam,m=publish,s=" + secret + "\""),
            0);
  std::remove(junk_file.c_str());
  EXPECT_EQ(media_server_->pipeline_error("sam"), "");
  // libsrt notices the junk sender's close; only then may the next publish.
  ASSERT_TRUE(WsClient::spin([&] { return media_server_->publisher("sam").empty(); }, 15000));

  // The real thing: 6 s of H.264 in MPEG-TS.
  WsClient watcher(ws("/watch/sam"));
  ASSERT_TRUE(watcher.open());
  auto publisher = std::async(std::launch::async, [&] {
    return gst_launch(h264_source(6) + " ! " + srt("#!::r=sam,m=publish,s=" + secret));
  });
  ASSERT_TRUE(WsClient::spin([&] { return watcher.binary().size() >= 5; }, 20000)) << media_server_->health_of("sam");
  // One publisher at a time: a second WebSocket ingest is turned away.
  WsClient second(ws("/ingest/sam?secret=" + secret));
  EXPECT_TRUE(WsClient::spin([&] { return !second.open(); }, 3000));
  EXPECT_EQ(publisher.get(), 0);
  EXPECT_EQ(media_server_->pipeline_error("sam"), "");
  expect_hls_decodes("sam");
  auto dash = parse(api("GET", "/api/me/dashboard", "", token).body);
  EXPECT_STREQ(dash["processing"]["ingest"].GetString(), "ts");
  EXPECT_GT(dash["processing"]["frames_decoded"].GetUint64(), 30u);
  ASSERT_EQ(api("POST", "/api/streams/current/stop", "", token).status, 200);
}

// The Python examples as a user runs them, with the URLs the API gives (the
// worker's): push.py logs in, starts the stream (with --style and
// --strength) and sends 10 s of test pattern over SRT; the HLS playlist appears
// and decodes; watch.py saves processed frames; push.py ends the stream.
TEST_F(Media, PythonPushAndWatchExamples) {
  user("pia", 3);  // password123
  const std::string examples = MIRAGE_EXAMPLES_DIR;
  auto push = std::async(std::launch::async, [&] {
    return std::system(("timeout 60 python3 " + examples + "/push.py --api http://127.0.0.1:" +
                        std::to_string(server_->port()) + " --user pia --password password123 --seconds 10 " +
                        "--width 320 --height 240 --style sketch --strength 0.6 > /dev/null 2>&1")
                           .c_str());
  });
  ASSERT_TRUE(WsClient::spin([&] { return media_server_->publisher("pia") == "srt"; }, 20000));
  // --style and --strength went live with the stream: the streamer's choice.
  auto live = parse(api("GET", "/api/streams/pia").body);
  EXPECT_STREQ(live["streamer_style"].GetString(), "sketch");
  EXPECT_STREQ(live["style"].GetString(), "sketch");
  EXPECT_NEAR(live["strength"].GetDouble(), 0.6, 1e-6);
  expect_hls_decodes("pia");
  const std::string out = "/tmp/mirage-watch-" + std::to_string(getpid());
  EXPECT_EQ(std::system(("python3 " + examples + "/watch.py pia --frames 5 --api http://127.0.0.1:" +
                         std::to_string(server_->port()) + " --out " + out + " > /dev/null 2>&1")
                            .c_str()),
            0);
  for (int i = 0; i < 5; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/frame%05d.jpg", i);
    std::ifstream jpeg(out + name, std::ios::binary);
    ASSERT_TRUE(jpeg) << out + name;
    EXPECT_EQ(jpeg.get(), 0xFF);
    EXPECT_EQ(jpeg.get(), 0xD8);
  }
  std::system(("rm -rf " + out).c_str());
  EXPECT_EQ(push.get(), 0);
  EXPECT_FALSE(parse(api("GET", "/api/streams/pia").body)["live"].GetBool());  // push.py stopped it
}

// RTSP RECORD (rtspclientsink, as ffmpeg -f rtsp would): refused without
// credentials, with a wrong secret, with another user's secret and at
// another user's path; with the URL from POST /api/streams, frames reach
// viewers and HLS.
TEST_F(Media, RtspRecordIngest) {
  std::string token = user("rita", 3), other = user("otto", 3);
  auto started = api("POST", "/api/streams", R"({"title":"rtsp"})", token);
  ASSERT_EQ(started.status, 201);
  ASSERT_EQ(api("POST", "/api/streams", R"({"title":"other"})", other).status, 201);
  const std::string secret = secret_of(started.body);
  // The announced URL: the worker's RTSP port, with the credentials.
  const std::string host = "127.0.0.1:" + std::to_string(media_server_->rtsp_port());
  const std::string url = parse(started.body)["ingest"]["rtsp"].GetString();
  EXPECT_EQ(url, "rtsp://rita:" + secret + "@" + host + "/ingest/rita");
  auto sink = [](const std::string& u) { return "rtspclientsink protocols=tcp location=\"" + u + "\""; };
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + sink("rtsp://" + host + "/ingest/rita"), 15), 0);
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + sink("rtsp://rita:wrong@" + host + "/ingest/rita"), 15), 0);
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + sink("rtsp://rita:" + secret + "@" + host + "/ingest/otto"), 15), 0);
  EXPECT_NE(gst_launch(h264_source(1) + " ! " + sink("rtsp://otto:" + secret + "@" + host + "/ingest/otto"), 15), 0);
  EXPECT_EQ(media_server_->publisher("rita"), "");
  EXPECT_EQ(media_server_->publisher("otto"), "");

  WsClient watcher(ws("/watch/rita"));
  ASSERT_TRUE(watcher.open());
  auto publisher = std::async(std::launch::async, [&] { return gst_launch(h264_source(6) + " ! " + sink(url), 20); });
  ASSERT_TRUE(WsClient::spin([&] { return watcher.binary().size() >= 5; }, 20000)) << media_server_->health_of("rita");
  EXPECT_EQ(media_server_->publisher("rita"), "rtsp");
  // Not its exit status: at its own EOS, rtspclientsink 1.22 now and then
  // hangs or fails its TEARDOWN ("Could not send message", seen on main
  // before issue 12 too, about 1 run in 4) after every frame went through.
  publisher.wait();
  EXPECT_EQ(media_server_->pipeline_error("rita"), "");
  expect_hls_decodes("rita");
  auto dash = parse(api("GET", "/api/me/dashboard", "", token).body);
  EXPECT_STREQ(dash["processing"]["ingest"].GetString(), "h264");
  ASSERT_EQ(api("POST", "/api/streams/current/stop", "", token).status, 200);
  // otto never published: his stream ended for silence (2 s here).
  auto otto = parse(api("GET", "/api/me/streams", "", other).body);
  EXPECT_STREQ(otto["streams"][0]["stream"]["end_reason"].GetString(), "ingest_silent");
}

// GET /thumbnail/{user}.jpg, the home page's: a recent processed frame,
// the same one for 2 s (and cacheable as long), 404 before the first frame,
// for a user not live here and for any path that names no user; a
// thumbnail is not a viewer.
TEST_F(Media, ThumbnailOfALiveStream) {
  std::string token = user("tess", 3);
  auto started = api("POST", "/api/streams", R"({"title":"thumbs"})", token);
  ASSERT_EQ(started.status, 201) << started.body;
  wait_live("tess");
  auto get = [&](const std::string& path) { return test::http(media_server_->port(), "GET", path); };
  auto early = get("/thumbnail/tess.jpg");
  EXPECT_EQ(early.status, 404);  // live, but nothing processed yet
  EXPECT_NE(early.body.find("no_frame"), std::string::npos) << early.body;

  WsClient ingest(ws("/ingest/tess?secret=" + secret_of(started.body)));
  ASSERT_TRUE(ingest.open());
  const auto blue = jpeg_frames(20, "blue"), red = jpeg_frames(90, "red");
  for (const auto& f : blue) {
    ingest.send(f);
    WsClient::spin([] { return false; }, 66);
  }
  test::HttpResponse first;
  ASSERT_TRUE(WsClient::spin([&] { return (first = get("/thumbnail/tess.jpg")).status == 200; }));
  const auto taken = std::chrono::steady_clock::now();
  EXPECT_EQ(first.headers["content-type"], "image/jpeg");
  EXPECT_EQ(first.headers["cache-control"], "max-age=2");
  EXPECT_EQ(first.headers["access-control-allow-origin"], "*");
  ASSERT_GE(first.body.size(), 2u);
  EXPECT_EQ(uint8_t(first.body[0]), 0xFF);
  EXPECT_EQ(uint8_t(first.body[1]), 0xD8);
  const auto blueish = mean_rgb(first.body);
  EXPECT_GT(blueish[2], blueish[0]) << "not the blue frames";

  // Red frames from now on: the same thumbnail until 2 s after it was
  // taken, then a red one. Real time; the 0.5 s margins are for the
  // request's own latency on a loaded machine.
  bool changed = false;
  int same = 0;
  uint64_t got = first.body.size();  // thumbnail bytes received
  for (const auto& f : red) {
    ingest.send(f);
    WsClient::spin([] { return false; }, 66);
    const auto age = std::chrono::steady_clock::now() - taken;
    auto now = get("/thumbnail/tess.jpg");
    ASSERT_EQ(now.status, 200);
    got += now.body.size();
    if (age < std::chrono::milliseconds(1500)) {
      EXPECT_EQ(now.body, first.body) << "renewed after " << std::chrono::duration<double>(age).count() << " s";
      ++same;
    } else if (age > std::chrono::milliseconds(2500) && now.body != first.body) {
      const auto reddish = mean_rgb(now.body);
      EXPECT_GT(reddish[0], reddish[2]) << "not the red frames";
      changed = true;
      break;
    }
  }
  EXPECT_GT(same, 5);
  EXPECT_TRUE(changed) << "the thumbnail was not renewed";
  EXPECT_TRUE(WsClient::spin([&] { return sent_bytes("tess", "thumbnail") >= got; }))
      << sent_bytes("tess", "thumbnail") << " counted, " << got << " received";
  EXPECT_EQ(parse(api("GET", "/api/streams/tess").body)["viewers"].GetInt(), 0);  // thumbnails are no viewers

  auto unknown = get("/thumbnail/nobody.jpg");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.headers["content-type"], "application/json");
  EXPECT_NE(unknown.body.find("not_live"), std::string::npos) << unknown.body;
  for (const char* odd : {"/thumbnail/TESS.jpg", "/thumbnail/tess.png", "/thumbnail/tess.jpg/x", "/thumbnail/tess",
                          "/thumbnail/", "/thumbnail", "/thumbnail/te%2Fss.jpg", "/thumbnail/..%2Ftess.jpg",
                          "/thumbnail/..%2F..%2Fetc%2Fpasswd.jpg", "/thumbnail/t%00ess.jpg", "/thumbnail/tess.jpg%00",
                          "/thumbnail/t\xc3\xa9ss.jpg", "/thumbnail/tess%20.jpg", "/thumbnail/ab.jpg"}) {
    auto r = get(odd);  // libsoup itself answers 400 for an encoded dot-segment or NUL
    EXPECT_TRUE(r.status == 404 || r.status == 400) << odd << ": " << r.status;
    EXPECT_EQ(r.body.find("\xFF\xD8"), std::string::npos) << odd;
  }
  EXPECT_EQ(test::http(media_server_->port(), "POST", "/thumbnail/tess.jpg", "x").status, 405);

  ASSERT_EQ(api("POST", "/api/streams/current/stop", "", token).status, 200);
  EXPECT_EQ(get("/thumbnail/tess.jpg").status, 404);
}

}  // namespace
}  // namespace mirage

int main(int argc, char** argv) { return mirage::media_test_main(argc, argv); }
