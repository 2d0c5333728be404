-- The live dashboard's change feed: every authorization a committed batch changed (itself, one
-- of its transactions, or a dispute on one), numbered. A subscriber reads the changes after
-- the last number it saw, so a reconnect with that number misses nothing, and one read per
-- API process serves every subscriber. Numbers are taken under a lock held until the batch
-- commits, so they become visible in order: a reader never sees 105 while 104 is still to
-- come. Rows older than an hour are deleted by the aggregators.
CREATE TABLE activity_changes (
    seq              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id          text        COLLATE "C" NOT NULL,
    authorization_id text        COLLATE "C" NOT NULL,
    at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activity_changes_card ON activity_changes (card_id, seq);
CREATE INDEX activity_changes_at ON activity_changes (at);
