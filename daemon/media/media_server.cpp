// The media server's per-stream registry: each stream's state, its
// lifecycle on strands, and the MediaPlane calls of the worker's reconciler.
// The protocol side runs on the loop thread, one file per protocol:
// media_port.cpp (start, the port's connection caps), ws_ingest.cpp,
// ws_watch.cpp (watch and events), hls_server.cpp; srt_ingest.cpp and
// rtsp_ingest.cpp are their own listeners.
//
// A stream's life:
//   stream_started   Stream created (by_user_ points at it), build job posted.
//   build            pipeline made for the ingest kind; bytes kept meanwhile
//                    are fed first; "live" goes to the events watchers.
//   rebuild          for another ingest kind (a publisher of that kind
//                    connected) or after a failure (maintain): the old
//                    pipeline is torn down before the new one takes the
//                    stream's HLS folder (hls_root/<stream id>).
//   stream_stopped   stopped set (no job builds after it), by_user_ cleared,
//                    publishers and viewers disconnected, teardown posted.
//   teardown         the pipeline stops (EOS wait), the Stream is erased.
// Jobs of one stream run in order on its strand, so none of these overlap.
#include "media_server.h"

#include <gst/rtsp/gstrtspdefs.h>
#include <srt/access_control.h>

#include <libsoup/soup.h>

#include <algorithm>
#include <cstdio>
#include <future>

#include "auth/token.h"
#include "json_text.h"

namespace mirage::media {

namespace {

constexpr auto kClaimTimeout = std::chrono::seconds(5);  // an SRT handshake admitted but never connected

}  // namespace

MediaServer::MediaServer(MediaSettings settings) : settings_(std::move(settings)) {
  std::string error;
  auto trusted = auth::TrustedProxies::parse(settings_.trusted_proxies, &error);
  if (trusted) trusted_ = *trusted;  // start() reports a bad spec
  lifecycle_ = std::make_unique<StrandPool>(settings_.lifecycle_threads);
}

MediaServer::~MediaServer() {
  for (int64_t id : local_streams()) stream_stopped(id, "shutdown");
  srt_.reset();        // no more SRT bytes
  lifecycle_.reset();  // every teardown done: pipelines stopped, files removed
  if (loop_) {
    post([this] {
      rtsp_.reset();
      if (service_) {
        g_socket_service_stop(service_);
        g_socket_listener_close(G_SOCKET_LISTENER(service_));
        g_object_unref(service_);
        service_ = nullptr;
      }
      if (server_) {
        soup_server_disconnect(server_);
        g_object_unref(server_);
        server_ = nullptr;
      }
      g_main_loop_quit(loop_);
    });
    thread_.join();
    g_main_loop_unref(loop_);
    g_main_context_unref(context_);
  }
}

std::vector<std::string> MediaServer::styles() { return model_ ? model_->styles() : std::vector<std::string>{}; }
std::vector<uint64_t> MediaServer::model_batch_sizes() { return model_ ? model_->batch_sizes() : std::vector<uint64_t>{}; }

uint16_t MediaServer::srt_port() const { return srt_ ? srt_->port() : 0; }
uint16_t MediaServer::rtsp_port() const { return rtsp_ ? rtsp_->port() : 0; }

MediaServer::StreamPtr MediaServer::find(int64_t stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second;
}

MediaServer::StreamPtr MediaServer::live_locked(const std::string& username) {
  auto it = by_user_.find(username);
  if (it == by_user_.end()) return nullptr;
  auto s = streams_.find(it->second);
  return s == streams_.end() || s->second->stopped ? nullptr : s->second;
}

int64_t MediaServer::stream_of(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto s = live_locked(username);
  return s ? s->id : 0;
}

// --- lifecycle jobs ---------------------------------------------------------

std::shared_ptr<StreamPipeline> MediaServer::make_pipeline(const StreamPtr& stream, const std::string& ingest,
                                                           std::string* error) {
  PipelineSettings s;
  s.ingest = ingest;
  s.templates_dir = settings_.templates_dir;
  s.model = settings_.model;
  s.device = settings_.device;
  s.strength = settings_.strength;
  s.width = settings_.width;
  s.height = settings_.height;
  s.fps = settings_.fps;
  s.max_width = settings_.max_ingest_width;
  s.max_height = settings_.max_ingest_height;
  s.hls_dir = settings_.hls_root + "/" + std::to_string(stream->id);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s.style = stream->style;
    s.strength = stream->strength.value_or(settings_.strength);
  }
  std::shared_ptr<StreamPipeline> pipeline = StreamPipeline::start(s, error);
  const int64_t id = stream->id;
  if (pipeline) {
    pipeline->set_frame_callback([this, id] { on_frame(id); });
    pipeline->set_h264_callback([this, id](GstSample* sample) { on_h264(id, sample); });
  }
  return pipeline;
}

void MediaServer::build(const StreamPtr& stream) {
  std::string ingest;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stream->stopped) return;
    ingest = stream->ingest;  // the kind wanted now, which a publisher may have changed since the job was posted
  }
  std::string error;
  std::shared_ptr<StreamPipeline> fresh = make_pipeline(stream, ingest, &error);
  std::unique_lock<std::mutex> lock(mutex_);
  stream->restarting = false;
  if (stream->stopped) {
    lock.unlock();
    fresh.reset();  // stopped meanwhile: this job's own pipeline goes
    return;
  }
  if (!fresh) {
    log::error("pipeline failed to start", stream_fields(*stream, {{"ingest", ingest}, {"error", error}}));
    stream->last_error = error;
    stream->failed = true;
    stream->pending.clear();
    stream->pending_bytes = 0;
    stream->building = false;
    return;
  }
  stream->pipeline = fresh;
  stream->pipeline_used = false;
  // A style or strength that came while it was built (apply_* found no
  // pipeline then): set under mutex_, so a later apply_* cannot be undone.
  fresh->set_style(stream->style);
  fresh->set_strength(stream->strength.value_or(settings_.strength));
  lock.unlock();
  adopt(stream, fresh);
}

// Bytes that came while building go first, in order (the first carry the
// decoder's configuration); then pushes go straight to the pipeline.
void MediaServer::adopt(const StreamPtr& stream, const std::shared_ptr<StreamPipeline>& pipeline) {
  std::unique_lock<std::mutex> lock(mutex_);
  // A publisher of another kind came while this was built: the kept bytes
  // are for the pipeline a queued rebuild makes.
  const bool wanted = pipeline->ingest_format() == stream->ingest;
  while (wanted && !stream->pending.empty()) {
    std::vector<std::string> pending;
    pending.swap(stream->pending);
    stream->pending_bytes = 0;
    lock.unlock();
    if (pipeline->ingest_format() != "jpeg")
      for (const auto& bytes : pending) pipeline->push_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    lock.lock();
  }
  if (wanted) stream->building = false;
  const bool announce = !stream->announced;
  stream->announced = true;
  const std::string username = stream->username;
  const bool current = live_locked(username) == stream;
  lock.unlock();
  if (announce && current) post([this, username] { broadcast(username, "{\"type\":\"live\"}"); });
}

void MediaServer::rebuild(const StreamPtr& stream, bool force) {
  std::shared_ptr<StreamPipeline> old;
  bool keep = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stream->stopped) return;
    if (!force && stream->pipeline && stream->pipeline->ingest_format() == stream->ingest) {
      old = stream->pipeline;  // already the kind wanted (an earlier job built it)
      keep = true;
    } else {
      old = std::move(stream->pipeline);
      stream->building = true;
    }
  }
  if (keep) {
    adopt(stream, old);
    return;
  }
  old.reset();  // stopped, and its folder freed, before the new one takes it
  build(stream);
}

void MediaServer::teardown(const StreamPtr& stream) {
  std::shared_ptr<StreamPipeline> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old = std::move(stream->pipeline);
  }
  old.reset();  // EOS (at most 3 s), NULL, files removed
  std::lock_guard<std::mutex> lock(mutex_);
  streams_.erase(stream->id);
}

std::vector<log::Field> MediaServer::stream_fields(const Stream& s, log::Fields extra) {
  std::vector<log::Field> fields{{"stream_id", s.id}, {"request_id", s.request_id}, {"user", s.username}};
  fields.insert(fields.end(), extra.begin(), extra.end());
  return fields;
}

// --- the daemon's calls -------------------------------------------------------

void MediaServer::stream_started(const StreamInfo& info) {
  auto stream = std::make_shared<Stream>(info.id, info.username, info.request_id, settings_.hls_viewers_per_address);
  stream->strand = lifecycle_->strand();
  stream->secret = info.secret;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (streams_.count(info.id)) return;      // already here (a reconcile after a restart)
    if (stopped_ids_.count(info.id)) return;  // stopped before its start got here
    streams_[info.id] = stream;
    by_user_[info.username] = info.id;
  }
  log::info("stream placed here", stream_fields(*stream));
  const std::string username = info.username, secret = info.secret;
  post([this, username, secret] {
    if (rtsp_) rtsp_->add(username, secret);
  });
  stream->strand->post([this, stream] { build(stream); });
}

void MediaServer::stream_stopped(int64_t stream_id, const std::string& reason) {
  StreamPtr stream;
  bool current = false;
  std::string publisher;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_ids_.insert(stream_id).second) {
      stopped_order_.push_back(stream_id);
      if (stopped_order_.size() > kRememberStopped) {
        stopped_ids_.erase(stopped_order_.front());
        stopped_order_.pop_front();
      }
    }
    auto it = streams_.find(stream_id);
    if (it == streams_.end() || it->second->stopped) return;
    stream = it->second;
    stream->stopped = true;
    auto user = by_user_.find(stream->username);
    current = user != by_user_.end() && user->second == stream_id;
    if (current) by_user_.erase(user);
    publisher = stream->publisher;
  }
  log::info("stream stopped here", stream_fields(*stream, {{"reason", reason}}));
  // Only the user's current stream owns the user-wide things (the RTSP
  // mount, an SRT connection, the events watchers' "offline").
  if (current && publisher == "srt" && srt_) srt_->disconnect(stream->username);
  const std::string username = stream->username;
  post([this, stream, current, username, reason] {
    if (current && rtsp_) rtsp_->remove(username);
    if (current)
      broadcast(username, moved_away(reason) ? std::string("{\"type\":\"moved\"}")
                                             : "{\"type\":\"offline\",\"reason\":" + json_quote(reason) + "}");
    close_stream_connections(stream, reason);
    close_webrtc_sessions(stream);
  });
  stream->strand->post([this, stream] { teardown(stream); });
}

std::shared_ptr<StreamPipeline> MediaServer::restage(const StreamPtr& stream, const std::function<void(Stream&)>& change) {
  std::lock_guard<std::mutex> lock(mutex_);
  change(*stream);  // for pipelines built later
  return stream->pipeline;
}

void MediaServer::apply_style(int64_t stream_id, const std::string& style) {
  StreamPtr stream = find(stream_id);
  if (!stream) return;
  if (auto pipeline = restage(stream, [&](Stream& s) { s.style = style; })) pipeline->set_style(style);
  const std::string username = stream->username;
  post([this, username, style] { broadcast(username, "{\"type\":\"style\",\"style\":" + json_quote(style) + "}"); });
}

void MediaServer::apply_strength(int64_t stream_id, double strength) {
  StreamPtr stream = find(stream_id);
  if (!stream) return;
  if (auto pipeline = restage(stream, [&](Stream& s) { s.strength = strength; })) pipeline->set_strength(strength);
}

bool MediaServer::filter_settings(const std::string& username, std::string* style, double* strength) {
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto stream = live_locked(username)) pipeline = stream->pipeline;
  }
  if (!pipeline) return false;
  *style = pipeline->style();
  *strength = pipeline->strength();
  return true;
}

void MediaServer::secret_changed(int64_t stream_id, const std::string& secret) {
  StreamPtr stream = find(stream_id);
  if (!stream) return;
  std::string publisher;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stream->secret = secret;
    publisher = stream->publisher;
  }
  // Whoever holds the old secret is let go and must come back with the new one.
  if (publisher == "srt" && srt_) srt_->disconnect(stream->username);
  const std::string username = stream->username;
  post([this, stream, username, secret, publisher] {
    if (rtsp_) {
      rtsp_->remove(username);  // closes an RTSP publisher
      rtsp_->add(username, secret);
    }
    SoupWebsocketConnection* ws = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ws = stream->ingest_ws;
    }
    if (ws) soup_websocket_connection_close(ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "the stream key was rotated");
    std::string whip;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      whip = stream->whip_id;
    }
    if (!whip.empty()) end_webrtc_session(username, whip, "the stream key was rotated");
  });
}

void MediaServer::event(const std::string& username, const std::string& json) {
  post([this, username, json] { broadcast(username, json); });
}

// A stream that ended has no viewers from that moment, though its
// connections are still being closed and its pipeline torn down.
int MediaServer::viewers(int64_t stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(stream_id);
  return it == streams_.end() || it->second->stopped ? 0 : it->second->viewers.current(ViewerCount::Clock::now());
}

int MediaServer::unique_viewers(int64_t stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? 0 : it->second->viewers.unique();
}

bool MediaServer::ready(int64_t stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(stream_id);
  return it != streams_.end() && it->second->pipeline != nullptr;
}

std::optional<double> MediaServer::processing_seconds(int64_t stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || !it->second->first_frame) return std::nullopt;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - *it->second->first_frame).count();
}

std::string MediaServer::health(int64_t stream_id) {
  StreamPtr stream = find(stream_id);
  if (!stream) return "null";
  std::shared_ptr<StreamPipeline> pipeline;
  std::string extra;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pipeline = stream->pipeline;
    extra = ",\"watch_frames_skipped\":" + std::to_string(stream->watch_frames_skipped) +
            ",\"dropped_while_starting\":" + std::to_string(stream->dropped_while_building) +
            ",\"publisher\":" + json_quote(stream->publisher) +
            ",\"whep_viewers\":" + std::to_string(stream->wheps.size()) +
            ",\"hls_viewers\":" + std::to_string(stream->viewers.hls_current(ViewerCount::Clock::now())) +
            ",\"websocket_viewers\":" +
            std::to_string(std::count_if(stream->watchers.begin(), stream->watchers.end(),
                                         [](const auto& w) { return !w.second.preview; })) +
            ",\"restarts_last_minute\":" + std::to_string(stream->restarts.size()) +
            ",\"restarts_total\":" + std::to_string(stream->restarts_total) +
            ",\"sent_bytes\":" + stream->sent->json() + ",\"previous_error\":" +
            (stream->last_error.empty() ? std::string("null") : json_quote(stream->last_error)) + "}";
  }
  if (!pipeline) return "null";
  std::string json = pipeline->health_json();
  json.pop_back();  // '}'
  return json + extra;
}

std::vector<std::pair<int64_t, std::string>> MediaServer::maintain() {
  std::vector<std::pair<int64_t, std::string>> end;
  std::vector<StreamPtr> restart;
  std::vector<std::shared_ptr<WebRtcSession>> publishers;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, stream] : streams_) {
      Stream& s = *stream;
      if (s.stopped) continue;
      if (s.whip) publishers.push_back(s.whip);
      if (s.failed) {
        s.failed = false;
        end.emplace_back(id, "pipeline_failed");
        continue;
      }
      if (!s.pipeline || s.restarting) continue;
      if (s.pipeline->seconds_since_frame() > settings_.silence_seconds) {
        end.emplace_back(id, "ingest_silent");
        continue;
      }
      const std::string error = s.pipeline->error();
      if (error.empty()) continue;
      s.last_error = error;
      auto& r = s.restarts;
      r.erase(std::remove_if(r.begin(), r.end(), [&](auto t) { return now - t > std::chrono::minutes(1); }), r.end());
      if (int(r.size()) >= settings_.restarts_per_minute) {
        end.emplace_back(id, "pipeline_failed");
        continue;
      }
      r.push_back(now);
      s.restarts_total++;
      s.restarting = true;
      restart.push_back(stream);
    }
  }
  for (auto& stream : restart) {
    log::warn("pipeline failed, restarting", stream_fields(*stream, {{"error", stream->last_error}}));
    // Same ingest kind: an SRT, RTSP or WebM publisher goes on into the new pipeline.
    stream->strand->post([this, stream] { rebuild(stream, true); });
  }
  for (auto& p : publishers) p->tick();  // a PLI until the first decodable frame
  return end;
}

std::vector<int64_t> MediaServer::local_streams() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> ids;
  for (const auto& [id, stream] : streams_)
    if (!stream->stopped) ids.push_back(id);
  return ids;
}

// --- ingest from the SRT and RTSP listeners ----------------------------------

bool MediaServer::publisher_busy(const Stream& s) {
  if (s.publisher.empty()) return false;
  if (s.publisher_confirmed) return true;
  if (s.claim_alive && !s.claim_alive()) return false;  // that handshake failed after all
  return std::chrono::steady_clock::now() - s.claimed_at <= kClaimTimeout;
}

MediaServer::Admit MediaServer::admit(const std::string& username, const std::string* secret, const std::string& via,
                                      std::function<bool()> alive) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamPtr s = live_locked(username);
  if (!s) return Admit::kNotLive;
  if (secret && !auth::constant_time_equals(*secret, s->secret)) return Admit::kWrongSecret;
  if (publisher_busy(*s)) return Admit::kBusy;
  // Claimed here, in the handshake, so that a second caller racing this
  // one is refused (1409 / 455) instead of both getting through.
  s->publisher = via;
  s->publisher_confirmed = false;
  s->claimed_at = std::chrono::steady_clock::now();
  s->claim_alive = std::move(alive);
  return Admit::kOk;
}

void MediaServer::new_publisher_locked(const StreamPtr& stream, const std::string& format) {
  if (stream->ingest == format && !stream->pipeline_used) return;
  stream->ingest = format;
  stream->pipeline_used = false;
  stream->building = true;  // bytes are kept until the new pipeline runs
  stream->strand->post([this, stream] { rebuild(stream, true); });
}

void MediaServer::external_connected(const std::string& username, const std::string& via, const std::string& format) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamPtr stream = live_locked(username);
  if (!stream || stream->publisher != via) return;
  stream->publisher_confirmed = true;
  stream->claim_alive = nullptr;
  log::info("publisher connected", stream_fields(*stream, {{"via", via}}));
  new_publisher_locked(stream, format);
}

void MediaServer::external_closed(const std::string& username, const std::string& via) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamPtr s = live_locked(username);
  if (s && s->publisher == via) {
    s->publisher.clear();
    s->publisher_confirmed = false;
  }
}

void MediaServer::push_external(const std::string& username, const std::string& format, const uint8_t* data,
                                size_t size) {
  std::shared_ptr<StreamPipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    StreamPtr s = live_locked(username);
    if (!s) return;
    if (s->building) {
      // The first bytes carry the decoder's configuration (SPS/PPS): keep them.
      if (s->pending_bytes + size <= StreamPipeline::kMaxFrameBytes) {
        s->pending.emplace_back(reinterpret_cast<const char*>(data), size);
        s->pending_bytes += size;
      } else {
        s->dropped_while_building++;
      }
      return;
    }
    pipeline = s->pipeline;
    if (pipeline && pipeline->ingest_format() == format) s->pipeline_used = true;
  }
  if (pipeline && pipeline->ingest_format() == format) pipeline->push_bytes(data, size);
}

// --- for tests and the dashboard ----------------------------------------------

uint64_t MediaServer::frames_refused(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamPtr s = live_locked(username);
  return s && s->pipeline ? s->pipeline->frames_refused() : 0;
}

uint64_t MediaServer::watch_frames_skipped(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamPtr s = live_locked(username);
  return s ? s->watch_frames_skipped : 0;
}

std::string MediaServer::publisher(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamPtr s = live_locked(username);
  return s && s->publisher_confirmed ? s->publisher : "";
}

std::string MediaServer::pipeline_error(const std::string& username) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamPtr s = live_locked(username);
  return s && s->pipeline ? s->pipeline->error() : "";
}

void MediaServer::inject_error(const std::string& username, const std::string& message) {
  std::shared_ptr<StreamPipeline> p;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    StreamPtr s = live_locked(username);
    if (s) p = s->pipeline;
  }
  if (p) p->inject_error(message);
}

void MediaServer::hold_eos_for_test(const std::string& username) {
  std::shared_ptr<StreamPipeline> p;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    StreamPtr s = live_locked(username);
    if (s) p = s->pipeline;
  }
  if (p) p->hold_eos_for_test();
}

size_t MediaServer::streams_held() {
  std::lock_guard<std::mutex> lock(mutex_);
  return streams_.size();
}

void MediaServer::wait_lifecycle_idle() {
  // A job on every strand, waited for: all before it have run.
  std::vector<StreamPtr> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, s] : streams_) all.push_back(s);
  }
  for (auto& s : all) {
    std::promise<void> done;
    s->strand->post([&done] { done.set_value(); });
    done.get_future().wait();
  }
}

}  // namespace mirage::media
