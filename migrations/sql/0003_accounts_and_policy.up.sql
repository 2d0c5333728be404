-- People who log in to the dashboard. A password is kept only as an argon2id hash (a PHC
-- string with its salt and parameters); the password itself is never stored or logged.
CREATE TABLE users (
    id            bigserial   PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('admin', 'cardholder')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique whatever their case.
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- The cardholders a cardholder user may see (admins see everyone). Not a foreign key to
-- cardholders: a user may be linked before Stripe's cardholder event has arrived.
CREATE TABLE user_cardholders (
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cardholder_id text   NOT NULL,
    PRIMARY KEY (user_id, cardholder_id)
);

-- The authorization policy as an admin last saved it; at most one row. When it exists, the
-- gateway uses it instead of its file or environment policy, and picks up each new version
-- within seconds. `version` grows by one per save, so concurrent edits cannot overwrite each
-- other unseen.
CREATE TABLE authorization_policy (
    id         smallint    PRIMARY KEY CHECK (id = 1),
    version    bigint      NOT NULL,
    policy     jsonb       NOT NULL,
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The dashboard lists a card's activity by approved or declined.
CREATE INDEX authorizations_card_approved ON authorizations (card_id, approved, created DESC, id DESC);
