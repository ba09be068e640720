-- Hardening (issue 12): limits the database enforces, payments that can
-- expire or be disputed, Stripe events kept until their payment is known,
-- and the host that holds each live stream's pipeline.

-- One waiting style request per viewer and stream; racing requests give one.
CREATE UNIQUE INDEX style_requests_one_queued_per_viewer ON style_requests (stream_id, requested_by)
  WHERE status = 'queued';

ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
  CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'expired', 'refunded', 'partially_refunded',
                    'disputed'));
-- A dispute freezes the disputed share of the credits, as a refund would.
ALTER TABLE payments ADD COLUMN amount_disputed bigint NOT NULL DEFAULT 0;
CREATE INDEX payments_pending_session ON payments (id) WHERE stripe_session_id IS NULL;

-- Events that matched no payment when they came (a refund before its
-- checkout.session.completed; a session whose id a crash kept us from
-- saving). They are answered non-2xx so Stripe delivers them again, and
-- applied as soon as the payment they belong to becomes known.
CREATE TABLE stripe_pending_events (
  id              text PRIMARY KEY,
  type            text NOT NULL,
  payment_id      bigint,   -- from metadata.payment_id, if given
  payment_intent  text,
  session_id      text,
  body            text NOT NULL,
  deliveries      integer NOT NULL DEFAULT 1,
  received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_pending_intent ON stripe_pending_events (payment_intent);
CREATE INDEX stripe_pending_payment ON stripe_pending_events (payment_id);
CREATE INDEX stripe_pending_session ON stripe_pending_events (session_id);

-- Which media host runs the stream's pipeline (miraged's --host-name):
-- after a crash, that host reconciles its own streams at start.
ALTER TABLE streams ADD COLUMN media_host text;

-- Purging expired sessions and old rate-limit windows.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX rate_limits_window_start ON rate_limits (window_start);
