-- What the pipeline's own processes know about themselves, for the admin console's health page
-- (not for alerting: Prometheus does that). Each gateway, aggregator and API process upserts
-- its row every few seconds with its version, readiness and a few figures only it holds (the
-- aggregator's lag per assigned partition, the gateway's last webhook), and adds what it
-- counted since its last report to per-minute counts: webhooks by type, refusals by reason,
-- records by outcome, and freshness by bucket. Counts add up across replicas; minutes older
-- than a week and processes silent for a day are deleted by the aggregators.
CREATE TABLE pipeline_components (
    instance    text        COLLATE "C" PRIMARY KEY,
    component   text        NOT NULL,
    version     text        NOT NULL,
    started_at  timestamptz NOT NULL,
    reported_at timestamptz NOT NULL,
    ready       boolean     NOT NULL,
    -- Why it is not ready, one line per unmet condition, as its /readyz says.
    not_ready   text,
    -- How often it reports: a row older than three of these belongs to a process gone silent.
    every_ms    integer     NOT NULL,
    details     jsonb       NOT NULL DEFAULT '{}'
);

CREATE TABLE pipeline_counts (
    minute    timestamptz NOT NULL,
    component text        NOT NULL,
    metric    text        NOT NULL,
    label     text        NOT NULL,
    count     bigint      NOT NULL,
    PRIMARY KEY (minute, component, metric, label)
);
