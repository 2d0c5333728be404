//! `cardstream dlq`: the dead letters the aggregator recorded, listed, shown, and written back
//! to the main topic once their cause is fixed. A redriven record is folded like any other:
//! events are deduplicated by id, so redriving one whose effect is already stored changes
//! nothing.

use anyhow::Context;
use cardstream_kafka::{KafkaArgs, RecordKeyArgs, Redriven, Redriver};
use cardstream_store::{DatabaseArgs, DeadLetter, DeadLetterFilter, Store};

use crate::database_commands::{Output, print_json};

/// `cardstream dlq`.
#[derive(Debug, clap::Args)]
pub(crate) struct DlqArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    action: DlqAction,
}

#[derive(Debug, clap::Subcommand)]
enum DlqAction {
    /// List dead letters, newest first: those not yet redriven unless `--redriven`.
    List {
        #[command(flatten)]
        select: Select,
        /// Most to list.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show one dead letter: where it came from, why, its headers and its payload.
    Show {
        id: i64,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Write dead letters back to the main topic and mark them redriven.
    Redrive(Box<RedriveArgs>),
}

/// Which dead letters a command covers.
#[derive(Debug, clap::Args)]
struct Select {
    /// Of this reason only (`unauthenticated`, `rejected_by_database`, …).
    #[arg(long)]
    reason: Option<String>,
    /// Include those already redriven.
    #[arg(long)]
    redriven: bool,
}

#[derive(Debug, clap::Args)]
struct RedriveArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Signs the redriven records as the gateway does (when the aggregator checks records).
    #[command(flatten)]
    record_keys: RecordKeyArgs,
    /// These dead letters (repeat the flag), redriven before or not.
    #[arg(long = "id", required_unless_present_any = ["all", "reason"])]
    ids: Vec<i64>,
    /// Every dead letter not yet redriven.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    /// Every dead letter of this reason not yet redriven.
    #[arg(long, conflicts_with = "ids")]
    reason: Option<String>,
    /// Who is redriving, recorded with each dead letter.
    #[arg(long, env = "USER", default_value = "cli")]
    by: String,
}

pub(crate) async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let store = Store::connect_with(args.database.expose_url(), 2, args.database.timeouts).await?;
    match args.action {
        DlqAction::List {
            select,
            limit,
            output,
        } => {
            let letters = store
                .dead_letters(&DeadLetterFilter {
                    reason: select.reason,
                    redriven: select.redriven,
                    limit,
                    ..Default::default()
                })
                .await?;
            list(&letters, output);
        }
        DlqAction::Show { id, output } => {
            let letter = one(&store, id).await?;
            show(&letter, output);
        }
        DlqAction::Redrive(redrive) => self::redrive(&store, *redrive).await?,
    }
    Ok(())
}

async fn one(store: &Store, id: i64) -> anyhow::Result<DeadLetter> {
    store
        .dead_letters(&DeadLetterFilter {
            ids: vec![id],
            limit: 1,
            ..Default::default()
        })
        .await?
        .pop()
        .with_context(|| format!("no dead letter {id}"))
}

fn json(letter: &DeadLetter, payload: bool) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = letter
        .headers()
        .map(|(name, value)| (name.to_owned(), String::from_utf8_lossy(value).into()))
        .collect();
    let mut value = serde_json::json!({
        "id": letter.id,
        "reason": letter.reason,
        "error": letter.error,
        "source": {"topic": letter.source_topic, "partition": letter.source_partition, "offset": letter.source_offset},
        "event_id": letter.event_id,
        "event_type": letter.event_type,
        "dead_at": letter.dead_at,
        "redriven_at": letter.redriven_at,
        "redriven_by": letter.redriven_by,
        "redrives": letter.redrives,
        "headers": headers,
    });
    if payload {
        value["payload"] = String::from_utf8_lossy(&letter.payload).into();
    }
    value
}

fn list(letters: &[DeadLetter], output: Output) {
    match output {
        Output::Json => print_json(&letters.iter().map(|l| json(l, false)).collect()),
        Output::Text => {
            crate::database_commands::print_row(&[
                "id", "reason", "source", "event", "dead at", "redriven", "error",
            ]);
            for l in letters {
                crate::database_commands::print_row(&[
                    &l.id.to_string(),
                    &l.reason,
                    &format!(
                        "{}/{}@{}",
                        l.source_topic, l.source_partition, l.source_offset
                    ),
                    l.event_id.as_deref().unwrap_or("-"),
                    &l.dead_at.to_string(),
                    &l.redriven_by
                        .as_ref()
                        .map_or_else(|| "-".into(), |by| format!("by {by}")),
                    &l.error.chars().take(120).collect::<String>(),
                ]);
            }
        }
    }
}

fn show(letter: &DeadLetter, output: Output) {
    let value = json(letter, true);
    match output {
        Output::Json => print_json(&value),
        Output::Text => {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
        }
    }
}

async fn redrive(store: &Store, args: RedriveArgs) -> anyhow::Result<()> {
    let letters = if args.ids.is_empty() {
        // Every waiting one (of the reason), oldest first so the topic keeps their order.
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .dead_letters(&DeadLetterFilter {
                    reason: args.reason.clone(),
                    before,
                    limit: 500,
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            all.extend(page);
        }
        all.reverse();
        all
    } else {
        let mut some = Vec::new();
        for &id in &args.ids {
            some.push(one(store, id).await?);
        }
        some
    };
    let redriver = Redriver::new(&args.kafka, args.record_keys.load()?)?;
    let mut redriven = 0;
    for letter in &letters {
        let headers: Vec<(&str, &[u8])> = letter.headers().collect();
        // Marked only once the topic has it: a failure here leaves it to redrive again, and
        // the event's id makes a second copy fold to nothing.
        redriver
            .write(Redriven {
                id: letter.id,
                key: letter.record_key.as_deref(),
                payload: &letter.payload,
                headers: &headers,
            })
            .await
            .with_context(|| format!("dead letter {} was not written back", letter.id))?;
        store.mark_redriven(letter.id, &args.by).await?;
        redriven += 1;
        tracing::info!(id = letter.id, reason = %letter.reason, topic = redriver.topic(), "dead letter redriven");
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("redrove {redriven} dead letter(s) to {}", args.kafka.topic);
    }
    Ok(())
}
