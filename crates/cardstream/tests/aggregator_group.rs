//! Aggregator processes sharing a consumer group: one killed mid-stream, one added mid-stream.
//! The tables end exactly as if every event had been folded once.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Setup, distinct, expected_digests, produce, simulated, terminate};

const WAIT: Duration = Duration::from_secs(120);
const STORED: &str = "SELECT count(*) FROM stripe_events";

#[tokio::test]
async fn a_member_killed_without_committing_loses_nothing_and_counts_nothing_twice() {
    let setup = Setup::new(4).await;
    let events = simulated(31, 40, 1200);
    let thirds: Vec<&[cardstream_simulator::SimEvent]> =
        events.chunks(events.len().div_ceil(3)).collect();
    produce(&setup.kafka(), thirds[0]).await;

    let mut a = setup.aggregator("group", "a");
    let mut b = setup.aggregator("group", "b");
    // Mid-stream: more events arrive while both work.
    for chunk in thirds[1].chunks(200) {
        produce(&setup.kafka(), chunk).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_kill = setup.count(STORED).await;
    // SIGKILL: no shutdown, no final commit; whatever it had in flight is lost with it.
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    produce(&setup.kafka(), thirds[2]).await;
    // As Kubernetes would, start a replacement for the killed pod. (Needed here: tansu 0.6.0
    // keeps a member whose session expired in the next assignment, so without a newcomer the
    // dead member's partitions stay assigned to it; Apache Kafka would hand them to the
    // survivor after session.timeout.ms.) The newcomer joins after the dead member's session
    // (6 s) expired: tansu drops expired members on the next join or heartbeat, and a join
    // before that once formed groups that left the dead member's partitions unread.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut c = setup.aggregator("group", "c");

    setup
        .wait_for(STORED, distinct(&events), WAIT, &["a", "b", "c"])
        .await;
    assert!(
        before_kill > 0 && before_kill < distinct(&events),
        "the kill happened mid-stream ({before_kill} stored)"
    );
    assert_eq!(
        setup.store.table_digests().await.unwrap(),
        expected_digests(&events).await
    );
    assert!(setup.store.rollup_drift().await.unwrap().is_clean());
    // The survivor committed everything once it stopped.
    assert!(terminate(&mut b).await.success(), "{}", setup.log("b"));
    assert!(terminate(&mut c).await.success(), "{}", setup.log("c"));
    assert_eq!(
        cardstream_kafka::total_lag(&setup.kafka(), "group", &setup.topic)
            .await
            .unwrap(),
        0
    );
    // Who read the dead member's partitions, the survivor or the newcomer, is the broker's
    // choice (tansu reassigns on the first join or heartbeat after the session expired);
    // either way every event was folded once.
}

#[tokio::test]
async fn a_member_added_mid_stream_shares_the_work_and_the_result_is_exact() {
    let setup = Setup::new(4).await;
    let events = simulated(32, 40, 1200);
    let halves: Vec<&[cardstream_simulator::SimEvent]> =
        events.chunks(events.len().div_ceil(2)).collect();
    produce(&setup.kafka(), halves[0]).await;
    let mut a = setup.aggregator("group", "a");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut b = setup.aggregator("group", "b");
    for chunk in halves[1].chunks(200) {
        produce(&setup.kafka(), chunk).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    setup
        .wait_for(STORED, distinct(&events), WAIT, &["a", "b"])
        .await;
    assert_eq!(
        setup.store.table_digests().await.unwrap(),
        expected_digests(&events).await
    );
    assert!(setup.store.rollup_drift().await.unwrap().is_clean());
    // Both members held partitions at some point: the rebalance really happened.
    let (log_a, log_b) = (setup.log("a"), setup.log("b"));
    assert!(log_b.contains("partitions assigned"), "{log_b}");
    assert!(log_a.contains("partitions revoked"), "{log_a}");
    assert!(terminate(&mut a).await.success());
    assert!(terminate(&mut b).await.success());
}

/// Records on the topic are folded only when the gateway wrote them: one with its MAC folds;
/// one injected straight into Kafka, or signed with another key, goes to the dead-letter topic.
#[tokio::test]
async fn records_not_written_by_the_gateway_are_dead_lettered_not_folded() {
    use cardstream_kafka::{EventProducer, ProducerTuning, RecordKeys, headers};
    use cardstream_simulator::SimEvent;
    use common::gateway::{GatewayProcess, signed, try_exchange};
    use std::collections::BTreeMap;

    const KEY: &str = "the record key of this test: thirty-two bytes or more";
    let setup = Setup::new(1).await;
    let events = simulated(41, 3, 12);
    let (genuine, injected) = events.split_at(events.len() / 2);
    // Through the gateway, which signs each record.
    let gateway = GatewayProcess::start(&setup, &[("CARDSTREAM_RECORD_KEYS", KEY)]).await;
    for event in genuine {
        let request = signed("/webhooks/stripe", &event.body, common::gateway::now());
        let answer = try_exchange(gateway.addr, &request).await;
        assert_eq!(answer.map(|a| a.0), Some(200));
    }
    // Straight into the topic: unsigned, and signed with a key the aggregator does not know.
    let (unsigned, forged) = injected.split_at(injected.len() / 2);
    // Where each injected record landed: its dead letter must say exactly this.
    let mut produced: BTreeMap<(i32, i64), &SimEvent> = produce(&setup.kafka(), unsigned)
        .await
        .iter()
        .zip(unsigned)
        .map(|(stored, event)| ((stored.partition, stored.offset), event))
        .collect();
    let other = RecordKeys::new(&["somebody else's key, thirty-two bytes or more"]).unwrap();
    let producer = EventProducer::new(&setup.kafka(), ProducerTuning::default())
        .unwrap()
        .signing(other);
    for event in forged {
        let parsed = cardstream_stripe::Event::parse(&event.body).unwrap();
        let outgoing = cardstream_kafka::OutgoingEvent {
            key: &parsed.partition_key(),
            payload: &event.body,
            event_id: &parsed.id,
            event_type: &parsed.kind,
            created: parsed.created,
            received_at_ms: 0,
        };
        let stored = producer
            .send(&outgoing, Duration::from_secs(30))
            .await
            .unwrap();
        produced.insert((stored.partition, stored.offset), event);
    }

    let log = std::fs::File::create(setup.logs.path().join("signed.log")).unwrap();
    let _aggregator = setup
        .command(&["aggregator", "--batch-wait", "20ms"])
        .env("CARDSTREAM_RECORD_KEYS", KEY)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let dlq = cardstream_kafka::dlq_topic(&setup.topic);
    // The whole dead-letter topic, so that a letter too many (a genuine record, or one
    // dead-lettered twice) shows.
    let letters =
        cardstream_testbed::read_to_end(&setup.broker.brokers(), &dlq, 1, injected.len(), WAIT)
            .await;
    assert_eq!(letters.len(), injected.len(), "{}", setup.log("signed"));
    // Each letter says why, names where its record was produced, and keeps its bytes.
    let mut named: BTreeMap<(i32, i64), &[u8]> = BTreeMap::new();
    for letter in &letters {
        assert_eq!(
            letter.header(headers::DLQ_REASON),
            Some("unauthenticated"),
            "{letter:?}"
        );
        assert_eq!(
            letter.header(headers::DLQ_SOURCE_TOPIC),
            Some(setup.topic.as_str())
        );
        let origin = |name| letter.header(name).and_then(|v| v.parse::<i64>().ok());
        let partition = origin(headers::DLQ_SOURCE_PARTITION).and_then(|p| i32::try_from(p).ok());
        let offset = origin(headers::DLQ_SOURCE_OFFSET);
        let (Some(partition), Some(offset)) = (partition, offset) else {
            panic!("a dead letter without its origin: {letter:?}");
        };
        named.insert((partition, offset), &letter.payload);
    }
    assert_eq!(
        named.keys().collect::<Vec<_>>(),
        produced.keys().collect::<Vec<_>>(),
        "the dead letters' origins (partition, offset) are where the injected records were produced"
    );
    for (origin, payload) in &named {
        assert!(
            *payload == &produced[origin].body[..],
            "the dead letter of {origin:?} does not hold the bytes of {}",
            produced[origin].id
        );
    }
    setup
        .wait_for(STORED, distinct(genuine), WAIT, &["signed"])
        .await;
    // (The simulator redelivers some events, as Stripe does: an id also sent genuinely folds.)
    let genuine_ids: std::collections::BTreeSet<&str> =
        genuine.iter().map(|e| e.id.as_str()).collect();
    let injected_ids: Vec<&str> = injected
        .iter()
        .map(|e| e.id.as_str())
        .filter(|id| !genuine_ids.contains(id))
        .collect();
    assert!(!injected_ids.is_empty());
    let folded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE event_id = ANY($1)")
            .bind(&injected_ids)
            .fetch_one(setup.store.pool())
            .await
            .unwrap();
    assert_eq!(folded, 0, "injected records were folded");
}
