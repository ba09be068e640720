// The media plane of one host: per-stream pipelines and the media port's
// protocols, on libsoup in its own GLib main loop thread.
//
//   WebSocket /ingest/{username}?secret=S   binary messages, one JPEG frame each
//                                           (?format=webm: a MediaRecorder byte stream)
//   WebSocket /watch/{username}             the newest processed frame as JPEG
//   WebSocket /events/{username}            JSON: live, offline, style, viewers, comment
//   GET /live/{username}/index.m3u8, .ts    HLS, processed video only
//   GET /thumbnail/{username}.jpg           a recent processed frame (the home page's)
//
// and two more ingest listeners, each authenticated with the same secret
// before a byte reaches a pipeline (one publisher per stream, whatever the
// kind):
//
//   SRT  (srt_ingest.h)   streamid #!::r={username},m=publish,s={secret}; MPEG-TS/H.264
//   RTSP (rtsp_ingest.h)  RECORD rtsp://{username}:{secret}@host:8554/ingest/{username}; H.264
//
// It implements MediaPlane, the narrow interface the daemon's services use.
//
// Ownership and threads (media_server.cpp has the details):
//  - Each stream's state is a Stream, keyed by stream id in streams_ and
//    reachable by username through by_user_ while it is the user's live
//    stream. mutex_ guards both maps and every Stream field marked so; it is
//    held briefly and never while calling into a pipeline that may block
//    or into libsoup.
//  - The slow parts of a stream's life (building its pipeline, tearing it
//    down, rebuilding it for another ingest kind or after a failure) run as
//    jobs on the stream's strand (strand.h): one at a time per stream, in
//    order, on the lifecycle pool, never on a request thread or the loop.
//  - libsoup objects (connections, messages) are touched only on the loop
//    thread; other threads post() work to it. Nothing on the loop blocks:
//    HLS files are read asynchronously, ingest secrets are checked against
//    the copy given with stream_started (no database query).
//  - The media port accepts connections itself (GSocketService, backlog
//    1024), caps them per client address and in total, and gives every
//    socket an idle timeout; plain HTTP connections close after each
//    response, WebSockets are pinged so that dead peers time out.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "auth/client_address.h"
#include "log/log.h"
#include "media/media_plane.h"
#include "media/model_probe.h"
#include "media/rtsp_ingest.h"
#include "media/sent_bytes.h"
#include "media/srt_ingest.h"
#include "media/strand.h"
#include "media/stream_pipeline.h"
#include "media/viewer_count.h"
#include "media/webrtc_session.h"

typedef struct _SoupServer SoupServer;
typedef struct _SoupServerMessage SoupServerMessage;
typedef struct _SoupWebsocketConnection SoupWebsocketConnection;
typedef struct _GMainContext GMainContext;
typedef struct _GMainLoop GMainLoop;
typedef struct _GHashTable GHashTable;
typedef struct _GSocketService GSocketService;
typedef struct _GSocketConnection GSocketConnection;
typedef struct _GSocket GSocket;
typedef struct _GObject GObject;
typedef struct _GstSample GstSample;

namespace mirage::media {

// A stream that left this worker for another (stream_stopped's reason
// "moved": a drain handed it over; "worker_replaced": another process took
// this worker's name). Its publisher and viewers are closed with
// kCloseMoved (4001, reason "moved"; not 1012 "service restart", which
// libsoup's client, for one, rejects as a protocol error) and its /events
// sockets get {"type":"moved"} instead of "offline": they re-read the URLs
// and reconnect.
inline bool moved_away(const std::string& reason) { return reason == "moved" || reason == "worker_replaced"; }
constexpr unsigned short kCloseMoved = 4001;

struct MediaSettings {
  IceSettings ice;                           // WHIP/WHEP peer connections (webrtc_session.h)
  std::string addr = "127.0.0.1:8081";       // port 0 picks a free one
  std::string srt_addr = "127.0.0.1:9000";   // empty: no SRT ingest
  std::string rtsp_addr = "127.0.0.1:8554";  // empty: no RTSP ingest
  std::string srt_passphrase;                // empty: SRT without encryption
  std::string templates_dir;                 // pipelines/
  std::string hls_root;                      // one folder per stream id below it
  std::string model;           // loaded at start() (model_probe.h): a broken one fails it
  std::string device = "auto";  // diffusionfilter's
  double strength = 0.8;
  int width = 640;
  int height = 480;
  int fps = 15;
  int silence_seconds = 15;     // no ingest frame for this long ends the stream
  int restarts_per_minute = 3;  // a pipeline failing more often ends the stream
  int max_ingest_width = 1920;  // frames declaring more are refused before decoding
  int max_ingest_height = 1080;
  int connections_per_address = 64;  // on the media port (trusted proxies exempt)
  int max_connections = 4096;
  int idle_timeout_seconds = 30;     // a socket with no I/O for this long is closed
  int hls_viewers_per_address = 8;   // viewer_count.h
  std::string trusted_proxies;       // whose X-Forwarded-For names the client
  int lifecycle_threads = 4;         // building and tearing down pipelines
};

class MediaServer : public MediaPlane {
 public:
  explicit MediaServer(MediaSettings settings);
  ~MediaServer() override;  // ends every stream (teardown waits for EOS), then the loop
  bool start(std::string* error);
  uint16_t port() const { return port_; }
  uint16_t srt_port() const;
  uint16_t rtsp_port() const;

  void stream_started(const StreamInfo& stream) override;
  void stream_stopped(int64_t stream_id, const std::string& reason) override;
  void apply_style(int64_t stream_id, const std::string& style) override;
  void apply_strength(int64_t stream_id, double strength) override;
  // diffusionfilter's style and strength in |username|'s live pipeline here
  // (tests); false while it has none.
  bool filter_settings(const std::string& username, std::string* style, double* strength);
  void secret_changed(int64_t stream_id, const std::string& secret) override;
  int viewers(int64_t stream_id) override;
  int unique_viewers(int64_t stream_id) override;
  std::vector<std::string> styles() override;  // the model's, read at start()
  // The shared model's calls by batch size (ModelProbe::batch_sizes); empty
  // before start().
  std::vector<uint64_t> model_batch_sizes();
  void event(const std::string& username, const std::string& json) override;
  std::string health(int64_t stream_id) override;
  bool ready(int64_t stream_id) override;
  std::optional<double> processing_seconds(int64_t stream_id) override;
  std::vector<std::pair<int64_t, std::string>> maintain() override;
  std::vector<int64_t> local_streams() override;

  // By username, the user's live stream here (tests, benchmarks).
  int64_t stream_of(const std::string& username);
  std::string health_of(const std::string& username) { return health(stream_of(username)); }
  // Refused or failed ingest frames (bad JPEG, too large, oversized).
  uint64_t frames_refused(const std::string& username);
  // Frames not sent to a WebSocket viewer whose connection was full.
  uint64_t watch_frames_skipped(const std::string& username);
  // The connected publisher: "websocket", "srt", "rtsp" or "" (none).
  std::string publisher(const std::string& username);
  std::string pipeline_error(const std::string& username);
  void inject_error(const std::string& username, const std::string& message);
  void hold_eos_for_test(const std::string& username);
  // Streams whose state is still held (ended ones go once torn down).
  size_t streams_held();
  // Media-port connections open now, and refused since the start.
  size_t connections_open();
  uint64_t connections_refused();
  // Blocks until every lifecycle job posted so far has run (tests).
  void wait_lifecycle_idle();
  // Elements of stream |stream_id|'s pipeline made by |factory| (tests: one
  // x264enc per stream however many WHEP viewers).
  int count_elements(int64_t stream_id, const std::string& factory);
  // This worker's media URL as clients reach it (the WHIP/WHEP Location);
  // known once the port is bound. Until set, Locations are paths.
  void set_public_url(const std::string& url);
  // What /readyz on the media port answers: (ready, JSON body). Called on
  // the loop thread: it must not block (no database I/O). Unset: ready.
  void set_readiness(std::function<std::pair<bool, std::string>()> readiness);

 private:
  struct Watcher {
    std::string address;  // the client's, and its ?viewer= id ("" none), for the viewer count
    std::string viewer;
    bool preview = false;
  };
  struct WhepViewer {
    std::shared_ptr<WebRtcSession> session;
    std::string address;  // the client's, and its ?viewer= id ("" none), for the viewer count
    std::string viewer;
  };
  // One stream's media. Fields below |mutex_ guards| are guarded by
  // MediaServer::mutex_; the strand serialises the lifecycle jobs.
  struct Stream {
    Stream(int64_t id, std::string username, std::string request_id, int viewers_per_address)
        : id(id), username(std::move(username)), request_id(std::move(request_id)), viewers(viewers_per_address) {}
    const int64_t id;
    const std::string username;
    const std::string request_id;  // of the API request that started it: in its log lines
    std::shared_ptr<StrandPool::Strand> strand;
    // Bytes sent to its viewers (sent_bytes.h): atomics, no lock; across
    // every pipeline the stream has here.
    const std::shared_ptr<SentBytes> sent = std::make_shared<SentBytes>();
    // mutex_ guards:
    std::string secret;
    std::string style;
    std::optional<double> strength;  // the streamer's; unset: MediaSettings::strength
    bool stopped = false;      // stream_stopped(): no more (re)builds
    bool announced = false;    // "live" was sent to the events watchers
    std::optional<std::chrono::steady_clock::time_point> first_frame;  // processed here
    std::shared_ptr<StreamPipeline> pipeline;  // null while (re)building
    std::string ingest = "jpeg";               // the kind wanted: jpeg, webm, ts, h264
    bool building = true;                      // byte pushes are kept for the next pipeline
    // A publisher's bytes went into the pipeline: the next byte-stream
    // publisher gets a fresh one (a demuxer does not take a second stream).
    bool pipeline_used = false;
    std::vector<std::string> pending;          // at most kMaxFrameBytes in all
    size_t pending_bytes = 0;
    uint64_t dropped_while_building = 0;
    std::string publisher;          // "", "websocket", "srt", "rtsp"
    bool publisher_confirmed = false;
    std::chrono::steady_clock::time_point claimed_at{};
    // For a claim made in a handshake that may still fail after it (SRT:
    // libsrt checks the passphrase after our callback): whether that caller
    // is still connecting. A dead claim frees the slot at once.
    std::function<bool()> claim_alive;
    SoupWebsocketConnection* ingest_ws = nullptr;  // a reference; the loop thread uses it
    std::map<SoupWebsocketConnection*, Watcher> watchers;  // references; the loop thread uses them
    std::shared_ptr<WebRtcSession> whip;        // a WHIP publisher (publisher "whip")
    std::string whip_id;
    std::map<std::string, WhepViewer> wheps;    // WHEP viewers by session id
    std::chrono::steady_clock::time_point last_keyframe_request{};
    ViewerCount viewers;
    bool send_pending = false;
    uint64_t watch_frames_skipped = 0;
    // GET /thumbnail/{username}.jpg: the processed frame it answers, taken
    // from the pipeline's newest at most every kThumbnailSeconds (one JPEG
    // per stream, shared with the watchers' frame when it is the same).
    std::shared_ptr<const std::string> thumbnail;
    std::chrono::steady_clock::time_point thumbnail_at{};
    std::vector<std::chrono::steady_clock::time_point> restarts;  // within the last minute
    uint64_t restarts_total = 0;
    bool restarting = false;
    std::string last_error;
    bool failed = false;    // a build failed; maintain() reports it once
  };
  using StreamPtr = std::shared_ptr<Stream>;
  // A log line's fields about |s| (stream_id, request_id, user), then |extra|.
  static std::vector<log::Field> stream_fields(const Stream& s, log::Fields extra = {});

  // Lifecycle jobs (on the stream's strand).
  // build() makes a pipeline for stream->ingest (the kind wanted when it
  // runs); rebuild() first tears the old one down, unless it is of that
  // kind already and |force| is false.
  void build(const StreamPtr& stream);
  void rebuild(const StreamPtr& stream, bool force);
  void adopt(const StreamPtr& stream, const std::shared_ptr<StreamPipeline>& pipeline);
  void teardown(const StreamPtr& stream);
  std::shared_ptr<StreamPipeline> make_pipeline(const StreamPtr& stream, const std::string& ingest, std::string* error);

  StreamPtr find(int64_t stream_id);              // takes mutex_
  // Changes |stream|'s state under mutex_ (pipelines built later read it) and
  // returns its pipeline now, if any.
  std::shared_ptr<StreamPipeline> restage(const StreamPtr& stream, const std::function<void(Stream&)>& change);
  StreamPtr live_locked(const std::string& username);  // mutex_ held
  // The SRT and RTSP listeners: may |username| publish now (and with
  // |secret|, unless the RTSP server checked it)? Claims the slot.
  enum class Admit { kOk, kNotLive, kWrongSecret, kBusy };
  Admit admit(const std::string& username, const std::string* secret, const std::string& via,
              std::function<bool()> alive = nullptr);
  // Whether the publisher slot is taken (mutex_ held).
  static bool publisher_busy(const Stream& s);
  // A byte-stream publisher of |format| starts: the pipeline is rebuilt
  // unless it is fresh and of that kind (mutex_ held).
  void new_publisher_locked(const StreamPtr& s, const std::string& format);
  void external_connected(const std::string& username, const std::string& via, const std::string& format);
  void external_closed(const std::string& username, const std::string& via);
  void push_external(const std::string& username, const std::string& format, const uint8_t* data, size_t size);

  // The loop thread (media_port.cpp; handlers in ws_ingest.cpp, ws_watch.cpp, hls_server.cpp,
  // thumbnail_server.cpp).
  void run_loop();
  void post(std::function<void()> fn);
  bool listen(std::string* error);
  static int on_incoming(GSocketService*, GSocketConnection*, GObject*, void* self);
  std::string client_address(SoupServerMessage* msg);
  GSocket* socket_of(SoupServerMessage* msg);
  void on_frame(int64_t stream_id);
  void broadcast(const std::string& username, const std::string& json);
  void close_stream_connections(const StreamPtr& stream, const std::string& reason);
  static void on_ingest_early(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);
  static void on_ingest(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection*, void*);
  static void on_watch(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection*, void*);
  static void on_events(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection*, void*);
  static void on_hls(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);
  static void on_thumbnail(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);  // thumbnail_server.cpp
  static void on_probe(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);
  // WHIP and WHEP (webrtc_server.cpp).
  static void on_webrtc_early(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);
  static void on_whip(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);
  static void on_whep(SoupServer*, SoupServerMessage*, const char*, GHashTable*, void*);
  void on_webrtc(SoupServerMessage* msg, const char* path, WebRtcSession::Role role);
  bool attach_webrtc_session(const StreamPtr& stream, const std::shared_ptr<WebRtcSession>& session,
                             const std::string& id, const std::string& address, const std::string& viewer);
  bool end_webrtc_session(const std::string& username, const std::string& id, const std::string& why);
  void close_webrtc_sessions(const StreamPtr& stream);
  void on_h264(int64_t stream_id, GstSample* sample);  // the stream's encoder -> its WHEP viewers
  void request_keyframe(int64_t stream_id);
  std::shared_ptr<StreamPipeline> keyframe_due_locked(Stream& stream);

  const MediaSettings settings_;
  std::string public_url_;  // guarded by mutex_
  std::function<std::pair<bool, std::string>()> readiness_;  // guarded by mutex_
  auth::TrustedProxies trusted_;
  GMainContext* context_ = nullptr;
  GMainLoop* loop_ = nullptr;
  SoupServer* server_ = nullptr;
  GSocketService* service_ = nullptr;
  std::thread thread_;
  uint16_t port_ = 0;
  std::unique_ptr<SrtIngest> srt_;
  std::unique_ptr<RtspIngest> rtsp_;  // loop thread only
  std::unique_ptr<StrandPool> lifecycle_;
  std::unique_ptr<ModelProbe> model_;  // set by start(), then read-only

  std::mutex mutex_;  // guards streams_, by_user_ and the Stream fields marked so
  std::map<int64_t, StreamPtr> streams_;
  std::map<std::string, int64_t> by_user_;  // username -> the user's live stream
  // Streams stopped here, newest last (at most kRememberStopped): a start
  // that comes after its stop (a stop racing POST /api/streams) is ignored.
  static constexpr size_t kRememberStopped = 10000;
  std::set<int64_t> stopped_ids_;
  std::deque<int64_t> stopped_order_;

  // Loop thread only.
  std::map<std::string, std::set<SoupWebsocketConnection*>> listeners_;  // /events, by username (references)
  struct Connection {
    std::string host;
    GSocket* socket = nullptr;  // owned by the connection
  };
  std::map<std::string, Connection> connections_;  // "host:port" -> open media-port connection
  std::map<std::string, int> per_host_;
  uint64_t refused_connections_ = 0;  // read from other threads only in tests, via post()
};

}  // namespace mirage::media
