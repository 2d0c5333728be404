-- Every admin action, with who did it, when, and what changed: written in the same
-- transaction as the change itself, so a change is never without its entry. Append-only: the
-- trigger below refuses updates and deletes to everyone but a superuser who disables it.
CREATE TABLE audit_log (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    -- The signed-in user's email, or `cli:<os user>` for a command run on a shell.
    actor    text        NOT NULL,
    -- e.g. `policy.updated`, `user.role_changed`, `dead_letters.redrive_requested`.
    action   text        NOT NULL,
    -- What it was done to: a user's email, the policy's version, dead letter ids.
    subject  text        NOT NULL,
    -- What changed, before and after where there is a before. Never a secret.
    details  jsonb       NOT NULL
);
CREATE INDEX audit_log_action ON audit_log (action, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
