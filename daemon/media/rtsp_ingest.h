// RTSP ingest: an RTSP server (gst-rtsp-server, default port 8554) that
// accepts RECORD sessions, H.264 over RTP, the way ffmpeg (-f rtsp) and
// rtspclientsink publish:
//
//   rtsp://{username}:{secret}@host:8554/ingest/{username}
//
// The secret travels as RTSP Basic credentials (a query string would be
// copied into every SETUP's control URL, which RTSP servers do not expect).
// A mount exists only while the user's stream is live (add/remove) and only
// that user's credentials open it: gst-rtsp-server answers 401 with a
// challenge otherwise, before the session exists. ANNOUNCE then asks
// Hooks::admit (one publisher per stream); SETUP and RECORD from a client
// that did not pass are refused. Received access units (H.264 byte-stream)
// go to Hooks::data on the media's streaming thread.
//
// Threads: everything but Hooks::data runs on the GLib main context given
// to start(); add() and remove() must be called there too.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

typedef struct _GMainContext GMainContext;
typedef struct _GSource GSource;
typedef struct _GstRTSPServer GstRTSPServer;
typedef struct _GstRTSPClient GstRTSPClient;
typedef struct _GstRTSPAuth GstRTSPAuth;

namespace mirage::media {

class RtspIngest {
 public:
  struct Hooks {
    // |username| has authenticated: 0 admits, otherwise an RTSP status
    // code (455 another ingest is active, 404 not live).
    std::function<int(const std::string& username)> admit;
    std::function<void(const std::string& username)> connected;  // the media is being built
    std::function<void(const std::string& username, const uint8_t* data, size_t size)> data;
    std::function<void(const std::string& username)> closed;
  };

  explicit RtspIngest(Hooks hooks);
  ~RtspIngest();
  // Listens on "address:port" (port 0 picks a free one) on |context|.
  bool start(const std::string& addr, GMainContext* context, std::string* error);
  uint16_t port() const { return port_; }
  void add(const std::string& username, const std::string& secret);
  void remove(const std::string& username);  // also closes the user's client

 private:
  static int on_announce(GstRTSPClient* client, void* ctx, void* self);
  static int on_setup_or_record(GstRTSPClient* client, void* ctx, void* self);

  const Hooks hooks_;
  GstRTSPServer* server_ = nullptr;
  GstRTSPAuth* auth_ = nullptr;
  std::map<std::string, std::string> credentials_;  // username -> base64 "user:secret"
  GSource* source_ = nullptr;
  uint16_t port_ = 0;
  std::map<GstRTSPClient*, std::string> admitted_;  // client -> username
};

}  // namespace mirage::media
