-- Where each read of Stripe's REST API got to. A backfill killed half-way resumes after the
-- last page it had durably written to Kafka, and catch-up reads only events after the window
-- it last finished.
CREATE TABLE stripe_sync_cursors (
    -- `backfill` or `catch_up`.
    job            text        NOT NULL CHECK (job IN ('backfill', 'catch_up')),
    -- The connected account read with `Stripe-Account`; '' for the platform's own objects.
    account        text        NOT NULL DEFAULT '',
    -- The list read: `cardholders`, `cards`, `authorizations`, `transactions`, `disputes` for
    -- backfill, `events` for catch-up.
    list           text        NOT NULL,
    -- The `created` range read, unix seconds, both ends included. `since` is NULL for "from
    -- the beginning"; `until` is always set (a backfill without --until reads up to the moment
    -- it first started, so a resumed one reads the same range).
    since          bigint,
    until          bigint      NOT NULL,
    -- The id of the last object of the last page written to Kafka: the next page starts after
    -- it. NULL before the first page.
    starting_after text,
    -- Objects (backfill) or events (catch-up) written so far.
    objects        bigint      NOT NULL DEFAULT 0,
    done           boolean     NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, account, list)
);
