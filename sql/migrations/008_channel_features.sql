-- Issue 16: unique e-mail addresses, the streamer's style and strength,
-- rejected style requests, chat bans and time-outs, cancelled checkouts.

-- E-mail addresses are unique whatever their case. Accounts created before
-- this migration may share one: the oldest of each group keeps it in the
-- index, the later ones are marked and left out (nothing is renamed or
-- deleted, and a new sign-up with that address still collides with the
-- oldest). The marks are never set again.
ALTER TABLE users ADD COLUMN email_duplicate_before_008 boolean NOT NULL DEFAULT false;
UPDATE users u SET email_duplicate_before_008 = true
  WHERE EXISTS (SELECT 1 FROM users o WHERE lower(o.email) = lower(u.email) AND o.id < u.id);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE NOT email_duplicate_before_008;

-- The streamer's own style ('' = none) and strength (diffusionfilter's
-- `strength`, 0-1) on the stream, and as the user's defaults for the next
-- one. streams.style stays the effective style the worker applies: the
-- active viewer request's, else streamer_style.
ALTER TABLE users
  ADD COLUMN default_style    text NOT NULL DEFAULT '',
  ADD COLUMN default_strength double precision NOT NULL DEFAULT 0.8
    CHECK (default_strength >= 0 AND default_strength <= 1);
ALTER TABLE streams
  ADD COLUMN streamer_style text NOT NULL DEFAULT '',
  ADD COLUMN strength       double precision NOT NULL DEFAULT 0.8 CHECK (strength >= 0 AND strength <= 1);

-- The streamer may reject a queued request.
ALTER TABLE style_requests DROP CONSTRAINT style_requests_status_check;
ALTER TABLE style_requests ADD CONSTRAINT style_requests_status_check
  CHECK (status IN ('queued', 'active', 'done', 'skipped', 'rejected'));

-- Chat is per stream: comments are read by stream.
CREATE INDEX comments_stream ON comments (stream_id, id);

-- A channel's chat bans (until NULL) and time-outs (until a time), one row
-- per banned user; a time-out that is over is just an old row.
CREATE TABLE chat_bans (
  channel_id  bigint NOT NULL REFERENCES users (id),
  user_id     bigint NOT NULL REFERENCES users (id),
  until       timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel_id, user_id)
);

-- A checkout the buyer cancelled (the session expired at Stripe).
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
  CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'expired', 'cancelled', 'refunded',
                    'partially_refunded', 'disputed'));
