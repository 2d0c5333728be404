-- The overview's presets (the last 7 or 30 days, and the periods just before them) read the
-- days before today from sums kept per window here, plus today's rows from the daily rollups:
-- a card's 30 days are one row, not one per day it spent, so the top cards read one row per
-- card instead of thirty. A window is the `days` days just before `as_of` (the state's single
-- row): [as_of - days, as_of - 1]. The fold adds what a batch changes on those days; an
-- aggregator's housekeeping rebuilds every window from the daily rollups when the UTC day
-- changes (under the rebuild lock, so no batch is half-counted). Until then, and whenever
-- `as_of` is not today, readers use the daily rollups, as for any other range.
CREATE TABLE rollup_window_state (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    as_of     date    NOT NULL
);

-- A card's spend per window (6 and 29 days: the 7- and 30-day presets with today).
CREATE TABLE card_windows (
    currency  text     NOT NULL,
    days      smallint NOT NULL,
    card_id   text     NOT NULL,
    account   text     COLLATE "C",
    spend     bigint   NOT NULL,
    captures  integer  NOT NULL,
    PRIMARY KEY (currency, days, card_id)
);

-- The program's spend per window by category ('g': 6, 13, 29 and 59 days, so that the
-- periods before the presets are differences of two windows) and by merchant ('m': 6 and
-- 29 days). `account` is '' for the platform's own, as in the program rollups.
CREATE TABLE program_windows (
    kind      "char"   NOT NULL,
    currency  text     NOT NULL,
    days      smallint NOT NULL,
    account   text     COLLATE "C" NOT NULL,
    key       text     NOT NULL,
    spend     bigint   NOT NULL,
    captures  integer  NOT NULL,
    refunds   integer  NOT NULL,
    PRIMARY KEY (kind, currency, days, account, key)
);
