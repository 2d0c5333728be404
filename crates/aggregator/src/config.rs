use std::time::Duration;

use cardstream_kafka::{KafkaArgs, RecordKeyArgs};
use cardstream_store::DatabaseArgs;
use cardstream_telemetry::AdminArgs;

/// `cardstream aggregator` settings.
#[derive(clap::Args, Debug, Clone)]
pub struct AggregatorArgs {
    #[command(flatten)]
    pub admin: AdminArgs,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub record_keys: RecordKeyArgs,

    #[command(flatten)]
    pub status: cardstream_telemetry::StatusArgs,

    /// Kafka consumer group. Every replica uses the same one; partitions are shared among them.
    #[arg(
        long,
        env = "CARDSTREAM_CONSUMER_GROUP",
        default_value = "cardstream-aggregator"
    )]
    pub consumer_group: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Connections to Postgres.
    #[arg(long, env = "CARDSTREAM_DATABASE_POOL", default_value_t = 4)]
    pub database_pool: u32,

    /// Most records folded in one Postgres transaction.
    #[arg(long, env = "CARDSTREAM_BATCH_SIZE", default_value_t = 5000)]
    pub batch_size: usize,

    /// Most payload bytes in one batch (a record larger than this makes a batch of its own).
    /// The batch's memory is a few times this (parsed events, the SQL built from them), so it
    /// bounds the aggregator's memory whatever the size of the records; the default is above
    /// what 5,000 typical Stripe events take, so the record count is what usually closes a batch.
    #[arg(long, env = "CARDSTREAM_BATCH_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub batch_max_bytes: usize,

    /// How often to look for dead letters an admin asked (in the console) to redrive.
    #[arg(
        long,
        env = "CARDSTREAM_REDRIVE_INTERVAL",
        default_value = "1s",
        value_parser = cardstream_telemetry::non_zero_duration
    )]
    pub redrive_interval: Duration,

    /// Longest a batch waits to fill once its first record arrived.
    #[arg(
        long,
        env = "CARDSTREAM_BATCH_WAIT",
        default_value = "100ms",
        value_parser = humantime::parse_duration
    )]
    pub batch_wait: Duration,

    /// A batch that is not full closes when no record arrived for this long. The wait adapts
    /// to load: a trickle of webhooks is written as soon as it stops coming (a dashboard sees
    /// it within milliseconds, not a whole batch wait), while a backlog keeps records
    /// arriving back to back and fills batches to `--batch-size`. At or above `--batch-wait`,
    /// every batch waits the full batch wait.
    #[arg(
        long,
        env = "CARDSTREAM_BATCH_QUIET",
        default_value = "5ms",
        value_parser = cardstream_telemetry::non_zero_duration
    )]
    pub batch_quiet: Duration,

    /// Longest wait between retries while Postgres or the dead-letter topic is unavailable
    /// (the wait doubles from 100 ms up to this).
    #[arg(
        long,
        env = "CARDSTREAM_MAX_RETRY_BACKOFF",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub max_retry_backoff: Duration,

    /// How long the consumer may go without reading (while Postgres is unavailable and its
    /// read-ahead is full) before Kafka gives its partitions to another consumer.
    #[arg(
        long,
        env = "CARDSTREAM_MAX_POLL_INTERVAL",
        default_value = "10m",
        value_parser = humantime::parse_duration
    )]
    pub max_poll_interval: Duration,

    /// Longer than this without committing a batch while records wait (Postgres away, a table
    /// locked, statements timing out), the aggregator reports not ready, with the reason.
    #[arg(
        long,
        env = "CARDSTREAM_BATCH_STALL_TIMEOUT",
        default_value = "60s",
        value_parser = humantime::parse_duration
    )]
    pub batch_stall_timeout: Duration,

    /// After SIGTERM, the longest the aggregator takes to stop: the batch being written, the
    /// final offset commit and leaving the group. What a broker that is gone cannot take is
    /// given up: the next owner re-reads those records, and they are deduplicated.
    #[arg(
        long,
        env = "CARDSTREAM_SHUTDOWN_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub shutdown_timeout: Duration,
}
