-- The program overview (the admin's home page) reads these: the whole program's spend per
-- day by category and by merchant, and its authorizations per day by outcome. Like the card
-- rollups (0002), the transaction that changes a transaction or authorization row changes
-- them by the difference, a row whose counters return to zero is deleted, days are UTC and
-- currencies are never mixed. Their size follows days × categories (or merchants), not
-- transactions, so a month of the program is read in a few thousand rows whatever its volume.
-- `account` is the Connect account ('' for the platform's own: it is part of the key).

CREATE TABLE program_category_daily (
    day       date    NOT NULL,
    currency  text    NOT NULL,
    account   text    COLLATE "C" NOT NULL,
    category  text    NOT NULL,
    spend     bigint  NOT NULL,
    captures  integer NOT NULL,
    refunds   integer NOT NULL,
    -- Currency first: the overview reads one currency's days at a time.
    PRIMARY KEY (currency, day, account, category)
);

CREATE TABLE program_merchant_daily (
    day       date    NOT NULL,
    currency  text    NOT NULL,
    account   text    COLLATE "C" NOT NULL,
    merchant  text    NOT NULL,
    spend     bigint  NOT NULL,
    captures  integer NOT NULL,
    refunds   integer NOT NULL,
    PRIMARY KEY (currency, day, account, merchant)
);

-- Authorizations created that day by outcome: approved, or declined with Stripe's reason and
-- cardstream's ('' when there is none). A request awaiting its decision is in neither.
CREATE TABLE program_outcome_daily (
    day                date    NOT NULL,
    currency           text    NOT NULL,
    account            text    COLLATE "C" NOT NULL,
    approved           boolean NOT NULL,
    reason             text    NOT NULL,
    cardstream_reason  text    NOT NULL,
    authorizations     integer NOT NULL,
    PRIMARY KEY (day, currency, account, approved, reason, cardstream_reason)
);

-- The top cards of a period sum the card rollup over its days, one currency at a time; with
-- the columns it needs in the index, Postgres reads the index alone (once the visibility map
-- is set, as autovacuum keeps it).
CREATE INDEX card_daily_spend_currency_day ON card_daily_spend (currency, day)
    INCLUDE (card_id, spend, captures, account);

-- The overview's live feed: the program's newest authorizations.
CREATE INDEX authorizations_created ON authorizations (created DESC, id DESC);

-- Rows written before this migration.
INSERT INTO program_category_daily
SELECT DATE '1970-01-01' + floor(created::numeric / 86400)::int, currency,
       coalesce(account, ''), merchant_category,
       sum(-amount), sum((kind = 'capture')::int), sum((kind = 'refund')::int)
  FROM transactions WHERE kind IN ('capture', 'refund')
 GROUP BY 1, 2, 3, 4
HAVING NOT (sum(-amount) = 0 AND sum((kind = 'capture')::int) = 0 AND sum((kind = 'refund')::int) = 0);

INSERT INTO program_merchant_daily
SELECT DATE '1970-01-01' + floor(created::numeric / 86400)::int, currency,
       coalesce(account, ''),
       coalesce(nullif(merchant_name, ''), nullif(merchant_network_id, ''), 'unknown merchant'),
       sum(-amount), sum((kind = 'capture')::int), sum((kind = 'refund')::int)
  FROM transactions WHERE kind IN ('capture', 'refund')
 GROUP BY 1, 2, 3, 4
HAVING NOT (sum(-amount) = 0 AND sum((kind = 'capture')::int) = 0 AND sum((kind = 'refund')::int) = 0);

INSERT INTO program_outcome_daily
SELECT DATE '1970-01-01' + floor(created::numeric / 86400)::int, currency,
       coalesce(account, ''), approved,
       CASE WHEN approved THEN '' ELSE coalesce(decline_reason, '') END,
       CASE WHEN approved THEN '' ELSE coalesce(cardstream_reason, '') END,
       count(*)
  FROM authorizations WHERE approved OR status <> 'pending'
 GROUP BY 1, 2, 3, 4, 5, 6;
