-- A redrive asked for in the console: the API has no Kafka producer, so it records the request
-- here and an aggregator writes the record back (claiming it first, so that two aggregators
-- do not both write it; a claim older than a minute is taken to have failed and is retried).
ALTER TABLE dead_letters
    ADD COLUMN redrive_requested_at timestamptz,
    ADD COLUMN redrive_requested_by text,
    ADD COLUMN redrive_claimed_at timestamptz;
CREATE INDEX dead_letters_redrive_requested ON dead_letters (id)
    WHERE redrive_requested_at IS NOT NULL;
