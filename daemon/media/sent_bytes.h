// Bytes a stream's viewers were sent, by protocol (the health's
// "sent_bytes", mirage_stream_sent_bytes_total). One per stream for its
// whole life on this worker: it belongs to the Stream, not to a pipeline,
// so a rebuild leaves it counting on; shared, because a response still
// being written or a WHEP session still closing may add to it after the
// Stream has gone.
//
// What each counts (docs/metrics.md):
//   hls        response bodies of playlists and segments, as libsoup wrote
//              them to the socket (HTTP headers not counted)
//   websocket  /watch frame payloads handed to an open, writable connection
//              (the 2-14 bytes of WebSocket framing not counted)
//   whep       what each WHEP viewer's peer connection handed to libnice for
//              the network: SRTP video, SRTCP, DTLS (UDP payloads; IP and UDP
//              headers and libnice's own STUN checks not counted)
//   thumbnail  /thumbnail/{user}.jpg response bodies, as written
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

typedef struct _SoupServerMessage SoupServerMessage;
typedef struct _GstElement GstElement;

namespace mirage::media {

struct SentBytes {
  std::atomic<uint64_t> hls{0}, websocket{0}, whep{0}, thumbnail{0};

  // {"hls":N,"websocket":N,"whep":N,"thumbnail":N}
  std::string json() const;
};

// One of |sent|'s counters, keeping |sent| alive (the aliasing constructor).
inline std::shared_ptr<std::atomic<uint64_t>> counter_of(const std::shared_ptr<SentBytes>& sent,
                                                         std::atomic<uint64_t> SentBytes::*which) {
  return std::shared_ptr<std::atomic<uint64_t>>(sent, &((*sent).*which));
}

// Adds to |counter| what libsoup writes of |msg|'s response body from now
// on ("wrote-body-data"): bytes that reached the socket, not bytes meant
// (a client that goes away mid-segment counts what it got). Loop thread.
void count_response_body(SoupServerMessage* msg, std::shared_ptr<std::atomic<uint64_t>> counter);

// Adds to |counter| every buffer handed to a nicesink anywhere in the bin
// |pipeline| (webrtcbin makes its own when it negotiates): the datagrams a
// peer connection gives libnice to send. Call before the pipeline builds
// anything; the counting lasts as long as those elements do.
void count_network_sends(GstElement* pipeline, std::shared_ptr<std::atomic<uint64_t>> counter);

}  // namespace mirage::media
