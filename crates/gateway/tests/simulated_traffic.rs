//! The simulator's traffic, duplicated and reordered, is accepted in full and every event
//! reaches the topic.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use cardstream_kafka::headers;
use cardstream_simulator::SimulateArgs;
use cardstream_telemetry::CancellationToken;
use cardstream_testbed::{Broker, Storage, read_records};
use common::{PARTITIONS, READ_TIMEOUT, SECRET, TestGateway};

#[tokio::test]
async fn simulated_traffic_is_accepted_in_full() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(
        &broker,
        &["--policy-blocked-categories", "betting_casino_gambling"],
    )
    .await;
    let mut args = SimulateArgs::new(gw.url(""), SECRET);
    args.rate = 0.0;
    args.count = Some(1500);
    args.cards = 40;
    args.duplicate_rate = 0.1;
    args.reorder_window = 16;
    args.retries = 0;
    let summary = cardstream_simulator::run(args, CancellationToken::new())
        .await
        .unwrap();
    eprintln!("{summary}");

    assert_eq!(summary.failed, 0, "every delivery must be accepted");
    assert!(summary.generated >= 1500);
    assert!(summary.duplicates_sent > 50, "duplicates were requested");
    assert_eq!(
        summary.accepted,
        summary.generated + summary.duplicates_sent
    );
    assert_eq!(
        summary.events.by_status.keys().copied().collect::<Vec<_>>(),
        vec![200]
    );
    assert_eq!(
        summary
            .authorizations
            .by_status
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![200]
    );
    assert!(summary.approved > 0);

    let expected = usize::try_from(summary.accepted).unwrap();
    let records = read_records(
        &broker.brokers(),
        &gw.topic,
        PARTITIONS,
        expected,
        READ_TIMEOUT,
    )
    .await;
    assert_eq!(
        records.len(),
        expected,
        "every accepted delivery is a record"
    );
    let on_topic: BTreeSet<&str> = records
        .iter()
        .map(|r| r.header(headers::EVENT_ID).unwrap())
        .collect();
    let accepted: BTreeSet<&str> = summary.accepted_ids.iter().map(String::as_str).collect();
    assert_eq!(on_topic, accepted);
    assert_eq!(on_topic.len() as u64, summary.generated);
    // Every record is a parseable Stripe event whose id matches its header.
    for record in &records {
        let event = cardstream_stripe::Event::parse(&record.payload).unwrap();
        assert_eq!(Some(event.id.as_str()), record.header(headers::EVENT_ID));
        event.object().unwrap();
    }
    gw.stop().await;
}
