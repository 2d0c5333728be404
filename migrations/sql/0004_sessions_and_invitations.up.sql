-- A disabled user cannot sign in, and every session they had is ended with the change.
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
-- When the user joined, in unix seconds like every other `created` of the schema.
ALTER TABLE users ADD COLUMN created bigint NOT NULL DEFAULT extract(epoch FROM now())::bigint;
UPDATE users SET created = extract(epoch FROM created_at)::bigint;

-- Sign-in sessions. A token names its session; the API accepts a token only while its session
-- is open, so a session can be ended server-side (logout, a password change, an admin's edit of
-- the user) and every API replica refuses its token within seconds (each caches sessions
-- briefly and forgets them on NOTIFY cardstream_sessions).
CREATE TABLE sessions (
    -- 128 random bits, hex. Not a secret on its own: a token must also carry our signature.
    id           text        PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    -- `logout`, `password_changed`, `user_disabled`, `role_changed`, …: for the audit trail.
    ended_reason text
);
CREATE INDEX sessions_open_by_user ON sessions (user_id) WHERE ended_at IS NULL;

-- People join by invitation: an admin invites an email with its role and cardholders and gets
-- a one-time link; the invited person sets their own password there. A password reset is the
-- same kind of link for an existing user. Only a SHA-256 digest of the link's secret is kept,
-- so this table does not hand out working links to whoever can read it.
CREATE TABLE invitations (
    id             bigserial   PRIMARY KEY,
    token_sha256   bytea       NOT NULL UNIQUE,
    kind           text        NOT NULL CHECK (kind IN ('invite', 'password_reset')),
    email          text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('admin', 'cardholder')),
    cardholder_ids text[]      NOT NULL DEFAULT '{}',
    -- The user a password reset is for; none for an invitation.
    user_id        bigint      REFERENCES users (id) ON DELETE CASCADE,
    invited_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    accepted_at    timestamptz,
    revoked_at     timestamptz
);
-- At most one open invitation per email: inviting again revokes the earlier link.
CREATE INDEX invitations_open_by_email ON invitations (lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
