//! The aggregator on a real broker and a real Postgres.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cardstream_kafka::{dlq_topic, headers};
use cardstream_store::{Position, Store};
use cardstream_testbed::{Broker, PrivatePostgres, Storage, TestDatabase, read_to_end};
use common::{
    PARTITIONS, Setup, TestAggregator, WAIT, distinct, produce, produce_raw_as, simulated,
};

/// The state the same events give when ingested once, in order, straight into a database.
async fn expected_digests(
    events: &[cardstream_simulator::SimEvent],
) -> std::collections::BTreeMap<&'static str, (i64, String)> {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url, 2).await.unwrap();
    store.migrate_up().await.unwrap();
    let incoming: Vec<_> = events
        .iter()
        .map(|e| cardstream_store::IncomingEvent::parse(&e.body, 0, 0).unwrap())
        .collect();
    store
        .apply_batch(
            "expected",
            "expected",
            &incoming,
            &[Position {
                partition: 0,
                next_offset: 1,
            }],
        )
        .await
        .unwrap();
    store.table_digests().await.unwrap()
}

#[tokio::test]
async fn duplicated_reordered_events_on_the_topic_become_the_same_rows_once() {
    let setup = Setup::new(Storage::Memory).await;
    let events = simulated(21, 12, 250);
    // Delivered twice, the second time backwards.
    let mut delivered = events.clone();
    delivered.extend(events.iter().rev().cloned());
    produce(&setup.kafka(), &delivered).await;

    let mut aggregator =
        TestAggregator::start(setup.args("group-a", &["--batch-size", "300"])).await;
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            distinct(&events) as i64,
            WAIT,
        )
        .await;
    // Every record read, half of them duplicates.
    let deadline = std::time::Instant::now() + WAIT;
    while aggregator.metric("cardstream_records_total", &[]) < delivered.len() as f64 {
        assert!(
            std::time::Instant::now() < deadline,
            "not every record was read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        aggregator.metric("cardstream_records_total", &[("outcome", "new")]),
        events.len() as f64
    );
    assert_eq!(
        aggregator.metric("cardstream_records_total", &[("outcome", "duplicate")]),
        events.len() as f64
    );
    aggregator.stop().await;

    assert_eq!(
        setup.store.table_digests().await.unwrap(),
        expected_digests(&events).await
    );
    assert!(setup.store.rollup_drift().await.unwrap().is_clean());
    // Positions cover everything read, and Kafka has them committed.
    let positions = setup
        .count("SELECT sum(next_offset)::int8 FROM consumer_positions")
        .await;
    assert_eq!(positions, delivered.len() as i64);
    assert_eq!(
        cardstream_kafka::total_lag(&setup.kafka(), "group-a", &setup.topic)
            .await
            .unwrap(),
        0
    );
}

/// `--batch-max-bytes` bounds what one batch holds, so a run of large events cannot make a
/// batch (and the aggregator's memory) thousands of records' worth of megabytes.
#[tokio::test]
async fn a_batch_holds_at_most_batch_max_bytes_of_payload() {
    let setup = Setup::new(Storage::Memory).await;
    let events = simulated(23, 8, 150);
    produce(&setup.kafka(), &events).await;
    let total: usize = events.iter().map(|e| e.body.len()).sum();
    // A bound of the cardstream_batch_bytes histogram, so its bucket counts say
    // whether any batch went past it.
    const MAX: usize = 65_536;
    assert!(total > 8 * MAX, "too little data to need several batches");

    let mut aggregator = TestAggregator::start(setup.args(
        "group-bytes",
        &[
            "--batch-size",
            "5000",
            "--batch-max-bytes",
            &MAX.to_string(),
        ],
    ))
    .await;
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            distinct(&events) as i64,
            WAIT,
        )
        .await;
    aggregator.stop().await;

    let histogram = histogram(&aggregator, "cardstream_batch_bytes");
    let batches = histogram.get_sample_count();
    let within = histogram
        .get_bucket()
        .iter()
        .find(|b| b.upper_bound() == MAX as f64)
        .expect("a bucket at the bound")
        .cumulative_count();
    assert_eq!(within, batches, "every batch holds at most {MAX} bytes");
    assert!(
        batches as usize >= total.div_ceil(MAX),
        "{batches} batches cannot carry {total} bytes"
    );
    assert_eq!(histogram.get_sample_sum(), total as f64);
}

/// The batch wait adapts to load: a backlog still fills batches, and a record that arrives
/// alone is written once the topic goes quiet, not after the whole (here one-minute) wait.
#[tokio::test]
async fn a_batch_closes_when_the_topic_goes_quiet_and_fills_from_a_backlog() {
    let setup = Setup::new(Storage::Memory).await;
    let backlog = simulated(29, 8, 150);
    produce(&setup.kafka(), &backlog).await;
    let mut args = setup.args("group-quiet", &["--batch-size", "5000"]);
    args.batch_wait = Duration::from_secs(60);
    let mut aggregator = TestAggregator::start(args).await;
    let stored = "SELECT count(*) FROM stripe_events";
    setup
        .wait_for(stored, distinct(&backlog) as i64, WAIT)
        .await;
    let (records, batches) = batch_records(&aggregator);
    eprintln!("backlog of {records} records in {batches} batches");
    assert_eq!(records, backlog.len() as f64);
    assert!(
        records / batches >= 20.0,
        "a backlog of {records} records went in {batches} batches"
    );

    // One purchase's events, long after the backlog: written within seconds, not a minute.
    let late = simulated(31, 1, 1);
    produce(&setup.kafka(), &late).await;
    setup
        .wait_for(
            stored,
            (distinct(&backlog) + distinct(&late)) as i64,
            Duration::from_secs(20),
        )
        .await;
    aggregator.stop().await;
}

/// Records folded and batches written, from the `cardstream_batch_records` histogram.
fn batch_records(aggregator: &TestAggregator) -> (f64, f64) {
    let histogram = histogram(aggregator, "cardstream_batch_records");
    (
        histogram.get_sample_sum(),
        histogram.get_sample_count() as f64,
    )
}

/// The aggregator's histogram `name` (unlabelled) as it stands.
fn histogram(aggregator: &TestAggregator, name: &str) -> prometheus::proto::Histogram {
    aggregator
        .registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("{name} is registered"))
        .get_metric()[0]
        .get_histogram()
        .clone()
}

#[tokio::test]
async fn unreadable_records_go_to_the_dead_letter_topic_and_never_block_their_partition() {
    // SQLite storage: the dead letters are produced together, and the memory engine reports
    // too low an end after a multi-record batch, so an extra letter would not be read back.
    let setup = Setup::new(Storage::Sqlite).await;
    let kafka = setup.kafka();
    let events = simulated(22, 3, 30);
    let (first, rest) = events.split_at(events.len() / 2);
    produce(&kafka, first).await;
    // All on one key, hence one partition, between good events of that partition.
    // (reason, payload, stripe-event-id header)
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not_json", b"this is not json".to_vec(), ""),
        ("not_utf8", vec![0xff, 0xfe, 0x00], ""),
        ("not_an_event", br#"{"hello":"world"}"#.to_vec(), ""),
        ("invalid_object", br#"{"id":"evt_bad","object":"event","type":"issuing_transaction.created","created":1,"api_version":"2099-01-01.future","data":{"object":{"id":"ipi_x"}}}"#.to_vec(), ""),
        ("unsupported_content", br#"{"id":"evt_nul","object":"event","type":"plan.created","created":1,"data":{"object":{"id":"p","name":"a\u0000b"}}}"#.to_vec(), ""),
        // A NUL in a header, which Postgres text cannot hold: recorded all the same (it held
        // the partition while the insert was retried).
        ("not_json", b"a NUL in its event id header".to_vec(), "evt_\0nul"),
    ];
    // Where each bad record landed: its dead letter must say exactly this.
    let mut origins = Vec::with_capacity(bad.len());
    for (_, payload, event_id) in &bad {
        origins.push(produce_raw_as(&kafka, "ic_poison", payload, event_id).await);
    }
    produce(&kafka, rest).await;

    let mut aggregator = TestAggregator::start(setup.args("group-dlq", &[])).await;
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            distinct(&events) as i64,
            WAIT,
        )
        .await;
    // The whole dead-letter topic: a record dead-lettered twice, or a good one, would show.
    let letters = read_to_end(
        &setup.broker.brokers(),
        &dlq_topic(&setup.topic),
        3,
        bad.len(),
        WAIT,
    )
    .await;
    aggregator.stop().await;

    assert_eq!(letters.len(), bad.len(), "{letters:?}");
    for ((reason, payload, _), origin) in bad.iter().zip(&origins) {
        let letter = letters
            .iter()
            .find(|l| l.header(headers::DLQ_REASON) == Some(reason) && &l.payload == payload)
            .unwrap_or_else(|| panic!("no dead letter for {reason}"));
        assert_eq!(
            &letter.payload, payload,
            "the dead letter keeps the original bytes"
        );
        assert_eq!(letter.key.as_deref(), Some(b"ic_poison".as_slice()));
        assert_eq!(
            letter.header(headers::DLQ_SOURCE_TOPIC),
            Some(setup.topic.as_str())
        );
        assert_eq!(
            (
                letter.header(headers::DLQ_SOURCE_PARTITION),
                letter.header(headers::DLQ_SOURCE_OFFSET)
            ),
            (
                Some(origin.partition.to_string().as_str()),
                Some(origin.offset.to_string().as_str())
            ),
            "{reason}: the dead letter names where the bad record was produced"
        );
        let error = letter.header(headers::DLQ_ERROR).unwrap();
        assert!(!error.is_empty());
        if *reason == "invalid_object" {
            // An unknown shape is named with the API version it came under.
            assert!(error.contains("API version 2099-01-01.future"), "{error}");
        }
        let expected = bad.iter().filter(|(r, _, _)| r == reason).count() as f64;
        assert_eq!(
            aggregator.metric("cardstream_dead_letters_total", &[("reason", reason)]),
            expected
        );
    }
    // Each recorded in Postgres too, for `cardstream dlq` and the console.
    let recorded: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT reason, event_id FROM dead_letters ORDER BY source_offset")
            .fetch_all(setup.store.pool())
            .await
            .unwrap();
    assert_eq!(recorded.len(), bad.len(), "{recorded:?}");
    assert_eq!(
        recorded.last().unwrap(),
        &("not_json".to_owned(), Some("evt_\u{FFFD}nul".to_owned()))
    );
    assert_eq!(
        setup.store.table_digests().await.unwrap(),
        expected_digests(&events).await
    );
    // The good events, counted by their version (every record read, redeliveries included);
    // the dead-lettered ones are not.
    let versions = aggregator.metric(
        "cardstream_events_by_api_version_total",
        &[("api_version", cardstream_simulator::API_VERSION)],
    );
    assert!(
        versions >= events.len() as f64,
        "{versions} of {}",
        events.len()
    );
    assert_eq!(
        aggregator.metric(
            "cardstream_events_by_api_version_total",
            &[("api_version", "2099-01-01.future")]
        ),
        0.0
    );
    let stored_versions: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT api_version, count(*) FROM stripe_events GROUP BY 1 ORDER BY 1")
            .fetch_all(setup.store.pool())
            .await
            .unwrap();
    assert_eq!(
        stored_versions,
        [(
            Some(cardstream_simulator::API_VERSION.to_owned()),
            distinct(&events) as i64
        )]
    );
    assert_eq!(
        cardstream_kafka::total_lag(&setup.kafka(), "group-dlq", &setup.topic)
            .await
            .unwrap(),
        0,
        "the dead letters' offsets are committed too"
    );
}

#[tokio::test]
async fn a_postgres_restart_pauses_consumption_and_loses_nothing() {
    let broker = Broker::start(Storage::Memory).await;
    let mut postgres = PrivatePostgres::start().await;
    let db = TestDatabase::create_on(&postgres.url("postgres")).await;
    let setup = Setup::with(broker, db).await;
    let events = simulated(23, 10, 400);
    let (first, second) = events.split_at(events.len() / 3);
    produce(&setup.kafka(), first).await;
    let mut aggregator =
        TestAggregator::start(setup.args("group-pg", &["--batch-size", "100"])).await;
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            distinct(first) as i64,
            WAIT,
        )
        .await;

    postgres.stop().await;
    produce(&setup.kafka(), second).await;
    // Consumption runs into the outage and pauses.
    let deadline = std::time::Instant::now() + WAIT;
    while aggregator.metric("cardstream_consumer_paused", &[]) < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the aggregator did not pause"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    postgres.start_again().await;

    let store = Store::connect(&setup.db.url, 2).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events")
            .fetch_one(store.pool())
            .await
            .unwrap_or(0);
        if n == distinct(&events) as i64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {n} events after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        aggregator.metric(
            "cardstream_database_failures_total",
            &[("kind", "transient")]
        ) >= 1.0
    );
    assert_eq!(
        aggregator.metric("cardstream_consumer_paused", &[]),
        0.0,
        "consumption resumed"
    );
    assert_eq!(
        aggregator.metric(
            "cardstream_database_failures_total",
            &[("kind", "permanent")]
        ),
        0.0
    );
    aggregator.stop().await;
    assert_eq!(
        store.table_digests().await.unwrap(),
        expected_digests(&events).await
    );
    assert!(store.rollup_drift().await.unwrap().is_clean());
}

#[tokio::test]
async fn a_broker_restart_is_survived() {
    let setup = Setup::new(Storage::Sqlite).await;
    let events = simulated(24, 8, 200);
    let (first, second) = events.split_at(events.len() / 2);
    produce(&setup.kafka(), first).await;
    let mut aggregator = TestAggregator::start(setup.args("group-broker", &[])).await;
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            distinct(first) as i64,
            WAIT,
        )
        .await;

    let mut broker = setup.broker;
    broker.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.start_again().await;
    produce(
        &cardstream_kafka::KafkaArgs::new(broker.brokers(), &setup.topic),
        second,
    )
    .await;
    let store = setup.store;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events")
            .fetch_one(store.pool())
            .await
            .unwrap();
        if n == distinct(&events) as i64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {n} events after the broker restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    aggregator.stop().await;
    assert_eq!(
        store.table_digests().await.unwrap(),
        expected_digests(&events).await
    );
    let _ = PARTITIONS;
}
