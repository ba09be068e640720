// Streams: going live, metering, the public stream page, settings, the
// dashboard and audience metrics; comments and the style queue.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "db/pool.h"
#include "service/model.h"

namespace mirage::service {

struct StreamSettings {
  // A worker whose heartbeat is older than this is not live: it gets no new
  // stream and its streams are not billed past it.
  int worker_timeout_seconds = 5;
  // A stream whose worker died is moved to a worker with room; with none,
  // it waits this long after the death was noticed and ends ("worker_lost").
  int replace_grace_seconds = 30;
  int style_seconds = 30;        // how long a requested style stays applied
  int comments_per_window = 5;   // per author
  int comment_window_seconds = 10;
  int style_cooldown_seconds = 10;  // per viewer and stream, between two style requests
  // Rate-limit windows are at most this long (purge_expired keeps no older row).
  int longest_window_seconds = 86400;
};

// What the streamer may change (PATCH /api/streams/current/settings).
struct SettingsChange {
  std::optional<bool> comments_enabled, styles_enabled;
  std::optional<std::string> style;  // '' = none
  std::optional<double> strength;    // 0-1
};

// The streamer's settings as they are now: style and strength are the live
// stream's, else the defaults for the next one.
struct ChannelSettings {
  bool comments_enabled = true;
  bool styles_enabled = true;
  std::string style;
  double strength = 0.8;
};

struct PublicStream {
  User user;
  std::optional<Stream> live;
  int viewers = 0;
  std::vector<std::string> styles;   // the live stream's worker's model's
  std::optional<MediaWorker> worker;  // the live stream's, or (offline) one that serves /events
  std::optional<std::string> end_reason;  // offline: why the latest stream ended
  // The live stream's start, else the latest one's end; null: never live.
  std::optional<std::string> last_live_at;
};

struct Dashboard {
  User user;
  std::optional<Stream> live;
  int viewers = 0;
  int64_t comment_count = 0;
  StyleQueue style_queue;
  ChannelSettings settings;
  // The live stream's styles, else those a new stream would get (the first
  // live worker's).
  std::vector<std::string> available_styles;
  std::string media_health = "null";  // JSON from the stream's worker
  std::optional<MediaWorker> worker;  // the live stream's, or (offline) one that serves /events
};

struct PastStream {
  int64_t id = 0;
  std::string title, started_at;
  std::optional<std::string> ended_at;  // null: live
  int64_t comment_count = 0;
};

struct ChatBan {
  std::string username;
  std::optional<std::string> until;  // null: until lifted
};

struct LiveChannel {
  std::string username, display_name, title;
  int viewers = 0;
  std::string started_at;
  std::optional<std::string> thumbnail;
};

struct StreamReport {
  Stream stream;
  int64_t duration_seconds = 0;
  int64_t comments = 0;
  int64_t styles_applied = 0;
};

class Streams {
 public:
  Streams(db::Pool& pool, StreamSettings settings) : pool_(pool), settings_(settings) {}

  // 402 with one credit or less, 409 when already live (enforced by the
  // database), 503 no_media_capacity when no live worker has room (nothing
  // written, nothing billed).
  // |style|, |strength|: the streamer's for this stream (and their defaults
  // from now on); unset: their defaults. 400 unknown_style when no live
  // worker's model offers |style|.
  Stream start(const User& user, const std::string& title, const std::optional<std::string>& style = std::nullopt,
               std::optional<double> strength = std::nullopt);
  Stream stop(const User& user, const std::string& reason = "stopped");
  // Ends stream |stream_id| if it is still live (billed up to now); its
  // worker stops the pipeline. Returns it when this call ended it.
  std::optional<Stream> end_stream(int64_t stream_id, const std::string& reason);
  // The worker a stream runs on, if it has one.
  std::optional<MediaWorker> worker_of(const Stream& stream);
  PublicStream public_stream(const std::string& username);
  ChannelSettings update_settings(const User& user, const SettingsChange& change);
  Dashboard dashboard(const User& user);
  // The live channels, most viewers first (at most 50); thumbnail: the
  // worker's media URL + /thumbnail/{username}.jpg, '' when its worker is
  // not live.
  std::vector<LiveChannel> live_channels();
  std::vector<StreamReport> history(const User& user, int limit = 50);

  // Bills every live stream up to now and ends those out of credits. Called
  // by the ticker at least once a minute; any replica may run it.
  void meter_all();
  // Moves the streams of dead workers (no heartbeat for
  // worker_timeout_seconds) to live ones with room, billed up to the death
  // and again from their first frame on the new worker; ends those that
  // found no room within replace_grace_seconds ("worker_lost"). The timers
  // call it every second. Returns how many moved.
  int replace_lost_streams();
  // Moves every live stream's style queue along.
  void advance_all_styles();
  // Deletes expired sessions, rate-limit windows that are over and outbox
  // rows older than an hour; returns
  // how many rows went. The ticker runs it about once a minute.
  int64_t purge_expired();
  // A new ingest secret for the live stream; its worker disconnects the
  // publisher connected with the old one. Returns the stream with the new secret.
  Stream rotate_secret(const User& user);

  // Chat (service/chat.cpp). The comments of the live stream, else of the
  // latest one, or of the channel's stream |stream_id| (404 when it is not
  // this channel's).
  std::vector<Comment> comments(const std::string& username, std::optional<int64_t> stream_id,
                                std::optional<int64_t> before, int limit);
  // 409 not_live while offline; 403 banned, or timed_out with retry_after.
  Comment post_comment(const User& author, const std::string& username, const std::string& text);
  void delete_comment(const User& user, const std::string& username, int64_t id);
  // The channel's streams, newest first (at most 20).
  std::vector<PastStream> past_streams(const std::string& username);
  // The streamer bans |username| from their chat (|seconds|: a time-out),
  // whether live or not; 400 for themself, 404 for nobody.
  ChatBan ban(const User& streamer, const std::string& username, std::optional<int64_t> seconds);
  // 404 when |username| is neither banned nor timed out.
  void lift_ban(const User& streamer, const std::string& username);
  std::vector<ChatBan> bans(const User& streamer);

  StyleQueue request_style(const User& user, const std::string& username, const std::string& style);
  StyleQueue style_queue(const std::string& username);
  StyleQueue skip_style(const User& user);
  StyleQueue clear_styles(const User& user);
  // The streamer rejects a queued request of their live stream: 404 when it
  // is not queued there.
  StyleQueue reject_style(const User& user, int64_t request_id);

 private:
  User channel(const std::string& username);
  Stream live_or_fail(int64_t user_id);
  void apply_next_style(int64_t stream_id, bool force);
  StyleQueue queue_of(db::Connection& c, int64_t stream_id);
  // 400 unknown_style unless |style| is '' or one of |offered|.
  static void check_style(const std::string& style, const std::vector<std::string>& offered);
  // The styles a new stream of this channel would get: the first live worker's.
  std::vector<std::string> offered_styles(db::Connection& c);

  db::Pool& pool_;
  const StreamSettings settings_;
};

}  // namespace mirage::service
