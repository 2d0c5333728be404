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
