#include "streams.h"

#include <functional>

#include "json_text.h"
#include "rows.h"
#include "workers.h"

namespace mirage::repo {

namespace {

// Tries the live, non-draining workers with room (least loaded first, never
// |exclude|) one by one, each in its own transaction: lock its row, count
// again (this statement's snapshot is taken after the lock, so it sees every
// stream committed by an earlier holder), then |place| writes under the lock
// and returns whether it did (the transaction commits then). One row lock at
// a time: no deadlock. Returns the worker placed on.
std::optional<int64_t> place_on_a_worker(db::Connection& c, int worker_timeout_seconds, std::optional<int64_t> exclude,
                                         const std::function<bool(int64_t worker)>& place) {
  db::Result candidates = c.exec(
      "SELECT w.id FROM media_workers w "
      "WHERE w.heartbeat_at > now() - make_interval(secs => $1) AND NOT w.draining AND w.capacity > 0 "
      "  AND w.id IS DISTINCT FROM $2::bigint "
      "ORDER BY (SELECT count(*) FROM streams s WHERE s.worker_id = w.id AND s.ended_at IS NULL)::float8 / w.capacity, "
      "  w.id",
      {std::to_string(worker_timeout_seconds),
       exclude ? db::Param(std::to_string(*exclude)) : db::Param(std::nullopt)});
  for (int i = 0; i < candidates.rows(); ++i) {
    const std::string worker = candidates.value(i, 0);
    db::Transaction tx(c);
    db::Result w = c.exec("SELECT capacity FROM media_workers WHERE id = $1 "
                          "AND heartbeat_at > now() - make_interval(secs => $2) AND NOT draining FOR UPDATE",
                          {worker, std::to_string(worker_timeout_seconds)});
    if (w.rows() != 1) continue;  // gone or draining since
    const int64_t running =
        to_i64(c.exec("SELECT count(*) FROM streams WHERE worker_id = $1 AND ended_at IS NULL", {worker}).value(0, 0));
    if (running >= to_i64(w.value(0, 0))) continue;  // filled meanwhile: the next one
    if (!place(to_i64(worker))) return std::nullopt;  // nothing to place any more
    tx.commit();
    return to_i64(worker);
  }
  return std::nullopt;
}

}  // namespace

std::optional<service::Stream> place_stream(db::Connection& c, int64_t user_id, const std::string& title,
                                            const std::string& secret, const std::string& style, double strength,
                                            int worker_timeout_seconds, const std::string& request_id) {
  std::optional<service::Stream> stream;
  place_on_a_worker(c, worker_timeout_seconds, std::nullopt, [&](int64_t worker) {
    stream = read_stream(c.exec("INSERT INTO streams AS s (user_id, title, secret, worker_id, style, streamer_style, "
                                "  strength, request_id) VALUES ($1, $2, $3, $4, $5, $5, $6, nullif($7, '')) "
                                "RETURNING " MIRAGE_STREAM_COLUMNS,
                                {std::to_string(user_id), title, secret, std::to_string(worker), style,
                                 to_param(strength), request_id}),
                         0);
    notify_worker(c, worker, stream->id);
    publish_event(c, user_id, "{\"type\":\"live\"}", worker);
    return true;
  });
  return stream;
}

std::optional<int64_t> move_stream(db::Connection& c, int64_t stream_id, int64_t from_worker, bool continuous,
                                   int worker_timeout_seconds) {
  return place_on_a_worker(c, worker_timeout_seconds, from_worker, [&](int64_t worker) {
    // Still live and still on |from_worker| under the row lock: of racing
    // movers (replicas, a draining worker) exactly one moves it.
    db::Result moved = c.exec(
        "UPDATE streams SET worker_id = $3, "
        "  billed_until = CASE WHEN $4::boolean THEN billed_until END "
        "WHERE id = $1 AND worker_id = $2 AND ended_at IS NULL RETURNING user_id",
        {std::to_string(stream_id), std::to_string(from_worker), std::to_string(worker), continuous ? "true" : "false"});
    if (moved.rows() != 1) return false;
    // The old worker's figures are not the new one's.
    c.exec("DELETE FROM stream_runtime WHERE stream_id = $1", {std::to_string(stream_id)});
    notify_worker(c, worker, stream_id);
    notify_worker(c, from_worker, stream_id);
    // Watch pages re-read the stream's URLs (the old worker's own sockets
    // hear it from that worker when it lets the stream go).
    publish_event(c, to_i64(moved.value(0, 0)), "{\"type\":\"moved\"}", from_worker);
    return true;
  });
}

std::optional<service::Stream> stream_by_id(db::Connection& c, int64_t stream_id) {
  db::Result r = c.exec("SELECT " MIRAGE_STREAM_COLUMNS " FROM streams s WHERE s.id = $1", {std::to_string(stream_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_stream(r, 0);
}

std::optional<service::Stream> live_stream(db::Connection& c, int64_t user_id) {
  db::Result r = c.exec("SELECT " MIRAGE_STREAM_COLUMNS " FROM streams s WHERE s.user_id = $1 AND s.ended_at IS NULL",
                        {std::to_string(user_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_stream(r, 0);
}

std::vector<std::pair<int64_t, std::string>> live_streams(db::Connection& c) {
  db::Result r = c.exec("SELECT s.id, u.username FROM streams s JOIN users u ON u.id = s.user_id "
                        "WHERE s.ended_at IS NULL ORDER BY s.id");
  std::vector<std::pair<int64_t, std::string>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(to_i64(r.value(i, 0)), r.value(i, 1));
  return out;
}

std::vector<service::Stream> streams_of(db::Connection& c, int64_t user_id, int limit) {
  db::Result r = c.exec("SELECT " MIRAGE_STREAM_COLUMNS " FROM streams s WHERE s.user_id = $1 "
                        "ORDER BY s.id DESC LIMIT $2",
                        {std::to_string(user_id), std::to_string(limit)});
  std::vector<service::Stream> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_stream(r, i));
  return out;
}

MeterResult meter_stream(db::Connection& c, int64_t stream_id, const std::optional<std::string>& end_reason,
                         std::optional<int64_t> held_by) {
  MeterResult m;
  db::Transaction tx(c);
  db::Result r = c.exec(
      "SELECT s.user_id, s.ended_at IS NULL, "
      "  greatest(0, floor(extract(epoch FROM "
      "    least(now(), w.heartbeat_at) - s.billed_until)))::bigint, "
      "  u.balance_seconds, s.worker_id, coalesce(r.viewers, 0), coalesce(r.unique_viewers, 0) "
      "FROM streams s JOIN users u ON u.id = s.user_id "
      "LEFT JOIN media_workers w ON w.id = s.worker_id LEFT JOIN stream_runtime r ON r.stream_id = s.id "
      "WHERE s.id = $1 AND ($2::bigint IS NULL OR s.worker_id = $2) FOR UPDATE OF s, u",
      {std::to_string(stream_id), held_by ? db::Param(std::to_string(*held_by)) : db::Param(std::nullopt)});
  if (r.rows() == 0 || !to_bool(r.value(0, 1))) return m;
  m.live = true;
  m.user_id = to_i64(r.value(0, 0));
  const int64_t elapsed = to_i64(r.value(0, 2));
  const int64_t balance = to_i64(r.value(0, 3));
  const std::optional<std::string> worker = r.get(0, 4);
  const std::string viewers = r.value(0, 5), unique_viewers = r.value(0, 6);
  m.charged = std::min(elapsed, balance);
  m.exhausted = elapsed >= balance;
  if (m.charged > 0)
    c.exec("INSERT INTO credit_ledger (user_id, delta_seconds, reason) VALUES ($1, $2, $3)",
           {std::to_string(m.user_id), std::to_string(-m.charged), "stream " + std::to_string(stream_id)});
  const std::optional<std::string> reason = m.exhausted ? std::optional<std::string>("credits_exhausted") : end_reason;
  c.exec("UPDATE streams SET billed_until = billed_until + make_interval(secs => $2), "
         "  seconds_billed = seconds_billed + $2, peak_viewers = greatest(peak_viewers, $3), "
         "  viewer_seconds = viewer_seconds + $3::bigint * $2, "
         "  unique_viewers = greatest(unique_viewers, $5), "
         "  ended_at = CASE WHEN $4::text IS NULL THEN NULL ELSE now() END, end_reason = $4 "
         "WHERE id = $1",
         {std::to_string(stream_id), std::to_string(m.charged), viewers, reason, unique_viewers});
  if (reason) {
    // Its worker tears the pipeline down; the worker itself tells its own
    // /events sockets, the others hear it through the outbox.
    if (worker) notify_worker(c, to_i64(*worker), stream_id);
    publish_event(c, m.user_id, "{\"type\":\"offline\",\"reason\":" + json_quote(*reason) + "}",
                  worker ? std::optional<int64_t>(to_i64(*worker)) : std::nullopt);
  }
  tx.commit();
  return m;
}

std::vector<LostStream> streams_of_lost_workers(db::Connection& c, int worker_timeout_seconds) {
  // A heartbeat cannot be written while the database is down: the first
  // |worker_timeout_seconds| after it started count as heard from.
  db::Result r = c.exec(
      "SELECT s.id, w.id, extract(epoch FROM now() - greatest(w.heartbeat_at, pg_postmaster_start_time()))::float8, "
      "  coalesce(s.request_id, '') "
      "FROM streams s LEFT JOIN media_workers w ON w.id = s.worker_id "
      "WHERE s.ended_at IS NULL AND (w.id IS NULL OR "
      "  greatest(w.heartbeat_at, pg_postmaster_start_time()) < now() - make_interval(secs => $1)) "
      "ORDER BY s.id",
      {std::to_string(worker_timeout_seconds)});
  std::vector<LostStream> out;
  for (int i = 0; i < r.rows(); ++i) {
    LostStream l;
    l.id = to_i64(r.value(i, 0));
    if (auto w = r.get(i, 1)) l.worker_id = to_i64(*w);
    l.silent_seconds = r.get(i, 2) ? std::stod(r.value(i, 2)) : 1e9;
    l.request_id = r.value(i, 3);
    out.push_back(l);
  }
  return out;
}

std::pair<int64_t, bool> unbilled_seconds(db::Connection& c, int64_t user_id) {
  db::Result r = c.exec(
      "SELECT coalesce(greatest(0, floor(extract(epoch FROM least(now(), w.heartbeat_at) - s.billed_until)))::bigint, 0), "
      "  s.billed_until IS NOT NULL "
      "FROM streams s LEFT JOIN media_workers w ON w.id = s.worker_id WHERE s.user_id = $1 AND s.ended_at IS NULL",
      {std::to_string(user_id)});
  if (r.rows() == 0) return {0, false};
  return {to_i64(r.value(0, 0)), to_bool(r.value(0, 1))};
}

int stream_viewers(db::Connection& c, int64_t stream_id) {
  db::Result r = c.exec("SELECT viewers FROM stream_runtime WHERE stream_id = $1", {std::to_string(stream_id)});
  return r.rows() == 1 ? int(to_i64(r.value(0, 0))) : 0;
}

std::string stream_health(db::Connection& c, int64_t stream_id) {
  db::Result r = c.exec("SELECT health::text FROM stream_runtime WHERE stream_id = $1 AND health IS NOT NULL",
                        {std::to_string(stream_id)});
  return r.rows() == 1 ? r.value(0, 0) : "null";
}

int64_t insert_comment(db::Connection& c, int64_t channel_id, int64_t author_id, const std::string& body) {
  return to_i64(c.exec("INSERT INTO comments (channel_id, stream_id, author_id, body) "
                       "VALUES ($1, (SELECT id FROM streams WHERE user_id = $1 AND ended_at IS NULL), $2, $3) "
                       "RETURNING id",
                       {std::to_string(channel_id), std::to_string(author_id), body})
                    .value(0, 0));
}

std::vector<LiveChannel> live_channels(db::Connection& c, int worker_timeout_seconds, int limit) {
  db::Result r = c.exec(
      "SELECT u.username, u.display_name, s.title, coalesce(r.viewers, 0), " MIRAGE_TIME("s.started_at") ", "
      "  CASE WHEN w.heartbeat_at > now() - make_interval(secs => $1) THEN w.media_url END "
      "FROM streams s JOIN users u ON u.id = s.user_id "
      "LEFT JOIN stream_runtime r ON r.stream_id = s.id LEFT JOIN media_workers w ON w.id = s.worker_id "
      "WHERE s.ended_at IS NULL ORDER BY coalesce(r.viewers, 0) DESC, s.started_at, s.id LIMIT $2",
      {std::to_string(worker_timeout_seconds), std::to_string(limit)});
  std::vector<LiveChannel> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.value(i, 0), r.value(i, 1), r.value(i, 2), int(to_i64(r.value(i, 3))), r.value(i, 4), r.get(i, 5)});
  return out;
}

int64_t comment_count(db::Connection& c, int64_t stream_id) {
  return to_i64(c.exec("SELECT count(*) FROM comments WHERE stream_id = $1 AND deleted_at IS NULL",
                       {std::to_string(stream_id)}).value(0, 0));
}

bool delete_comment(db::Connection& c, int64_t channel_id, int64_t comment_id) {
  return c.exec("UPDATE comments SET deleted_at = now() WHERE id = $1 AND channel_id = $2 AND deleted_at IS NULL "
                "RETURNING id",
                {std::to_string(comment_id), std::to_string(channel_id)}).rows() == 1;
}

namespace {

// Of the stream's channel, for the events its queue changes send.
int64_t channel_of(db::Connection& c, int64_t stream_id) {
  return to_i64(c.exec("SELECT user_id FROM streams WHERE id = $1", {std::to_string(stream_id)}).value(0, 0));
}

void queue_changed(db::Connection& c, int64_t channel_id) { publish_event(c, channel_id, "{\"type\":\"styles\"}"); }

}  // namespace

bool set_streamer_style(db::Connection& c, int64_t stream_id, const std::optional<std::string>& style,
                        std::optional<double> strength) {
  db::Transaction tx(c);
  // The row lock first, then a statement of its own: its snapshot sees a
  // request that advance_styles (which takes the same lock) just activated.
  if (c.exec("SELECT id FROM streams WHERE id = $1 AND ended_at IS NULL FOR UPDATE", {std::to_string(stream_id)})
          .rows() != 1)
    return false;
  db::Result r = c.exec(
      "UPDATE streams s SET streamer_style = coalesce($2, s.streamer_style), "
      "  strength = coalesce($3::float8, s.strength), "
      "  style = CASE WHEN EXISTS (SELECT 1 FROM style_requests a WHERE a.stream_id = s.id AND a.status = 'active') "
      "               THEN s.style ELSE coalesce($2, s.streamer_style) END "
      "WHERE s.id = $1 RETURNING s.worker_id",
      {std::to_string(stream_id), style, optional_param(strength)});
  if (auto worker = r.get(0, 0)) notify_worker(c, to_i64(*worker), stream_id);
  tx.commit();
  return true;
}

void enqueue_style(db::Connection& c, int64_t stream_id, int64_t channel_id, const std::string& style,
                   int64_t user_id) {
  db::Transaction tx(c);
  c.exec("INSERT INTO style_requests (stream_id, style, requested_by) VALUES ($1, $2, $3)",
         {std::to_string(stream_id), style, std::to_string(user_id)});
  queue_changed(c, channel_id);
  tx.commit();
}

std::vector<service::StyleRequest> style_queue(db::Connection& c, int64_t stream_id, int seconds) {
  db::Result r = c.exec("SELECT r.id, r.style, u.username, r.status, " MIRAGE_TIME("r.created_at") ", "
                        MIRAGE_TIME("r.activated_at") ", "
                        MIRAGE_TIME("(r.activated_at + make_interval(secs => $2))") ", "
                        "greatest(0, ceil(extract(epoch FROM r.activated_at + make_interval(secs => $2) - now())))::bigint"
                        " FROM style_requests r JOIN users u ON u.id = r.requested_by "
                        "WHERE r.stream_id = $1 AND r.status IN ('queued', 'active') "
                        "ORDER BY (r.status = 'active') DESC, r.id",
                        {std::to_string(stream_id), std::to_string(seconds)});
  std::vector<service::StyleRequest> out;
  for (int i = 0; i < r.rows(); ++i) {
    service::StyleRequest q{to_i64(r.value(i, 0)), r.value(i, 1), r.value(i, 2), r.value(i, 3), r.value(i, 4),
                            r.get(i, 5), r.get(i, 6), 0};
    if (auto left = r.get(i, 7)) q.seconds_left = to_i64(*left);
    out.push_back(std::move(q));
  }
  return out;
}

std::vector<int64_t> streams_with_due_styles(db::Connection& c, int seconds) {
  db::Result r = c.exec(
      "SELECT s.id FROM streams s WHERE s.ended_at IS NULL AND ("
      "  EXISTS (SELECT 1 FROM style_requests a WHERE a.stream_id = s.id AND a.status = 'active' "
      "          AND a.activated_at <= now() - make_interval(secs => $1)) "
      "  OR (EXISTS (SELECT 1 FROM style_requests q WHERE q.stream_id = s.id AND q.status = 'queued') "
      "      AND NOT EXISTS (SELECT 1 FROM style_requests a WHERE a.stream_id = s.id AND a.status = 'active'))) "
      "ORDER BY s.id",
      {std::to_string(seconds)});
  std::vector<int64_t> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(to_i64(r.value(i, 0)));
  return out;
}

bool try_timer_lock(db::Connection& c) {
  return to_bool(c.exec("SELECT pg_try_advisory_lock(hashtext('mirage.timers'))").value(0, 0));
}

std::optional<std::string> advance_styles(db::Connection& c, int64_t stream_id, int seconds, bool force) {
  db::Transaction tx(c);
  // Serialise advances of one stream (replicas, the ticker, a skip and the
  // streamer's own style).
  db::Result locked = c.exec("SELECT user_id FROM streams WHERE id = $1 FOR UPDATE", {std::to_string(stream_id)});
  if (locked.rows() != 1) return std::nullopt;
  bool changed = false;
  db::Result active = c.exec(
      "SELECT id, activated_at <= now() - make_interval(secs => $2) FROM style_requests "
      "WHERE stream_id = $1 AND status = 'active'",
      {std::to_string(stream_id), std::to_string(seconds)});
  if (active.rows() == 1) {
    if (!force && !to_bool(active.value(0, 1))) return std::nullopt;  // still running
    c.exec("UPDATE style_requests SET status = $2 WHERE id = $1",
           {active.value(0, 0), std::string(force ? "skipped" : "done")});
    changed = true;
  }
  db::Result next = c.exec(
      "UPDATE style_requests SET status = 'active', activated_at = now() WHERE id = "
      "(SELECT id FROM style_requests WHERE stream_id = $1 AND status = 'queued' ORDER BY id LIMIT 1) "
      "RETURNING style",
      {std::to_string(stream_id)});
  std::optional<std::string> style;
  if (next.rows() == 1) style = next.value(0, 0);
  if (changed || style) {
    // The next request's style, or (the queue is empty) the streamer's again.
    db::Result w = c.exec("UPDATE streams SET style = coalesce($2, streamer_style) WHERE id = $1 RETURNING worker_id",
                          {std::to_string(stream_id), style});
    if (auto worker = w.get(0, 0)) notify_worker(c, to_i64(*worker), stream_id);
    queue_changed(c, to_i64(locked.value(0, 0)));
  }
  tx.commit();
  return style;
}

void clear_styles(db::Connection& c, int64_t stream_id) {
  db::Transaction tx(c);
  if (c.exec("UPDATE style_requests SET status = 'skipped' WHERE stream_id = $1 AND status = 'queued' RETURNING id",
             {std::to_string(stream_id)}).rows() > 0)
    queue_changed(c, channel_of(c, stream_id));
  tx.commit();
}

bool reject_style(db::Connection& c, int64_t stream_id, int64_t request_id) {
  db::Transaction tx(c);
  // The row lock makes a second, racing reject wait and then find it no
  // longer queued.
  if (c.exec("UPDATE style_requests SET status = 'rejected' WHERE id = $1 AND stream_id = $2 AND status = 'queued' "
             "RETURNING id",
             {std::to_string(request_id), std::to_string(stream_id)}).rows() != 1)
    return false;
  queue_changed(c, channel_of(c, stream_id));
  tx.commit();
  return true;
}

int64_t styles_applied(db::Connection& c, int64_t stream_id) {
  return to_i64(c.exec("SELECT count(*) FROM style_requests WHERE stream_id = $1 AND activated_at IS NOT NULL",
                       {std::to_string(stream_id)}).value(0, 0));
}

}  // namespace mirage::repo
