// The media plane of one host: per-stream pipelines and the media port's
// protocols, on libsoup in its own GLib main loop thread.
//
//   WebSocket /ingest/{username}?secret=S   binary messages, one JPEG frame each
//   WebSocket /watch/{username}             the newest processed frame as JPEG
//   WebSocket /events/{username}            JSON: live, offline, style, viewers, comment
//   GET /live/{username}/index.m3u8, .ts    HLS, processed video only
//
// and two more ingest listeners, each authenticated with the same secret
// before a byte reaches a pipeline (one ingest per stream at a time):
//
//   SRT  (srt_ingest.h)   streamid #!::r={username},m=publish,s={secret}; MPEG-TS/H.264
//   RTSP (rtsp_ingest.h)  RECORD rtsp://host:8554/ingest/{username}?secret=S; H.264
//
// It implements MediaPlane, the narrow interface the daemon's services use,
// so pipelines can later move to separate GPU hosts behind the same calls.
//
// Threads: libsoup objects are touched only on the loop thread; calls from
// the daemon's threads and the pipelines' streaming threads are posted to
// it. streams_ is guarded by mutex_ (held briefly, never while calling out).
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "media/media_plane.h"
#include "media/rtsp_ingest.h"
#include "media/srt_ingest.h"
#include "media/stream_pipeline.h"

typedef struct _SoupServer SoupServer;
typedef struct _SoupServerMessage SoupServerMessage;
typedef struct _SoupWebsocketConnection SoupWebsocketConnection;
typedef struct _GMainContext GMainContext;
typedef struct _GMainLoop GMainLoop;
typedef struct _GHashTable GHashTable;

namespace mirage::media {

struct MediaSettings {
  std::string addr = "127.0.0.1:8081";  // port 0 picks a free one
  std::string srt_addr = "127.0.0.1:9000";   // empty: no SRT ingest
  std::string rtsp_addr = "127.0.0.1:8554";  // empty: no RTSP ingest
  std::string templates_dir;            // pipelines/
  std::string hls_root;                 // one folder per live stream below it
  std::string model;
  double strength = 0.8;
  int width = 640;
  int height = 480;
  int fps = 15;
  std::vector<std::string> styles;
  int silence_seconds = 15;    // no ingest frame for this long ends the stream
  int restarts_per_minute = 3;  // a pipeline failing more often ends the stream
};

// True when |secret| is the ingest secret of |username|'s live stream.
using IngestAuth = std::function<bool(const std::string& username, const std::string& secret)>;

class MediaServer : public MediaPlane {
 public:
  MediaServer(MediaSettings settings, IngestAuth auth);
  ~MediaServer() override;
  bool start(std::string* error);
  uint16_t port() const { return port_; }
  uint16_t srt_port() const;
  uint16_t rtsp_port() const;

  void stream_started(const std::string& username, const std::string& secret) override;
  void stream_stopped(const std::string& username, const std::string& reason) override;
  void apply_style(const std::string& username, const std::string& style) override;
  int viewers(const std::string& username) override;
  int unique_viewers(const std::string& username) override;
  std::vector<std::string> styles() override { return settings_.styles; }
  void event(const std::string& username, const std::string& json) override;
  std::string health(const std::string& username) override;
  std::vector<std::pair<std::string, std::string>> maintain() override;
  std::vector<std::string> local_streams() override;
  void inject_error(const std::string& username, const std::string& message);  // tests

  // Refused or failed ingest frames of a live stream (bad JPEG, too large).
  uint64_t frames_refused(const std::string& username);
  // Frames not sent to a WebSocket viewer whose connection was full.
  uint64_t watch_frames_skipped(const std::string& username);
  // The connected publisher: "websocket", "srt", "rtsp" or "" (none).
  std::string publisher(const std::string& username);
  std::string pipeline_error(const std::string& username);

 private:
  struct Stream {
    std::shared_ptr<StreamPipeline> pipeline;
    std::set<SoupWebsocketConnection*> watchers, listeners;
    SoupWebsocketConnection* ingest = nullptr;
    std::string ingest_via;  // "srt" or "rtsp" while such a publisher is connected
    bool switching = false;  // the pipeline is being rebuilt for another ingest kind
    std::vector<std::string> pending;  // SRT/RTSP bytes received meanwhile (at most 8 MiB)
    size_t pending_bytes = 0;
    std::map<std::string, std::chrono::steady_clock::time_point> hls_viewers;  // viewer id -> last request
    std::set<std::string> seen;  // every viewer id since the start
    bool send_pending = false;
    uint64_t watch_frames_skipped = 0;
    std::vector<std::chrono::steady_clock::time_point> restarts;  // within the last minute
    std::string last_error;
    bool failed_to_start = false;  // reported once by maintain()
  };

  std::shared_ptr<StreamPipeline> make_pipeline(const std::string& username, std::string* error,
                                                const std::string& ingest = "jpeg");
  std::shared_ptr<StreamPipeline> pipeline_of(const std::string& username);
  // The stream's pipeline, rebuilt first if its ingest part is not |format|.
  std::shared_ptr<StreamPipeline> use_ingest(const std::string& username, const std::string& format);
  // Shared by the SRT and RTSP listeners: whether |username| may publish
  // now. |secret| is checked unless null (the RTSP server checked it).
  enum class Admit { kOk, kNotLive, kWrongSecret, kBusy };
  Admit admit(const std::string& username, const std::string* secret);
  void external_connected(const std::string& username, const std::string& via, const std::string& format);
  void external_closed(const std::string& username, const std::string& via);
  void finish_switch(const std::string& username, const std::shared_ptr<StreamPipeline>& pipeline);
  void push_external(const std::string& username, const std::string& format, const uint8_t* data, size_t size);

  void run_loop();
  void post(std::function<void()> fn);
  void on_frame(const std::string& username);
  void broadcast(const std::string& username, const std::string& json);  // loop thread
  static void on_ingest_early(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);
  static void on_ingest(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection*, void*);
  static void on_watch(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection*, void*);
  static void on_events(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection*, void*);
  static void on_hls(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);

  const MediaSettings settings_;
  const IngestAuth auth_;
  GMainContext* context_ = nullptr;
  GMainLoop* loop_ = nullptr;
  SoupServer* server_ = nullptr;
  std::thread thread_;
  uint16_t port_ = 0;
  std::unique_ptr<SrtIngest> srt_;
  std::unique_ptr<RtspIngest> rtsp_;  // loop thread only

  std::mutex mutex_;  // guards streams_
  std::map<std::string, Stream> streams_;
  std::mutex switches_mutex_;  // guards switches_
  std::list<std::future<void>> switches_;  // pipelines being rebuilt for an SRT/RTSP publisher
};

}  // namespace mirage::media
