-- The admin's event log searches stored events by the object they carry and by card, newest
-- first. Both are computed by Postgres from the payload as each event is stored (generated
-- columns: nothing to keep in step by hand). Adding them rewrites the table once, holding it
-- locked meanwhile: about a minute per few million events, during which the aggregators wait.
ALTER TABLE stripe_events
    ADD COLUMN object_id text COLLATE "C"
        GENERATED ALWAYS AS (payload #>> '{data,object,id}') STORED,
    -- The card an event is about: a card event's own object, else the object's `card`, which
    -- an authorization expands and a transaction or token names by id.
    ADD COLUMN card_id text COLLATE "C"
        GENERATED ALWAYS AS (
            CASE
                WHEN payload #>> '{data,object,object}' = 'issuing.card'
                    THEN payload #>> '{data,object,id}'
                WHEN jsonb_typeof(payload #> '{data,object,card}') = 'object'
                    THEN payload #>> '{data,object,card,id}'
                ELSE payload #>> '{data,object,card}'
            END
        ) STORED;

CREATE INDEX stripe_events_object ON stripe_events (object_id, created DESC, event_id DESC);
CREATE INDEX stripe_events_card ON stripe_events (card_id, created DESC, event_id DESC)
    WHERE card_id IS NOT NULL;
CREATE INDEX stripe_events_created ON stripe_events (created DESC, event_id DESC);
