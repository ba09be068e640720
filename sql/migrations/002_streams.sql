-- Streams, their viewer-facing features, and rate limits.

ALTER TABLE users
  ADD COLUMN comments_enabled boolean NOT NULL DEFAULT true,
  ADD COLUMN styles_enabled   boolean NOT NULL DEFAULT true;

CREATE TABLE streams (
  id              bigserial PRIMARY KEY,
  user_id         bigint NOT NULL REFERENCES users (id),
  title           text NOT NULL,
  secret          text NOT NULL,          -- per-stream ingest secret
  started_at      timestamptz NOT NULL DEFAULT now(),
  ended_at        timestamptz,
  end_reason      text,
  billed_until    timestamptz NOT NULL DEFAULT now(),  -- usage up to here is in the ledger
  seconds_billed  bigint NOT NULL DEFAULT 0,
  peak_viewers    integer NOT NULL DEFAULT 0,
  viewer_seconds  bigint NOT NULL DEFAULT 0,           -- sum of viewers x seconds, for the average
  style           text NOT NULL DEFAULT ''
);
-- One live stream per user, enforced here so that racing starts give one winner.
CREATE UNIQUE INDEX streams_one_live_per_user ON streams (user_id) WHERE ended_at IS NULL;

CREATE TABLE comments (
  id          bigserial PRIMARY KEY,
  channel_id  bigint NOT NULL REFERENCES users (id),    -- whose page
  stream_id   bigint REFERENCES streams (id),
  author_id   bigint NOT NULL REFERENCES users (id),
  body        text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 500),
  created_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz
);
CREATE INDEX comments_channel ON comments (channel_id, id);

-- The style queue of a stream: queued -> active -> done (or skipped).
CREATE TABLE style_requests (
  id            bigserial PRIMARY KEY,
  stream_id     bigint NOT NULL REFERENCES streams (id),
  style         text NOT NULL,
  requested_by  bigint NOT NULL REFERENCES users (id),
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'active', 'done', 'skipped')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  activated_at  timestamptz
);
CREATE INDEX style_requests_stream ON style_requests (stream_id, status, id);
CREATE UNIQUE INDEX style_requests_one_active ON style_requests (stream_id) WHERE status = 'active';

-- Fixed-window counters shared by every replica (login attempts, comments).
CREATE TABLE rate_limits (
  key           text PRIMARY KEY,
  window_start  timestamptz NOT NULL,
  hits          integer NOT NULL
);
