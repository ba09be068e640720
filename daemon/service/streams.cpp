#include "streams.h"

#include <algorithm>
#include <cstdio>

#include "auth/token.h"
#include "json_text.h"
#include "log/log.h"
#include "repo/streams.h"
#include "repo/users.h"
#include "repo/workers.h"
#include "service/error.h"
#include "service/validation.h"

namespace mirage::service {

namespace {

// The worker a channel's clients talk to: the live stream's, else (for the
// events socket of a viewer waiting for the stream) any live one.
std::optional<MediaWorker> channel_worker(db::Connection& c, const std::optional<Stream>& live, int timeout_seconds) {
  if (!live) return repo::any_live_worker(c, timeout_seconds);
  if (!live->worker_id) return std::nullopt;
  return repo::worker_by_id(c, *live->worker_id, timeout_seconds);
}


}  // namespace

User Streams::channel(const std::string& username) {
  auto c = pool_.acquire();
  auto user = repo::user_by_name(*c, username);
  if (!user) throw Error(ErrorKind::kNotFound, "not_found", "no streamer '" + username + "'");
  return *user;
}

Stream Streams::live_or_fail(int64_t user_id) {
  auto c = pool_.acquire();
  auto live = repo::live_stream(*c, user_id);
  if (!live) throw Error(ErrorKind::kConflict, "not_live", "the stream is not live");
  return *live;
}

void Streams::check_style(const std::string& style, const std::vector<std::string>& offered) {
  if (!style.empty() && std::find(offered.begin(), offered.end(), style) == offered.end())
    throw field_error(ErrorKind::kInvalid, "unknown_style", "style", "the stream's model has no style '" + style + "'");
}

std::vector<std::string> Streams::offered_styles(db::Connection& c) {
  auto worker = repo::any_live_worker(c, settings_.worker_timeout_seconds);
  return worker ? worker->styles : std::vector<std::string>{};
}

namespace {

void check_strength(const std::optional<double>& strength) {
  if (strength && !(*strength >= 0.0 && *strength <= 1.0))
    throw invalid_field("strength", "'strength' must be a number from 0 to 1");
}

}  // namespace

Stream Streams::start(const User& user, const std::string& title, const std::optional<std::string>& style,
                      std::optional<double> strength) {
  if (utf8_length(title) > 140) throw invalid_field("title", "'title' must be at most 140 characters long");
  check_strength(strength);
  auto secret = auth::new_token();
  if (!secret) throw std::runtime_error("no randomness for a stream secret");
  auto c = pool_.acquire();
  const User fresh = *repo::user_by_id(*c, user.id);
  if (fresh.balance_seconds <= kSecondsPerCredit)
    throw Error(ErrorKind::kPaymentRequired, "insufficient_credits", "more than 1 credit is needed to go live");
  if (style) check_style(*style, offered_styles(*c));
  // What the streamer chose now is their default from now on.
  if (style || strength) repo::update_settings(*c, user.id, std::nullopt, std::nullopt, style, strength);
  std::optional<Stream> stream;
  try {
    stream = repo::place_stream(*c, user.id, title, *secret, style.value_or(fresh.default_style),
                                strength.value_or(fresh.default_strength), settings_.worker_timeout_seconds,
                                log::request_id());
  } catch (const db::Error& e) {
    if (e.sqlstate() == "23505") throw Error(ErrorKind::kConflict, "already_live", "a stream is already live");
    throw;
  }
  if (!stream)
    throw Error(ErrorKind::kUnavailable, "no_media_capacity",
                "every media worker is full or none is running; try again in a minute", 30);
  return *stream;
}

Stream Streams::stop(const User& user, const std::string& reason) {
  Stream live = live_or_fail(user.id);
  if (auto ended = end_stream(live.id, reason)) return *ended;
  throw Error(ErrorKind::kConflict, "not_live", "the stream is not live");  // ended meanwhile
}

std::optional<Stream> Streams::end_stream(int64_t stream_id, const std::string& reason) {
  auto c = pool_.acquire();
  if (!repo::meter_stream(*c, stream_id, reason).live) return std::nullopt;
  return repo::stream_by_id(*c, stream_id);
}

std::optional<MediaWorker> Streams::worker_of(const Stream& stream) {
  if (!stream.worker_id) return std::nullopt;
  auto c = pool_.acquire();
  return repo::worker_by_id(*c, *stream.worker_id, settings_.worker_timeout_seconds);
}

void Streams::meter_all() {
  std::vector<std::pair<int64_t, std::string>> live;
  {
    auto c = pool_.acquire();
    live = repo::live_streams(*c);
  }
  for (const auto& [id, username] : live) {
    auto c = pool_.acquire();
    repo::meter_stream(*c, id, std::nullopt);
  }
}

int Streams::replace_lost_streams() {
  auto c = pool_.acquire();
  int moved = 0;
  for (const auto& lost : repo::streams_of_lost_workers(*c, settings_.worker_timeout_seconds)) {
    // Billed up to the dead worker's last heartbeat, before anything else.
    if (!repo::meter_stream(*c, lost.id, std::nullopt).live) continue;
    if (lost.worker_id) {
      if (auto to = repo::move_stream(*c, lost.id, *lost.worker_id, false, settings_.worker_timeout_seconds)) {
        log::warn("stream moved off a silent worker",
                  {{"stream_id", lost.id}, {"request_id", lost.request_id}, {"from_worker", *lost.worker_id},
                   {"silent_seconds", lost.silent_seconds}, {"to_worker", *to}});
        ++moved;
        continue;
      }
    }
    if (lost.silent_seconds < settings_.worker_timeout_seconds + settings_.replace_grace_seconds) continue;
    if (repo::meter_stream(*c, lost.id, "worker_lost").live)
      log::warn("stream ended: its media worker died and none had room",
                {{"stream_id", lost.id}, {"request_id", lost.request_id}, {"reason", "worker_lost"},
                 {"grace_seconds", settings_.replace_grace_seconds}});
  }
  return moved;
}

PublicStream Streams::public_stream(const std::string& username) {
  PublicStream p;
  p.user = channel(username);
  auto c = pool_.acquire();
  p.live = repo::live_stream(*c, p.user.id);
  p.worker = channel_worker(*c, p.live, settings_.worker_timeout_seconds);
  if (p.live) {
    p.viewers = repo::stream_viewers(*c, p.live->id);
    if (p.worker) p.styles = p.worker->styles;
    p.last_live_at = p.live->started_at;
  } else {
    auto latest = repo::streams_of(*c, p.user.id, 1);
    if (!latest.empty()) {
      p.end_reason = latest.front().end_reason;
      p.last_live_at = latest.front().ended_at;
    }
  }
  return p;
}

ChannelSettings Streams::update_settings(const User& user, const SettingsChange& change) {
  check_strength(change.strength);
  auto c = pool_.acquire();
  auto live = repo::live_stream(*c, user.id);
  if (change.style) {
    if (live) {
      const auto worker = channel_worker(*c, live, settings_.worker_timeout_seconds);
      check_style(*change.style, worker ? worker->styles : std::vector<std::string>{});
    } else {
      check_style(*change.style, offered_styles(*c));
    }
  }
  // The live stream's (the worker applies it), then the defaults.
  if (live && (change.style || change.strength)) repo::set_streamer_style(*c, live->id, change.style, change.strength);
  db::Transaction tx(*c);
  repo::update_settings(*c, user.id, change.comments_enabled, change.styles_enabled, change.style, change.strength);
  User updated = *repo::user_by_id(*c, user.id);
  // Watch pages show or hide the comment and style boxes at once.
  repo::publish_event(*c, updated.id, std::string("{\"type\":\"settings\",\"comments_enabled\":") +
                                          (updated.comments_enabled ? "true" : "false") + ",\"styles_enabled\":" +
                                          (updated.styles_enabled ? "true" : "false") + "}");
  tx.commit();
  ChannelSettings out{updated.comments_enabled, updated.styles_enabled, updated.default_style, updated.default_strength};
  if (auto now = repo::live_stream(*c, user.id)) {
    out.style = now->streamer_style;
    out.strength = now->strength;
  }
  return out;
}

Dashboard Streams::dashboard(const User& user) {
  Dashboard d;
  auto c = pool_.acquire();
  d.user = *repo::user_by_id(*c, user.id);
  d.live = repo::live_stream(*c, user.id);
  const auto [unbilled, billing] = repo::unbilled_seconds(*c, user.id);
  d.seconds_remaining = std::max<int64_t>(0, d.user.balance_seconds - unbilled);
  d.counting_down = billing;
  d.settings = {d.user.comments_enabled, d.user.styles_enabled, d.user.default_style, d.user.default_strength};
  d.style_queue = {{}, settings_.style_seconds, settings_.style_cooldown_seconds};
  if (d.live) {
    d.viewers = repo::stream_viewers(*c, d.live->id);
    d.comment_count = repo::comment_count(*c, d.live->id);
    d.style_queue = queue_of(*c, d.live->id);
    d.media_health = repo::stream_health(*c, d.live->id);
    d.settings.style = d.live->streamer_style;
    d.settings.strength = d.live->strength;
  }
  d.worker = channel_worker(*c, d.live, settings_.worker_timeout_seconds);
  if (d.live) {
    if (d.worker) d.available_styles = d.worker->styles;
  } else {
    d.available_styles = offered_styles(*c);
  }
  return d;
}

std::vector<LiveChannel> Streams::live_channels() {
  auto c = pool_.acquire();
  std::vector<LiveChannel> out;
  for (const auto& l : repo::live_channels(*c, settings_.worker_timeout_seconds, 50)) {
    std::optional<std::string> thumbnail;
    if (l.media_url) thumbnail = *l.media_url + "/thumbnail/" + l.username + ".jpg";  // served by the worker
    out.push_back({l.username, l.display_name, l.title, l.viewers, l.started_at, thumbnail});
  }
  return out;
}

std::vector<StreamReport> Streams::history(const User& user, int limit) {
  auto c = pool_.acquire();
  std::vector<StreamReport> out;
  for (Stream& s : repo::streams_of(*c, user.id, limit)) {
    StreamReport r;
    r.duration_seconds = std::stoll(c->exec("SELECT floor(extract(epoch FROM coalesce(ended_at, now()) - started_at))::bigint "
                                            "FROM streams WHERE id = $1", {std::to_string(s.id)}).value(0, 0));
    r.comments = repo::comment_count(*c, s.id);
    r.styles_applied = repo::styles_applied(*c, s.id);
    r.stream = std::move(s);
    out.push_back(std::move(r));
  }
  return out;
}

void Streams::apply_next_style(int64_t stream_id, bool force) {
  auto c = pool_.acquire();
  repo::advance_styles(*c, stream_id, settings_.style_seconds, force);  // wakes the worker when it changed
}

StyleQueue Streams::queue_of(db::Connection& c, int64_t stream_id) {
  return {repo::style_queue(c, stream_id, settings_.style_seconds), settings_.style_seconds,
          settings_.style_cooldown_seconds};
}

StyleQueue Streams::request_style(const User& user, const std::string& username, const std::string& style) {
  User owner = channel(username);
  if (!owner.styles_enabled) throw Error(ErrorKind::kForbidden, "styles_disabled", "style requests are turned off");
  Stream live = live_or_fail(owner.id);
  const auto worker = worker_of(live);
  const auto styles = worker ? worker->styles : std::vector<std::string>{};
  if (style.empty()) throw invalid_field("style", "'style' must name one of the stream's styles");
  check_style(style, styles);
  {
    auto c = pool_.acquire();
    // One waiting request per viewer (a unique index), and a pause between two.
    const int wait = std::stoi(c->exec("SELECT coalesce(ceil(extract(epoch FROM max(created_at) + "
                                       "make_interval(secs => $3) - now())), 0)::int "
                                       "FROM style_requests WHERE stream_id = $1 AND requested_by = $2",
                                       {std::to_string(live.id), std::to_string(user.id),
                                        std::to_string(settings_.style_cooldown_seconds)})
                                   .value(0, 0));
    if (wait > 0)
      throw Error(ErrorKind::kRateLimited, "rate_limited",
                  "one style request every " + std::to_string(settings_.style_cooldown_seconds) + " s; wait a moment",
                  wait);
    try {
      repo::enqueue_style(*c, live.id, owner.id, style, user.id);
    } catch (const db::Error& e) {
      if (e.sqlstate() != "23505") throw;
      throw Error(ErrorKind::kRateLimited, "style_pending",
                  "your earlier style request is still waiting in the queue", settings_.style_seconds);
    }
  }
  apply_next_style(live.id, false);
  auto c = pool_.acquire();
  return queue_of(*c, live.id);
}

StyleQueue Streams::style_queue(const std::string& username) {
  User owner = channel(username);
  auto c = pool_.acquire();
  auto live = repo::live_stream(*c, owner.id);
  if (!live) return {{}, settings_.style_seconds, settings_.style_cooldown_seconds};
  return queue_of(*c, live->id);
}

StyleQueue Streams::skip_style(const User& user) {
  Stream live = live_or_fail(user.id);
  apply_next_style(live.id, true);
  auto c = pool_.acquire();
  return queue_of(*c, live.id);
}

StyleQueue Streams::clear_styles(const User& user) {
  Stream live = live_or_fail(user.id);
  auto c = pool_.acquire();
  repo::clear_styles(*c, live.id);
  return queue_of(*c, live.id);
}

StyleQueue Streams::reject_style(const User& user, int64_t request_id) {
  Stream live = live_or_fail(user.id);
  auto c = pool_.acquire();
  if (!repo::reject_style(*c, live.id, request_id))
    throw Error(ErrorKind::kNotFound, "not_found", "no such request waiting in your stream's queue");
  return queue_of(*c, live.id);
}

int64_t Streams::purge_expired() {
  auto c = pool_.acquire();
  return repo::purge_expired(*c, settings_.longest_window_seconds);
}

Stream Streams::rotate_secret(const User& user) {
  auto secret = auth::new_token();
  if (!secret) throw std::runtime_error("no randomness for a stream secret");
  Stream live = live_or_fail(user.id);
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    db::Result r = c->exec("UPDATE streams SET secret = $2 WHERE id = $1 AND ended_at IS NULL RETURNING worker_id",
                           {std::to_string(live.id), *secret});
    if (r.rows() != 1) throw Error(ErrorKind::kConflict, "not_live", "the stream is not live");
    if (auto worker = r.get(0, 0)) repo::notify_worker(*c, std::stoll(*worker), live.id);
    tx.commit();
  }
  live.secret = *secret;
  return live;
}

void Streams::advance_all_styles() {
  std::vector<int64_t> due;
  {
    auto c = pool_.acquire();
    due = repo::streams_with_due_styles(*c, settings_.style_seconds);
  }
  for (int64_t id : due) apply_next_style(id, false);
}

}  // namespace mirage::service
