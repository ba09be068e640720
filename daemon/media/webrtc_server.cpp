// WHIP ingest and WHEP playback on the media port (docs/media.md, "WebRTC"):
//
//   POST   /whip/{user}        SDP offer, Authorization: Bearer <secret> -> 201 answer, Location
//   POST   /whep/{user}        SDP offer (no login)                      -> 201 answer, Location
//   DELETE /wh{i,e}p/{user}/{id}                                          -> 200, the session ends
//   PATCH  /wh{i,e}p/{user}/{id}                                          -> 405: no trickle ICE
//   OPTIONS                                                               -> 204, CORS preflight
//
// Checks run on the loop thread; building the peer connection (which waits
// for ICE gathering) runs on a lifecycle strand with the message paused.
// A WHIP publisher holds the stream's publisher slot like any other ingest
// kind and feeds its decoded frames as JPEG; WHEP viewers share the
// stream's one H.264 encoder (output-hls.pipeline's appsink "webrtc").
#include <libsoup/soup.h>

#include <cstdio>

#include "auth/token.h"
#include "json_text.h"
#include "media_server.h"
#include "soup_helpers.h"

namespace mirage::media {

namespace {

constexpr goffset kMaxOffer = 64 << 10;

void cors(SoupServerMessage* msg) {
  SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Access-Control-Allow-Origin", "*");
  soup_message_headers_replace(h, "Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS");
  soup_message_headers_replace(h, "Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match");
  soup_message_headers_replace(h, "Access-Control-Expose-Headers", "Location, Link, ETag");
}

void error_reply(SoupServerMessage* msg, guint status, const std::string& code, const std::string& message) {
  cors(msg);
  const std::string body = "{\"error\":{\"code\":" + json_quote(code) + ",\"message\":" + json_quote(message) + "}}";
  soup_server_message_set_status(msg, status, nullptr);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(), body.size());
}

// "/whip/ann" -> {"ann", ""}; "/whip/ann/ID" -> {"ann", "ID"}.
std::pair<std::string, std::string> parts_of(const char* path, const char* prefix) {
  std::string rest = std::string(path).substr(std::string(prefix).size());
  if (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
  const auto slash = rest.find('/');
  if (slash == std::string::npos) return {rest, ""};
  return {rest.substr(0, slash), rest.substr(slash + 1)};
}

}  // namespace

// Before the body is read: an offer over 64 KiB is refused unread.
void MediaServer::on_webrtc_early(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*, void*) {
  const goffset length = soup_message_headers_get_content_length(soup_server_message_get_request_headers(msg));
  if (length > kMaxOffer) error_reply(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "too_large", "an SDP offer is at most 64 KiB");
}

void MediaServer::on_whip(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, void* data) {
  static_cast<MediaServer*>(data)->on_webrtc(msg, path, WebRtcSession::Role::kPublisher);
}

void MediaServer::on_whep(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, void* data) {
  static_cast<MediaServer*>(data)->on_webrtc(msg, path, WebRtcSession::Role::kViewer);
}

void MediaServer::on_webrtc(SoupServerMessage* msg, const char* path, WebRtcSession::Role role) {
  const bool whip = role == WebRtcSession::Role::kPublisher;
  const char* prefix = whip ? "/whip" : "/whep";
  const std::string method = soup_server_message_get_method(msg);
  const auto [username, id] = parts_of(path, prefix);
  if (method == "OPTIONS") {
    cors(msg);
    soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, nullptr);
    return;
  }
  if (!id.empty()) {
    if (method == "PATCH") {
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "DELETE, OPTIONS");
      return error_reply(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "trickle_not_supported",
                         "trickle ICE is not supported: send the offer once ICE gathering is complete");
    }
    if (method != "DELETE")
      return error_reply(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed", "a session takes DELETE");
    if (!end_webrtc_session(username, id, "deleted"))
      return error_reply(msg, SOUP_STATUS_NOT_FOUND, "not_found", "no such session");
    cors(msg);
    soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
    return;
  }
  if (method != "POST") return error_reply(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed", "POST an SDP offer");
  SoupMessageHeaders* request = soup_server_message_get_request_headers(msg);
  const char* type = soup_message_headers_get_content_type(request, nullptr);
  if (!type || g_ascii_strcasecmp(type, "application/sdp") != 0)
    return error_reply(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                       "the offer must be sent as Content-Type: application/sdp");
  SoupMessageBody* body = soup_server_message_get_request_body(msg);
  if (body->length > kMaxOffer)
    return error_reply(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "too_large", "an SDP offer is at most 64 KiB");
  const std::string offer(body->data ? body->data : "", size_t(body->length));
  const std::string address = client_address(msg);
  // WHEP: ?viewer=ID on the POST URL, the page's per-tab id (viewer_count.h).
  const std::string viewer = whip ? "" : ViewerCount::id_of(query_param(msg, "viewer").c_str());
  StreamPtr stream;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stream = live_locked(username);
    if (!stream)
      return error_reply(msg, SOUP_STATUS_NOT_FOUND, "not_live",
                         "no live stream of '" + username + "' on this media worker; its URLs are in the API's answers");
    if (whip) {
      const char* auth = soup_message_headers_get_one(request, "Authorization");
      const std::string bearer = auth && g_str_has_prefix(auth, "Bearer ") ? auth + 7 : "";
      if (bearer.empty() || !auth::constant_time_equals(bearer, stream->secret)) {
        log::warn("ingest refused", stream_fields(*stream, {{"via", "whip"}, {"reason", "wrong_secret"}}));
        return error_reply(msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized",
                           "Authorization: Bearer <the stream's ingest secret> is missing or wrong");
      }
      if (publisher_busy(*stream))
        return error_reply(msg, SOUP_STATUS_CONFLICT, "already_ingesting", "another publisher is connected to this stream");
      // The slot is held while the peer connection is built.
      stream->publisher = "whip";
      log::info("publisher connecting", stream_fields(*stream, {{"via", "whip"}}));
      stream->publisher_confirmed = false;
      stream->claimed_at = std::chrono::steady_clock::now();
      stream->claim_alive = nullptr;
    }
  }
  g_object_ref(msg);
  soup_server_message_pause(msg);
  const IceSettings ice = settings_.ice;
  stream->strand->post([this, msg, stream, offer, role, whip, username, address, viewer, ice] {
    WebRtcSession::Answer a =
        WebRtcSession::answer(role, offer, ice, whip ? nullptr : counter_of(stream->sent, &SentBytes::whep));
    std::string session_id;
    if (a.session) {
      session_id = auth::new_token().value_or("").substr(0, 22);
      if (!attach_webrtc_session(stream, a.session, session_id, address, viewer)) {
        a.session->close();
        a.session.reset();
        a.status = whip ? SOUP_STATUS_CONFLICT : SOUP_STATUS_NOT_FOUND;
        a.error = whip ? "the stream ended or another publisher took it meanwhile" : "the stream ended meanwhile";
      }
    } else if (whip) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stream->publisher == "whip" && !stream->whip) stream->publisher.clear();  // the claim goes
    }
    std::string base;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      base = public_url_;
    }
    const std::string location = base + (whip ? "/whip/" : "/whep/") + username + "/" + session_id;
    post([this, msg, a, location, ice] {
      if (!a.session) {
        error_reply(msg, guint(a.status), a.status == 400 ? "bad_offer" : a.status == 409 ? "already_ingesting"
                                                             : a.status == 404 ? "not_live" : "webrtc_failed",
                    a.error);
      } else {
        cors(msg);
        SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
        soup_message_headers_replace(h, "Location", location.c_str());
        for (const auto& link : ice_link_headers(ice)) soup_message_headers_append(h, "Link", link.c_str());
        soup_server_message_set_status(msg, SOUP_STATUS_CREATED, nullptr);
        soup_server_message_set_response(msg, "application/sdp", SOUP_MEMORY_COPY, a.sdp.data(), a.sdp.size());
      }
      soup_server_message_unpause(msg);
      g_object_unref(msg);
    });
  });
}

bool MediaServer::attach_webrtc_session(const StreamPtr& stream, const std::shared_ptr<WebRtcSession>& session,
                                        const std::string& id, const std::string& address,
                                        const std::string& viewer) {
  const int64_t stream_id = stream->id;
  const std::string username = stream->username;
  session->set_on_closed([this, username, id] {
    // Off the GStreamer thread that told it: closing stops that pipeline.
    post([this, username, id] { end_webrtc_session(username, id, "connection closed"); });
  });
  std::shared_ptr<StreamPipeline> keyframe;
  {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stream->stopped) return false;
  if (session->role() == WebRtcSession::Role::kPublisher) {
    if (stream->publisher != "whip" || stream->whip) return false;
    stream->whip = session;
    stream->whip_id = id;
    stream->publisher_confirmed = true;
    if (stream->ingest != "jpeg") {  // its frames are JPEG
      stream->ingest = "jpeg";
      stream->building = true;
      stream->strand->post([this, stream] { rebuild(stream, true); });
    }
    std::weak_ptr<Stream> weak = stream;
    session->set_on_frame([this, weak](const std::string& jpeg) {
      StreamPtr s = weak.lock();
      if (!s) return;
      std::shared_ptr<StreamPipeline> p;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (s->stopped) return;
        p = s->pipeline;
        if (!p || p->ingest_format() != "jpeg") {
          s->dropped_while_building++;
          return;
        }
      }
      p->push_jpeg(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size());
    });
  } else {
    stream->wheps[id] = WhepViewer{session, address, viewer};
    stream->viewers.joined(address, viewer, ViewerCount::Clock::now());
    session->set_on_keyframe_request([this, stream_id] { request_keyframe(stream_id); });
    keyframe = keyframe_due_locked(*stream);  // a new viewer starts at a keyframe
  }
  }
  if (keyframe) keyframe->force_keyframe();
  return true;
}

bool MediaServer::end_webrtc_session(const std::string& username, const std::string& id, const std::string& why) {
  std::shared_ptr<WebRtcSession> session;
  StreamPtr stream;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [sid, s] : streams_) {
      if (s->username != username) continue;
      if (s->whip && s->whip_id == id) {
        session = std::move(s->whip);
        s->whip_id.clear();
        if (s->publisher == "whip") s->publisher.clear();
      } else if (auto it = s->wheps.find(id); it != s->wheps.end()) {
        session = std::move(it->second.session);
        s->viewers.left(it->second.address, it->second.viewer);
        s->wheps.erase(it);
      }
      if (session) {
        stream = s;
        break;
      }
    }
  }
  if (!session) return false;
  (void)why;
  stream->strand->post([session] { session->close(); });  // the pipeline stops off the loop
  return true;
}

void MediaServer::close_webrtc_sessions(const StreamPtr& stream) {
  std::vector<std::shared_ptr<WebRtcSession>> sessions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stream->whip) sessions.push_back(std::move(stream->whip));
    stream->whip_id.clear();
    if (stream->publisher == "whip") stream->publisher.clear();
    for (auto& [id, viewer] : stream->wheps) {
      stream->viewers.left(viewer.address, viewer.viewer);
      sessions.push_back(std::move(viewer.session));
    }
    stream->wheps.clear();
  }
  if (sessions.empty()) return;
  stream->strand->post([sessions] {
    for (const auto& s : sessions) s->close();
  });
}

void MediaServer::on_h264(int64_t stream_id, GstSample* sample) {
  std::vector<std::shared_ptr<WebRtcSession>> viewers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    for (const auto& [id, viewer] : it->second->wheps) viewers.push_back(viewer.session);
  }
  for (const auto& v : viewers) v->push(sample);
}

void MediaServer::request_keyframe(int64_t stream_id) {
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(stream_id);
    if (it != streams_.end()) pipeline = keyframe_due_locked(*it->second);
  }
  if (pipeline) pipeline->force_keyframe();  // unlocked: the event runs up the pipeline here
}

std::shared_ptr<StreamPipeline> MediaServer::keyframe_due_locked(Stream& stream) {
  // At most one a second: a viewer's PLIs (or many joining) cannot make
  // the encoder send keyframes only.
  const auto now = std::chrono::steady_clock::now();
  if (now - stream.last_keyframe_request < std::chrono::seconds(1) || !stream.pipeline) return nullptr;
  stream.last_keyframe_request = now;
  return stream.pipeline;
}

int MediaServer::count_elements(int64_t stream_id, const std::string& factory) {
  StreamPtr stream = find(stream_id);
  std::shared_ptr<StreamPipeline> pipeline;
  if (stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    pipeline = stream->pipeline;
  }
  return pipeline ? pipeline->count_elements(factory) : 0;
}

void MediaServer::set_public_url(const std::string& url) {
  std::lock_guard<std::mutex> lock(mutex_);
  public_url_ = url;
}

}  // namespace mirage::media
