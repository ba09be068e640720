// One WebRTC peer connection of a media worker, on GStreamer's webrtcbin
// (docs/media.md, "WebRTC"): a WHIP publisher (its video decoded and handed
// on as JPEG frames, the stream's usual ingest) or a WHEP viewer (the
// stream's H.264, encoded once for HLS and every viewer, payloaded for it).
// Signalling is non-trickle: answer() waits until ICE gathering completed,
// so the answer carries every candidate.
//
// ICE (configure_ice): candidates only on the configured addresses, libnice's
// UPnP off (it multicasts discovery out of the real interface otherwise), no
// STUN or TURN unless configured, ICE-TCP off, an optional UDP port range.
// The test clients use the same function.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

typedef struct _GstElement GstElement;
typedef struct _GstSample GstSample;

namespace mirage::media {

struct IceSettings {
  std::vector<std::string> addresses;  // gather candidates on these only
  // stun://host:port, turn://user:password@host:port (turns:// too).
  std::vector<std::string> servers;
  int min_port = 0, max_port = 0;      // UDP port range; 0: any
  std::string public_ip;               // 1:1 NAT: written into the answer's candidates
  bool relay_only = false;             // clients: TURN relays only
};

// Parses "a,b,c" and "MIN-MAX" settings; false with |error| when malformed.
bool parse_ice_settings(const std::string& addresses, const std::string& servers, const std::string& port_range,
                        const std::string& public_ip, IceSettings* out, std::string* error);
// Applies |ice| to a webrtcbin (before any negotiation).
void configure_ice(GstElement* webrtcbin, const IceSettings& ice);
// The WHIP/WHEP Link header values for the configured STUN/TURN servers.
std::vector<std::string> ice_link_headers(const IceSettings& ice);

class WebRtcSession {
 public:
  enum class Role { kPublisher, kViewer };
  // The outcome of an offer: an answer, or an HTTP status and a sentence.
  struct Answer {
    std::shared_ptr<WebRtcSession> session;
    std::string sdp;
    int status = 201;
    std::string error;
  };
  // Builds the peer connection for |offer| and waits (at most a few seconds)
  // for the answer with all candidates. Blocking: not on the media loop.
  // A publisher needs H.264 or VP8 video in the offer (audio is accepted
  // and dropped); a viewer a recvonly video m-line with H.264
  // (packetization-mode 1). A viewer adds what its peer connection sends
  // to |sent| (sent_bytes.h, count_network_sends), if given.
  static Answer answer(Role role, const std::string& offer, const IceSettings& ice,
                       std::shared_ptr<std::atomic<uint64_t>> sent = nullptr);
  ~WebRtcSession();
  WebRtcSession(const WebRtcSession&) = delete;
  WebRtcSession& operator=(const WebRtcSession&) = delete;

  Role role() const { return role_; }
  // Publisher: each decoded frame as JPEG (a streaming thread). Set before
  // frames flow; the first arrive after the DTLS handshake.
  void set_on_frame(std::function<void(const std::string& jpeg)> on_frame);
  // The connection failed or closed (a GStreamer thread): the owner drops it.
  void set_on_closed(std::function<void()> on_closed);
  // Viewer: the peer asked for a keyframe (PLI/FIR).
  void set_on_keyframe_request(std::function<void()> on_request);
  // Viewer: the next H.264 access unit (byte-stream). Dropped until the first
  // keyframe and while its queue is full: a slow viewer loses frames, the
  // encoder and the others never wait for it.
  void push(GstSample* sample);
  uint64_t pushed() const;
  uint64_t frames() const;  // publisher: frames decoded so far
  // About once a second (the worker's maintain): a publisher that has not
  // sent a decodable keyframe yet is asked for one (PLI).
  void tick();
  // Stops the pipeline (not from one of its own streaming threads).
  void close();

 private:
  explicit WebRtcSession(Role role);
  bool build(const std::string& offer, const IceSettings& ice, std::shared_ptr<std::atomic<uint64_t>> sent,
             std::string* answer, int* status, std::string* error);

  struct Impl;
  const Role role_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mirage::media
