#include "workers.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rows.h"
#include "streams.h"

namespace mirage::repo {

namespace {

// text[] travels as a JSON array both ways (no array-literal quoting).
std::string json_array(const std::vector<std::string>& items) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartArray();
  for (const auto& s : items) w.String(s.c_str(), rapidjson::SizeType(s.size()));
  w.EndArray();
  return buffer.GetString();
}

std::vector<std::string> from_json_array(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  std::vector<std::string> out;
  if (!d.IsArray()) return out;
  for (const auto& v : d.GetArray())
    if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
  return out;
}

#define MIRAGE_WORKER_COLUMNS                                                                       \
  "w.id, w.name, w.media_url, w.srt_url, w.rtsp_url, w.srt_passphrase, array_to_json(w.styles)::text, " \
  "w.heartbeat_at > now() - make_interval(secs => $1) AND NOT w.draining"

service::MediaWorker read_worker(const db::Result& r, int row) {
  service::MediaWorker w;
  w.id = to_i64(r.value(row, 0));
  w.name = r.value(row, 1);
  w.media_url = r.value(row, 2);
  w.srt_url = r.value(row, 3);
  w.rtsp_url = r.value(row, 4);
  w.srt_passphrase = r.value(row, 5);
  w.styles = from_json_array(r.value(row, 6));
  w.live = to_bool(r.value(row, 7));
  return w;
}

}  // namespace

std::optional<Registered> register_worker(db::Connection& c, const WorkerRegistration& w, int timeout_seconds,
                                          std::string* refusal) {
  db::Transaction tx(c);
  db::Result old = c.exec(
      "SELECT id, instance, extract(epoch FROM now() - heartbeat_at)::float8 < $2, "
      "       round(extract(epoch FROM now() - heartbeat_at)::numeric, 1)::text "
      "FROM media_workers WHERE name = $1 FOR UPDATE",
      {w.name, std::to_string(timeout_seconds)});
  if (old.rows() == 1 && old.value(0, 1) != w.instance && to_bool(old.value(0, 2))) {
    *refusal = "another worker named '" + w.name + "' is live (its heartbeat is " + old.value(0, 3) +
               " s old): give this one another --worker-name";
    return std::nullopt;
  }
  const std::vector<db::Param> params = {w.name,        w.instance, w.media_url, w.srt_url,
                                         w.rtsp_url,    w.srt_passphrase, std::to_string(w.capacity),
                                         w.model,       w.device,   json_array(w.styles)};
  Registered out;
  if (old.rows() == 1) {
    out.id = to_i64(old.value(0, 0));
    out.restarted = old.value(0, 1) != w.instance;
    // Its streams are billed again from their first processed frame here.
    if (out.restarted)
      out.taken_back = c.exec("UPDATE streams SET billed_until = NULL WHERE worker_id = $1 AND ended_at IS NULL "
                              "RETURNING id",
                              {old.value(0, 0)})
                           .rows();
    c.exec("UPDATE media_workers SET instance = $2, media_url = $3, srt_url = $4, rtsp_url = $5, "
           "  srt_passphrase = $6, capacity = $7, model = $8, device = $9, "
           "  styles = ARRAY(SELECT jsonb_array_elements_text($10::jsonb)), "
           "  started_at = now(), heartbeat_at = now(), draining = false "
           "WHERE name = $1",
           params);
  } else {
    out.id = to_i64(c.exec("INSERT INTO media_workers (name, instance, media_url, srt_url, rtsp_url, srt_passphrase, "
                           "  capacity, model, device, styles) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, ARRAY(SELECT jsonb_array_elements_text($10::jsonb))) "
                           "RETURNING id",
                           params)
                        .value(0, 0));
  }
  tx.commit();
  return out;
}

void bill_streams_of_worker(db::Connection& c, const std::string& name) {
  db::Result r = c.exec("SELECT s.id FROM streams s JOIN media_workers w ON w.id = s.worker_id "
                        "WHERE w.name = $1 AND s.ended_at IS NULL",
                        {name});
  for (int i = 0; i < r.rows(); ++i) meter_stream(c, to_i64(r.value(i, 0)), std::nullopt);
}

WorkerState worker_state(db::Connection& c, int64_t worker_id, const std::string& instance) {
  db::Result r = c.exec("SELECT instance = $2, draining, extract(epoch FROM now() - heartbeat_at)::float8 "
                        "FROM media_workers WHERE id = $1",
                        {std::to_string(worker_id), instance});
  WorkerState s;
  if (r.rows() != 1) return s;
  s.ours = to_bool(r.value(0, 0));
  s.draining = to_bool(r.value(0, 1));
  s.silent_seconds = std::stod(r.value(0, 2));
  return s;
}

bool heartbeat(db::Connection& c, int64_t worker_id, const std::string& instance, bool restart_billing) {
  db::Transaction tx(c);
  if (c.exec("UPDATE media_workers SET heartbeat_at = now() WHERE id = $1 AND instance = $2 RETURNING id",
             {std::to_string(worker_id), instance})
          .rows() != 1)
    return false;
  if (restart_billing)
    c.exec("UPDATE streams SET billed_until = now() "
           "WHERE worker_id = $1 AND ended_at IS NULL AND billed_until IS NOT NULL",
           {std::to_string(worker_id)});
  tx.commit();
  return true;
}

std::optional<int64_t> drain_worker(db::Connection& c, const std::string& name, int timeout_seconds) {
  db::Transaction tx(c);
  db::Result r = c.exec("UPDATE media_workers SET draining = true "
                        "WHERE name = $1 AND heartbeat_at > now() - make_interval(secs => $2) RETURNING id",
                        {name, std::to_string(timeout_seconds)});
  if (r.rows() != 1) return std::nullopt;
  c.exec("SELECT pg_notify('mirage_worker_' || $1, 'drain')", {r.value(0, 0)});
  tx.commit();
  return to_i64(r.value(0, 0));
}

bool taken_over(db::Connection& c, int64_t stream_id, int64_t worker_id) {
  return to_bool(c.exec("SELECT NOT EXISTS (SELECT 1 FROM streams WHERE id = $1 AND worker_id = $2 AND ended_at IS NULL) "
                        "OR EXISTS (SELECT 1 FROM stream_runtime WHERE stream_id = $1 AND worker_id = $2 AND ready)",
                        {std::to_string(stream_id), std::to_string(worker_id)})
                     .value(0, 0));
}

void retire_worker(db::Connection& c, int64_t worker_id, const std::string& instance) {
  c.exec("UPDATE media_workers SET draining = true, heartbeat_at = now() - interval '1 day' "
         "WHERE id = $1 AND instance = $2",
         {std::to_string(worker_id), instance});
}

std::optional<service::MediaWorker> worker_by_id(db::Connection& c, int64_t worker_id, int timeout_seconds) {
  db::Result r = c.exec("SELECT " MIRAGE_WORKER_COLUMNS " FROM media_workers w WHERE w.id = $2",
                        {std::to_string(timeout_seconds), std::to_string(worker_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_worker(r, 0);
}

std::optional<service::MediaWorker> any_live_worker(db::Connection& c, int timeout_seconds) {
  db::Result r = c.exec("SELECT " MIRAGE_WORKER_COLUMNS " FROM media_workers w "
                        "WHERE w.heartbeat_at > now() - make_interval(secs => $1) AND NOT w.draining "
                        "ORDER BY w.id LIMIT 1",
                        {std::to_string(timeout_seconds)});
  if (r.rows() == 0) return std::nullopt;
  return read_worker(r, 0);
}

std::vector<PlacedStream> worker_streams(db::Connection& c, int64_t worker_id, const std::vector<int64_t>& running) {
  std::string ids = "{";
  for (size_t i = 0; i < running.size(); ++i) ids += (i ? "," : "") + std::to_string(running[i]);
  ids += "}";
  db::Result r = c.exec(
      "SELECT s.id, u.username, s.secret, s.style, s.ended_at IS NULL AND s.worker_id = $1, "
      "  coalesce(s.end_reason, CASE WHEN s.ended_at IS NULL THEN 'moved' END, ''), s.strength, "
      "  coalesce(s.request_id, '') "
      "FROM streams s JOIN users u ON u.id = s.user_id "
      "WHERE (s.worker_id = $1 AND s.ended_at IS NULL) OR s.id = ANY($2::bigint[]) ORDER BY s.id",
      {std::to_string(worker_id), ids});
  std::vector<PlacedStream> out;
  for (int i = 0; i < r.rows(); ++i) {
    PlacedStream s;
    s.id = to_i64(r.value(i, 0));
    s.username = r.value(i, 1);
    s.secret = r.value(i, 2);
    s.style = r.value(i, 3);
    s.live = to_bool(r.value(i, 4));
    s.end_reason = r.value(i, 5);
    s.strength = std::stod(r.value(i, 6));
    s.request_id = r.value(i, 7);
    out.push_back(std::move(s));
  }
  return out;
}

void write_runtime(db::Connection& c, int64_t worker_id, const std::string& reports, double since_heartbeat) {
  // Streams that ended meanwhile are skipped (the join), so a report racing
  // a stop never revives anything.
  db::Transaction tx(c);
  c.exec("INSERT INTO stream_runtime AS r (stream_id, worker_id, viewers, unique_viewers, ready, ingest, publisher, "
         "  fps_in, fps_processed, lag_ms, model_ms, restarts, health, updated_at) "
         "SELECT s.id, $1, (e->>'viewers')::int, (e->>'unique_viewers')::int, coalesce((e->>'ready')::boolean, false), "
         "  h->>'ingest', h->>'publisher', "
         "  (h->>'ingest_fps')::float8, (h->>'processed_fps')::float8, (h->>'lag_ms')::float8, "
         "  (h->>'inference_ms')::float8, (h->>'restarts_last_minute')::int, h, now() "
         "FROM jsonb_array_elements($2::jsonb) e "
         "CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(e->'health') = 'object' THEN e->'health' END AS h) x "
         "JOIN streams s ON s.id = (e->>'id')::bigint AND s.worker_id = $1 AND s.ended_at IS NULL "
         "ON CONFLICT (stream_id) DO UPDATE SET worker_id = excluded.worker_id, viewers = excluded.viewers, "
         "  ready = excluded.ready, "
         "  unique_viewers = excluded.unique_viewers, ingest = excluded.ingest, publisher = excluded.publisher, "
         "  fps_in = excluded.fps_in, fps_processed = excluded.fps_processed, lag_ms = excluded.lag_ms, "
         "  model_ms = excluded.model_ms, restarts = excluded.restarts, health = excluded.health, "
         "  updated_at = excluded.updated_at",
         {std::to_string(worker_id), reports});
  // Billing starts at the first processed frame (measured on the worker's
  // clock as an age, so the clocks need not agree).
  c.exec("UPDATE streams s SET billed_until = "
         "  greatest(s.started_at, now() - make_interval(secs => (e->>'processing_seconds')::float8), "
         "           now() - make_interval(secs => $3::float8)) "
         "FROM jsonb_array_elements($2::jsonb) e "
         "WHERE s.id = (e->>'id')::bigint AND s.worker_id = $1 AND s.ended_at IS NULL AND s.billed_until IS NULL "
         "  AND jsonb_typeof(e->'processing_seconds') = 'number'",
         {std::to_string(worker_id), reports, std::to_string(since_heartbeat)});
  tx.commit();
}

int64_t last_channel_event(db::Connection& c) {
  return to_i64(c.exec("SELECT coalesce(max(id), 0) FROM channel_events").value(0, 0));
}

std::vector<ChannelEvent> channel_events_after(db::Connection& c, int64_t after, int64_t worker_id, int limit) {
  db::Result r = c.exec("SELECT e.id, u.username, e.payload, e.worker_id IS NOT DISTINCT FROM $2 "
                        "FROM channel_events e JOIN users u ON u.id = e.channel_id "
                        "WHERE e.id > $1 ORDER BY e.id LIMIT $3",
                        {std::to_string(after), std::to_string(worker_id), std::to_string(limit)});
  std::vector<ChannelEvent> out;
  for (int i = 0; i < r.rows(); ++i) {
    // Rows this worker sends itself still move the cursor.
    const bool own = to_bool(r.value(i, 3));
    out.push_back({to_i64(r.value(i, 0)), r.value(i, 1), own ? std::string() : r.value(i, 2)});
  }
  return out;
}

void publish_event(db::Connection& c, int64_t channel_id, const std::string& payload,
                   std::optional<int64_t> sent_by_worker) {
  // One statement: the lock (key: the outbox's) is held from before the id
  // is drawn until the transaction commits, so readers see ids in order.
  c.exec("WITH l AS (SELECT pg_advisory_xact_lock(hashtext('mirage.channel_events'))), "
         "e AS (INSERT INTO channel_events (channel_id, payload, worker_id) SELECT $1, $2, $3 FROM l RETURNING id) "
         "SELECT pg_notify('mirage_events', id::text) FROM e",
         {std::to_string(channel_id), payload,
          sent_by_worker ? db::Param(std::to_string(*sent_by_worker)) : db::Param(std::nullopt)});
}

void notify_worker(db::Connection& c, int64_t worker_id, int64_t stream_id) {
  c.exec("SELECT pg_notify('mirage_worker_' || $1, $2)", {std::to_string(worker_id), std::to_string(stream_id)});
}

}  // namespace mirage::repo
