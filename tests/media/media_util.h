// Helpers for media tests and the media benchmark: JPEG frames made by
// GStreamer, JPEG colour read back by GStreamer, and a libsoup WebSocket
// client on the calling thread's main context.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace mirage {

// Every buffer a pipeline hands to its "appsink name=out", until EOS:
// frames made by GStreamer's own encoders.
inline std::vector<std::string> pull_buffers(const std::string& description) {
  GstElement* p = gst_parse_launch(description.c_str(), nullptr);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  std::vector<std::string> out;
  while (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
    GstMapInfo map;
    gst_buffer_map(gst_sample_get_buffer(s), &map, GST_MAP_READ);
    out.emplace_back(reinterpret_cast<const char*>(map.data), map.size);
    gst_buffer_unmap(gst_sample_get_buffer(s), &map);
    gst_sample_unref(s);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  return out;
}

// JPEG frames of a videotestsrc pattern ("ball" moves; "blue", "red" are
// solid: a stream's "mark").
inline std::vector<std::string> jpeg_frames(int count, const char* pattern = "ball", int width = 160,
                                            int height = 120) {
  return pull_buffers(std::string("videotestsrc pattern=") + pattern + " num-buffers=" + std::to_string(count) +
                      " ! video/x-raw,width=" + std::to_string(width) + ",height=" + std::to_string(height) +
                      " ! jpegenc ! appsink name=out sync=false");
}

// Mean R, G, B of a JPEG, decoded by GStreamer.
inline std::array<double, 3> mean_rgb(const std::string& jpeg) {
  GstElement* p = gst_parse_launch(
      "appsrc name=in caps=image/jpeg ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=out sync=false",
      nullptr);
  GstElement* in = gst_bin_get_by_name(GST_BIN(p), "in");
  GstElement* out = gst_bin_get_by_name(GST_BIN(p), "out");
  gst_element_set_state(p, GST_STATE_PLAYING);
  gst_app_src_push_buffer(GST_APP_SRC(in), gst_buffer_new_memdup(jpeg.data(), jpeg.size()));
  gst_app_src_end_of_stream(GST_APP_SRC(in));
  std::array<double, 3> mean{};
  if (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(out))) {
    GstMapInfo map;
    gst_buffer_map(gst_sample_get_buffer(s), &map, GST_MAP_READ);
    for (gsize i = 0; i + 2 < map.size; i += 3)
      for (int c = 0; c < 3; ++c) mean[c] += map.data[i + c];
    for (double& m : mean) m /= double(map.size / 3);
    gst_buffer_unmap(gst_sample_get_buffer(s), &map);
    gst_sample_unref(s);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(in);
  gst_object_unref(out);
  gst_object_unref(p);
  return mean;
}

// A WebSocket client on this thread's own main context.
class WsClient {
 public:
  explicit WsClient(const std::string& url) {
    session_ = soup_session_new();
    SoupMessage* msg = soup_message_new("GET", url.c_str());
    soup_session_websocket_connect_async(
        session_, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr,
        [](GObject* source, GAsyncResult* result, gpointer data) {
          auto* self = static_cast<WsClient*>(data);
          GError* error = nullptr;
          self->conn_ = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &error);
          if (error) self->status_ = soup_message_get_status(self->msg_);
          g_clear_error(&error);
          self->done_ = true;
        },
        this);
    msg_ = msg;
    spin([this] { return done_; });
    if (conn_) {
      soup_websocket_connection_set_max_incoming_payload_size(conn_, 16 << 20);
      g_signal_connect(conn_, "message", G_CALLBACK(+[](SoupWebsocketConnection*, gint type, GBytes* m, gpointer d) {
                         auto* self = static_cast<WsClient*>(d);
                         gsize n = 0;
                         const char* p = static_cast<const char*>(g_bytes_get_data(m, &n));
                         (type == SOUP_WEBSOCKET_DATA_BINARY ? self->binary_ : self->text_).emplace_back(p, n);
                       }),
                       this);
    }
  }
  ~WsClient() {
    if (conn_) {
      if (soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
      g_object_unref(conn_);
    }
    g_object_unref(msg_);
    g_object_unref(session_);
  }
  bool open() const { return conn_ && soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN; }
  // The HTTP status of a refused handshake (0 when it opened or never got one).
  unsigned status() const { return status_; }
  // Connects again and again until the server lets it in (a worker that has
  // not reconciled a new stream yet answers 404); null after |ms|.
  static std::unique_ptr<WsClient> once_open(const std::string& url, int ms = 10000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      auto client = std::make_unique<WsClient>(url);
      if (client->open()) return client;
      if (std::chrono::steady_clock::now() >= deadline) return nullptr;
      spin([] { return false; }, 50);
    }
  }
  void send(const std::string& bytes) { soup_websocket_connection_send_binary(conn_, bytes.data(), bytes.size()); }
  const std::vector<std::string>& binary() const { return binary_; }
  const std::vector<std::string>& text() const { return text_; }
  std::string close_data() const { return conn_ ? soup_websocket_connection_get_close_data(conn_) ?: "" : ""; }
  unsigned short close_code() const { return conn_ ? soup_websocket_connection_get_close_code(conn_) : 0; }

  // Runs the main context until |done| or the deadline.
  static bool spin(const std::function<bool()>& done, int ms = 10000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done() && std::chrono::steady_clock::now() < deadline) g_main_context_iteration(nullptr, FALSE),
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return done();
  }

 private:
  SoupSession* session_ = nullptr;
  SoupMessage* msg_ = nullptr;
  SoupWebsocketConnection* conn_ = nullptr;
  bool done_ = false;
  unsigned status_ = 0;
  std::vector<std::string> binary_, text_;
};


// A WebSocket viewer that completes the handshake and then never reads:
// what a viewer on a stalled network looks like to the server.
class StalledViewer {
 public:
  StalledViewer(uint16_t port, const std::string& path) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n";
    if (::send(fd_, request.data(), request.size(), 0) != ssize_t(request.size())) return;
    std::string response;
    char c;
    while (response.find("\r\n\r\n") == std::string::npos && recv(fd_, &c, 1, 0) == 1) response += c;
    upgraded_ = response.rfind("HTTP/1.1 101", 0) == 0;
  }
  ~StalledViewer() { close(fd_); }
  bool upgraded() const { return upgraded_; }

 private:
  int fd_ = -1;
  bool upgraded_ = false;
};

}  // namespace mirage
