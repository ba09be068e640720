-- Accounts and credits.
--
-- Credits are kept as integer streaming-seconds (1 credit = 600 s) in an
-- append-only ledger. users.balance_seconds is the sum of a user's ledger,
-- maintained by a trigger in the same transaction as each ledger row; its
-- CHECK makes an entry that would take the balance below zero fail, so the
-- database, not the code, guarantees a balance never goes negative.

CREATE TABLE users (
  id              bigserial PRIMARY KEY,
  username        text NOT NULL CHECK (username ~ '^[a-z0-9_]{3,32}$'),
  email           text NOT NULL,
  password_hash   text NOT NULL,
  display_name    text NOT NULL DEFAULT '',
  bio             text NOT NULL DEFAULT '',
  balance_seconds bigint NOT NULL DEFAULT 0 CHECK (balance_seconds >= 0),
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- Usernames are URLs: unique whatever the case.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE sessions (
  token_hash   bytea PRIMARY KEY,  -- SHA-256 of the token; the token itself is never stored
  user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE credit_ledger (
  id            bigserial PRIMARY KEY,
  user_id       bigint NOT NULL REFERENCES users (id),
  delta_seconds bigint NOT NULL CHECK (delta_seconds <> 0),
  reason        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_ledger_user_id ON credit_ledger (user_id, id);

CREATE FUNCTION credit_ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE users SET balance_seconds = balance_seconds + NEW.delta_seconds WHERE id = NEW.user_id;
  RETURN NEW;
END $$;
CREATE TRIGGER credit_ledger_apply AFTER INSERT ON credit_ledger
  FOR EACH ROW EXECUTE FUNCTION credit_ledger_apply();

CREATE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'credit_ledger is append-only';
END $$;
CREATE TRIGGER credit_ledger_append_only BEFORE UPDATE OR DELETE ON credit_ledger
  FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();
