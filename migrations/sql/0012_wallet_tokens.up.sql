-- Wallet tokens: a card added to Apple Pay, Google Pay or Samsung Pay (`issuing_token.*`),
-- newest version wins like every object table; the network's data is kept as Stripe sent it.
-- And the token each authorization was made with.
CREATE TABLE tokens (
    id                 text     COLLATE "C" PRIMARY KEY,
    card_id            text     COLLATE "C" NOT NULL,
    status             text     NOT NULL,
    wallet_provider    text,
    device_type        text,
    network            text,
    last4              text,
    device_fingerprint text,
    network_updated_at bigint,
    network_data       jsonb,
    created            bigint   NOT NULL,
    version_created    bigint   NOT NULL,
    version_rank       smallint NOT NULL,
    version_event_id   text     COLLATE "C" NOT NULL,
    account            text     COLLATE "C"
);
-- A card's tokens, for its page.
CREATE INDEX tokens_card ON tokens (card_id, created DESC);
-- Tokens in events stored before this migration: each one's newest version, ordered as the
-- fold orders versions (created, then rank by event type, then event id).
INSERT INTO tokens
SELECT DISTINCT ON (o->>'id')
       o->>'id', coalesce(o->'card'->>'id', o->>'card'), o->>'status', o->>'wallet_provider',
       o->'network_data'->'device'->>'type', o->>'network', o->>'last4', o->>'device_fingerprint',
       (o->>'network_updated_at')::bigint, nullif(o->'network_data', 'null'::jsonb),
       (o->>'created')::bigint, e.created, r.rank, e.event_id, e.payload->>'account'
  FROM stripe_events e
       CROSS JOIN LATERAL (SELECT e.payload->'data'->'object' AS o) obj
       CROSS JOIN LATERAL (SELECT CASE split_part(e.event_type, '.', 2)
                                      WHEN 'snapshot' THEN -1 WHEN 'request' THEN 0
                                      WHEN 'created' THEN 1 ELSE 2 END::smallint AS rank) r
 WHERE e.event_type LIKE 'issuing\_token.%'
 ORDER BY o->>'id', e.created DESC, r.rank DESC, e.event_id DESC;

ALTER TABLE authorizations ADD COLUMN token_id text;
UPDATE authorizations t
   SET token_id = coalesce(e.payload->'data'->'object'->'token'->>'id',
                           e.payload->'data'->'object'->>'token')
  FROM stripe_events e
 WHERE e.event_id = t.version_event_id
   AND jsonb_typeof(e.payload->'data'->'object'->'token') IN ('string', 'object');
