-- Every Stripe event cardstream accepted, exactly once per event id. This table is the source
-- of truth: every other table can be rebuilt from it (`cardstream replay`).
CREATE TABLE stripe_events (
    event_id        text        COLLATE "C" PRIMARY KEY,
    event_type      text        NOT NULL,
    -- Stripe's `created`, unix seconds: with the event id, it orders versions of an object.
    created         bigint      NOT NULL,
    livemode        boolean     NOT NULL,
    payload         jsonb       NOT NULL,
    -- Where the aggregator read it; diagnostic only (a duplicate keeps its first position).
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_type_created ON stripe_events (event_type, created);

-- Payloads are compressed with lz4 where the server supports it: about 30% faster to write
-- than the default pglz (measured with COPY of simulator events), and as compact.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION lz4;
    END IF;
END
$$;

-- The object tables hold one row per Stripe object: its newest version. The version is
-- (version_created, version_rank, version_event_id) of the event that wrote the row; a row is
-- only replaced by a strictly newer version, so late and repeated deliveries cannot roll it
-- back. The rank orders events of the same second: an authorization request (0) before its
-- `.created` (1) before any `.updated` (2). Ids compare bytewise (COLLATE "C"), as the
-- aggregator compares them, whatever the database's locale.

CREATE TABLE cardholders (
    id               text     COLLATE "C" PRIMARY KEY,
    name             text,
    email            text,
    phone_number     text,
    status           text     NOT NULL,
    kind             text,
    created          bigint   NOT NULL,
    version_created  bigint   NOT NULL,
    version_rank     smallint NOT NULL,
    version_event_id text     COLLATE "C" NOT NULL
);

CREATE TABLE cards (
    id               text     COLLATE "C" PRIMARY KEY,
    cardholder_id    text     NOT NULL,
    status           text     NOT NULL,
    currency         text     NOT NULL,
    kind             text,
    brand            text,
    last4            text,
    exp_month        integer,
    exp_year         integer,
    created          bigint   NOT NULL,
    version_created  bigint   NOT NULL,
    version_rank     smallint NOT NULL,
    version_event_id text     COLLATE "C" NOT NULL
);
-- "My cards" for a cardholder.
CREATE INDEX cards_cardholder ON cards (cardholder_id);

-- Amounts are integer minor units of the row's currency, never floats.
CREATE TABLE authorizations (
    id                     text     COLLATE "C" PRIMARY KEY,
    card_id                text     NOT NULL,
    cardholder_id          text,
    -- Held amount: 0 while the request is pending and after the hold is released.
    amount                 bigint   NOT NULL,
    -- What was asked for: the pending request's amount, else the latest request_history's.
    requested_amount       bigint   NOT NULL,
    currency               text     NOT NULL,
    merchant_amount        bigint,
    merchant_currency      text,
    approved               boolean  NOT NULL,
    status                 text     NOT NULL,
    -- Stripe's reason for the latest decision when it was a decline (request_history).
    decline_reason         text,
    -- The gateway's own reason, echoed back by Stripe in the authorization's metadata.
    cardstream_reason      text,
    merchant_name          text,
    merchant_category      text     NOT NULL,
    merchant_category_code text,
    merchant_city          text,
    merchant_country       text,
    merchant_network_id    text,
    authorization_method   text,
    wallet                 text,
    request_history        jsonb    NOT NULL,
    created                bigint   NOT NULL,
    version_created        bigint   NOT NULL,
    version_rank           smallint NOT NULL,
    version_event_id       text     COLLATE "C" NOT NULL
);
-- A card's activity, newest first, with a stable (created, id) cursor.
CREATE INDEX authorizations_card_activity ON authorizations (card_id, created DESC, id DESC);
-- Filters on a card's activity by category.
CREATE INDEX authorizations_card_category ON authorizations (card_id, merchant_category, created DESC);
-- Holds not yet captured, for the spend limits of the authorization policy.
CREATE INDEX authorizations_pending_holds ON authorizations (card_id, currency)
    WHERE status = 'pending' AND approved;

-- A capture has a negative amount and a refund a positive one: spend = −sum(amount).
CREATE TABLE transactions (
    id                     text     COLLATE "C" PRIMARY KEY,
    card_id                text     NOT NULL,
    cardholder_id          text,
    authorization_id       text,
    kind                   text     NOT NULL,
    amount                 bigint   NOT NULL,
    currency               text     NOT NULL,
    merchant_amount        bigint,
    merchant_currency      text,
    merchant_name          text,
    merchant_category      text     NOT NULL,
    merchant_category_code text,
    merchant_city          text,
    merchant_country       text,
    merchant_network_id    text,
    dispute_id             text,
    wallet                 text,
    created                bigint   NOT NULL,
    version_created        bigint   NOT NULL,
    version_rank           smallint NOT NULL,
    version_event_id       text     COLLATE "C" NOT NULL
);
CREATE INDEX transactions_card_created ON transactions (card_id, created DESC, id DESC);
-- An authorization's transactions.
CREATE INDEX transactions_authorization ON transactions (authorization_id);

CREATE TABLE disputes (
    id               text     COLLATE "C" PRIMARY KEY,
    transaction_id   text     NOT NULL,
    amount           bigint   NOT NULL,
    currency         text     NOT NULL,
    status           text     NOT NULL,
    reason           text,
    created          bigint   NOT NULL,
    version_created  bigint   NOT NULL,
    version_rank     smallint NOT NULL,
    version_event_id text     COLLATE "C" NOT NULL
);
CREATE INDEX disputes_transaction ON disputes (transaction_id);

-- Up to where each consumer group has folded each partition, written in the same transaction
-- as the rows it covers. Kafka's committed offsets follow it; this one cannot be ahead of the
-- data.
CREATE TABLE consumer_positions (
    consumer_group  text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    next_offset     bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);
