-- Credit purchases through Stripe Checkout.
--
-- A payment row is created when the Checkout Session is; webhook events
-- move it along. stripe_events makes each event apply exactly once: its
-- primary key is taken in the same transaction as the credit.

CREATE TABLE payments (
  id                   bigserial PRIMARY KEY,
  user_id              bigint NOT NULL REFERENCES users (id),
  pack_id              text NOT NULL,
  credits              integer NOT NULL CHECK (credits > 0),
  amount               bigint NOT NULL CHECK (amount > 0),      -- smallest currency unit
  currency             text NOT NULL,
  stripe_session_id    text UNIQUE,
  payment_intent       text,
  status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'refunded', 'partially_refunded')),
  credited_seconds     bigint NOT NULL DEFAULT 0,   -- added to the ledger
  refunded_seconds     bigint NOT NULL DEFAULT 0,   -- taken back from the ledger
  shortfall_seconds    bigint NOT NULL DEFAULT 0,   -- refunded but already spent
  amount_refunded      bigint NOT NULL DEFAULT 0,
  receipt_url          text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  paid_at              timestamptz
);
CREATE INDEX payments_user ON payments (user_id, id);
CREATE INDEX payments_intent ON payments (payment_intent);

CREATE TABLE stripe_events (
  id           text PRIMARY KEY,
  type         text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
