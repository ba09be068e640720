-- Media workers (`miraged worker`, docs/architecture.md): the media plane as
-- its own process, placed and driven through this database only.

-- One row per worker name. A worker upserts its row at start and heartbeats
-- every second; one whose heartbeat is older than the worker timeout is not
-- live and gets no new stream. |instance| is random per process: a second
-- process under a live worker's name is refused, and a worker whose row was
-- taken over stops heartbeating it.
CREATE TABLE media_workers (
  id              bigserial PRIMARY KEY,
  name            text NOT NULL UNIQUE,
  instance        text NOT NULL,
  media_url       text NOT NULL,              -- public http(s) base: WebSocket ingest/watch/events, HLS
  srt_url         text NOT NULL DEFAULT '',   -- public srt://host:port, '' when it has no SRT ingest
  rtsp_url        text NOT NULL DEFAULT '',   -- public rtsp://host:port, '' when it has no RTSP ingest
  srt_passphrase  text NOT NULL DEFAULT '',   -- given to the stream's owner in the SRT URL
  capacity        integer NOT NULL CHECK (capacity >= 0),
  model           text NOT NULL,
  device          text NOT NULL,
  styles          text[] NOT NULL DEFAULT '{}',  -- what its model offers
  started_at      timestamptz NOT NULL DEFAULT now(),
  heartbeat_at    timestamptz NOT NULL DEFAULT now(),
  draining        boolean NOT NULL DEFAULT false  -- takes no new stream
);

-- Where each stream runs. Replaces media_host (005), which named the API
-- process that ran it.
ALTER TABLE streams ADD COLUMN worker_id bigint REFERENCES media_workers (id);
ALTER TABLE streams DROP COLUMN media_host;
CREATE INDEX streams_live_on_worker ON streams (worker_id) WHERE ended_at IS NULL;

-- What a worker reports of each stream it runs, once a second. The viewer
-- counts bill and rank streams; health is the dashboard's object.
CREATE TABLE stream_runtime (
  stream_id       bigint PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
  worker_id       bigint NOT NULL REFERENCES media_workers (id),
  viewers         integer NOT NULL DEFAULT 0,
  unique_viewers  integer NOT NULL DEFAULT 0,
  ingest          text,
  publisher       text,      -- '' while no publisher is connected
  fps_in          double precision,
  fps_processed   double precision,
  lag_ms          double precision,
  model_ms        double precision,
  restarts        integer,   -- in the last minute
  health          jsonb,     -- null until the pipeline runs
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The outbox of a channel's /events messages (comments, deletions,
-- settings, live and offline), written in the transaction that made the
-- change and announced with NOTIFY mirage_events. Every worker reads the
-- rows after the last it saw and sends each to its own /events sockets of
-- that channel, so a lost notification delays a message but never loses it.
-- Writers take an advisory lock first, so ids become visible in order.
-- |worker_id|: the worker that sends this message itself (its stream's
-- live and offline) and skips the row.
CREATE TABLE channel_events (
  id          bigserial PRIMARY KEY,
  channel_id  bigint NOT NULL REFERENCES users (id),
  payload     text NOT NULL,
  worker_id   bigint,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channel_events_created_at ON channel_events (created_at);
