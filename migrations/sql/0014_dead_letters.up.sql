-- Dead letters, as the aggregator sent them to the dead-letter topic: listed, shown and
-- redriven (`cardstream dlq`, the console) from here, where they can be searched and marked,
-- while the topic stays the durable copy for other tools. One row per source record: a batch
-- read again after a crash records its dead letters again, and they are the same rows.
CREATE TABLE dead_letters (
    id                bigserial PRIMARY KEY,
    source_topic      text    NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint  NOT NULL,
    -- A stable code (`unauthenticated`, `not_json`, `rejected_by_database`, …) and the error.
    reason            text    NOT NULL,
    error             text    NOT NULL,
    -- The event's id and type when the payload could be read that far.
    event_id          text COLLATE "C",
    event_type        text,
    record_key        bytea,
    -- The record's own headers (the gateway's MAC, receipt time), names and values in order.
    header_names      text[]  NOT NULL DEFAULT '{}',
    header_values     bytea[] NOT NULL DEFAULT '{}',
    payload           bytea   NOT NULL,
    dead_at           timestamptz NOT NULL DEFAULT now(),
    -- Set by the last redrive: written back to the main topic, by whom.
    redriven_at       timestamptz,
    redriven_by       text,
    redrives          integer NOT NULL DEFAULT 0,
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_reason ON dead_letters (reason, id DESC);
CREATE INDEX dead_letters_waiting ON dead_letters (id DESC) WHERE redriven_at IS NULL;
