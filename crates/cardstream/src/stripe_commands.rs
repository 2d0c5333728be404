//! Commands that read Stripe's REST API into the pipeline: `backfill` and `catch-up`. The
//! report goes to stdout (text, or JSON with `--output json`); progress and messages to stderr.

use std::time::Duration;

use cardstream_kafka::{EventProducer, KafkaArgs, ProducerTuning, RecordKeyArgs};
use cardstream_store::{DatabaseArgs, Store};
use cardstream_sync::{BackfillArgs, CatchUpArgs, StripeApi};
use cardstream_telemetry::CancellationToken;
use serde_json::json;

use crate::database_commands::{Output, print_json};

/// Where what is read goes, and where the cursors live.
#[derive(Debug, clap::Args)]
pub(crate) struct PipelineArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    record_keys: RecordKeyArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    /// How the report is printed on stdout.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

/// `cardstream backfill`.
#[derive(Debug, clap::Args)]
pub(crate) struct BackfillCommand {
    #[command(flatten)]
    sync: BackfillArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// `cardstream catch-up`.
#[derive(Debug, clap::Args)]
pub(crate) struct CatchUpCommand {
    #[command(flatten)]
    sync: CatchUpArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

impl PipelineArgs {
    /// The signed producer (as the gateway's) and the store, both checked reachable first.
    async fn open(&self) -> anyhow::Result<(EventProducer, Store)> {
        let tuning = ProducerTuning {
            linger: Duration::from_millis(5),
            delivery_timeout: Duration::from_secs(30),
        };
        let mut producer = EventProducer::new(&self.kafka, tuning)?;
        if let Some(keys) = self.record_keys.load()? {
            producer = producer.signing(keys);
        }
        producer.probe(Duration::from_secs(10)).await?;
        let store =
            Store::connect_with(self.database.expose_url(), 2, self.database.timeouts).await?;
        Ok((producer, store))
    }

    /// Prints a run's report on stdout: as its text, or as `json()` with `--output json`.
    fn print(&self, report: &impl std::fmt::Display, json: impl FnOnce() -> serde_json::Value) {
        match self.output {
            Output::Text => {
                #[allow(clippy::print_stdout)]
                {
                    print!("{report}");
                }
            }
            Output::Json => print_json(&json()),
        }
    }
}

pub(crate) async fn backfill(
    args: BackfillCommand,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let api = StripeApi::new(&args.sync.api)?;
    let (producer, store) = args.pipeline.open().await?;
    let report = cardstream_sync::backfill(&args.sync, &api, &producer, &store, &shutdown).await?;
    args.pipeline.print(&report, || {
        json!({
            "objects": report.objects(),
            "lists": report.lists.iter().map(|l| json!({
                "account": l.account,
                "list": l.list,
                "objects": l.objects,
                "tokens": l.tokens,
                "pages": l.pages,
                "already_done": l.already_done,
            })).collect::<Vec<_>>(),
            "requests": report.requests,
            "throttled": report.throttled,
            "server_errors": report.server_errors,
            "network_errors": report.network_errors,
            "seconds": report.elapsed.as_secs_f64(),
        })
    });
    Ok(())
}

pub(crate) async fn catch_up(
    args: CatchUpCommand,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let api = StripeApi::new(&args.sync.api)?;
    let (producer, store) = args.pipeline.open().await?;
    let report = cardstream_sync::catch_up(&args.sync, &api, &producer, &store, &shutdown).await?;
    args.pipeline.print(&report, || {
        json!({
            "from": report.from,
            "until": report.until,
            "listed": report.listed,
            "recovered": report.recovered,
            "requests": report.requests,
            "throttled": report.throttled,
        })
    });
    Ok(())
}
