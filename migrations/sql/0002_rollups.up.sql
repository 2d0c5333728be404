-- Rollups make the dashboard cheap. The transaction that changes a transaction or an
-- authorization row changes these by the difference, so they always equal the aggregate over
-- the base tables (a test checks it, and `cardstream verify` does on demand). A row whose
-- counters all return to zero is deleted, as the aggregate would have no such group.
-- Spend = −(sum of capture and refund amounts); currencies are never mixed; days are UTC.

CREATE TABLE card_daily_spend (
    card_id   text    NOT NULL,
    day       date    NOT NULL,
    currency  text    NOT NULL,
    -- Captures minus refunds, positive when money went out.
    spend     bigint  NOT NULL,
    -- Sum of capture magnitudes, and of refunds.
    captured  bigint  NOT NULL,
    refunded  bigint  NOT NULL,
    captures  integer NOT NULL,
    refunds   integer NOT NULL,
    -- Authorizations created that day, by outcome; a request still awaiting its decision is
    -- in neither.
    approved  integer NOT NULL,
    declined  integer NOT NULL,
    PRIMARY KEY (card_id, day, currency)
);
-- The spend limits read the current day and month for every card.
CREATE INDEX card_daily_spend_day ON card_daily_spend (day);

CREATE TABLE card_category_spend (
    card_id   text    NOT NULL,
    category  text    NOT NULL,
    currency  text    NOT NULL,
    spend     bigint  NOT NULL,
    captures  integer NOT NULL,
    PRIMARY KEY (card_id, category, currency)
);

-- Keyed by the merchant's name as Stripe reports it (its network id when the name is missing).
CREATE TABLE card_merchant_spend (
    card_id   text    NOT NULL,
    merchant  text    NOT NULL,
    currency  text    NOT NULL,
    spend     bigint  NOT NULL,
    captures  integer NOT NULL,
    PRIMARY KEY (card_id, merchant, currency)
);
