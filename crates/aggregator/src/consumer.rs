//! The consume loop: collect a batch, send unreadable records to the dead-letter topic, write
//! the rest to Postgres in one transaction (retrying while Postgres is away), and only then
//! store the batch's offsets for Kafka to commit.
//!
//! While Postgres is away, consumption stops at a bounded read-ahead rather than through the
//! consumer's pause/resume. Pausing needs no broker feature, but resuming restarts a fetch at
//! an offset inside a record batch, which one broker we test against gets wrong (tansu 0.6.0's
//! memory engine skipped 19 of 216 records after a resume); not pausing keeps the aggregator
//! correct on any Kafka-protocol broker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cardstream_kafka::RecordKeys;
use cardstream_kafka::StatsContext;
use cardstream_store::{IncomingEvent, NewDeadLetter, Position, Store};
use cardstream_telemetry::CancellationToken;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::dlq::DeadLetters;
use crate::metrics::{AggregatorMetrics, BatchReport, Rebalanced};
use crate::progress::Progress;
use crate::records::{DeadLetter, Record, decode};
use crate::{AggregatorArgs, Error};

/// How long an idle consumer waits for a record before checking for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Committed offsets trail the stored ones by at most about this much.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// While Postgres is away, read at most this many batches ahead.
const READ_AHEAD_BATCHES: usize = 4;

/// Rebalance and commit hooks.
pub(crate) struct AggregatorContext {
    pub(crate) metrics: AggregatorMetrics,
    /// Set once the loop made its final commit: the revocation that closing the consumer
    /// causes has nothing left to commit (and against the test broker such a commit waits
    /// ~45 s for a coordinator that is already gone).
    pub(crate) closing: std::sync::atomic::AtomicBool,
    /// librdkafka's statistics, as `client="consumer"` metrics.
    pub(crate) stats: StatsContext,
}

impl ClientContext for AggregatorContext {
    fn stats(&self, statistics: rdkafka::statistics::Statistics) {
        self.stats.record(&statistics);
    }
}

fn nothing_to_commit(err: &KafkaError) -> bool {
    matches!(err, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
}

impl ConsumerContext for AggregatorContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions)
                if self.closing.load(std::sync::atomic::Ordering::Acquire) =>
            {
                tracing::info!(
                    partitions = partitions.count(),
                    "partitions released on shutdown"
                );
            }
            Rebalance::Revoke(partitions) => {
                self.metrics.rebalanced(Rebalanced::Revoke);
                // Every offset stored so far covers rows Postgres committed: hand them to Kafka
                // now, before another consumer starts from the committed offset. Not waiting
                // for the answer: this runs on an async worker inside `recv`, and a broker that
                // went away would hold it (and the shutdown) indefinitely. A commit that does
                // not land means the next owner re-reads those records; they are deduplicated.
                match consumer.commit_consumer_state(CommitMode::Async) {
                    Ok(()) => {}
                    Err(err) if nothing_to_commit(&err) => {}
                    Err(err) => {
                        self.metrics.offsets_committed(false);
                        tracing::warn!(error = %err, "could not commit offsets on revoke; the next owner re-reads those records (they are deduplicated)");
                    }
                }
                tracing::info!(partitions = partitions.count(), "partitions revoked");
            }
            Rebalance::Assign(partitions) => {
                self.metrics.rebalanced(Rebalanced::Assign);
                let list: Vec<i32> = partitions
                    .elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                tracing::info!(?list, "partitions assigned");
            }
            Rebalance::Error(err) => tracing::warn!(error = %err, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => self.metrics.offsets_committed(true),
            Err(err) if nothing_to_commit(&err) => {}
            Err(err) => {
                self.metrics.offsets_committed(false);
                tracing::warn!(error = %err, "offset commit failed; it is retried with the next one");
            }
        }
    }
}

pub(crate) type Kafka = StreamConsumer<AggregatorContext>;

/// The consume loop's state.
pub(crate) struct Worker {
    pub(crate) consumer: Arc<Kafka>,
    pub(crate) store: Store,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) metrics: AggregatorMetrics,
    pub(crate) args: AggregatorArgs,
    pub(crate) progress: Progress,
    /// Records must carry a MAC made with one of these, when set.
    keys: Option<RecordKeys>,
    /// Records that arrived while a batch was being retried; they start the next batch.
    carry: Vec<Record>,
    waiting: bool,
    last_commit: Instant,
    /// Offsets stored since the last commit.
    uncommitted: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The stop was asked for while a batch could not be written; nothing of it was stored.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl Worker {
    pub(crate) fn new(
        consumer: Arc<Kafka>,
        store: Store,
        dead_letters: DeadLetters,
        metrics: AggregatorMetrics,
        args: AggregatorArgs,
        progress: Progress,
        keys: Option<RecordKeys>,
    ) -> Self {
        Worker {
            keys,
            consumer,
            store,
            dead_letters,
            metrics,
            args,
            progress,
            carry: Vec::new(),
            waiting: false,
            last_commit: Instant::now(),
            uncommitted: false,
        }
    }

    /// Runs until `shutdown`, then commits the stored offsets.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) -> Result<(), Error> {
        // The whole stop, from the signal, takes at most the shutdown timeout.
        let signalled = Arc::new(std::sync::OnceLock::new());
        let (mark, token) = (signalled.clone(), shutdown.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            let _ = mark.set(Instant::now());
        });
        let grace = self.args.shutdown_timeout / 2;
        while !shutdown.is_cancelled() {
            let batch = self.collect(&shutdown).await;
            if batch.is_empty() {
                // Idle: commit what the last batches stored, so the group's lag reads zero.
                self.commit_stored();
                continue;
            }
            // A batch being written when the stop comes gets half the shutdown timeout (a
            // table lock can hold it for the lock timeout); past that it is abandoned, rolled
            // back, and read again by the next owner, so the final commit keeps its half.
            let abandon = async {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
            };
            let processed = tokio::select! {
                result = self.process(batch, &shutdown) => result,
                () = abandon => {
                    tracing::warn!(?grace, "the batch in flight did not commit in time; abandoned (its records are read again)");
                    Err(Interrupted)
                }
            };
            if processed.is_err() {
                break;
            }
        }
        let stop_by =
            signalled.get().copied().unwrap_or_else(Instant::now) + self.args.shutdown_timeout;
        // The final commit waits for the broker's answer and closing leaves the group: both
        // block, for as long as a broker that went away keeps librdkafka retrying. So they run
        // on a blocking thread, and the stop waits for them only until the shutdown timeout;
        // the process then exits without them (offsets not committed are re-read by the next
        // owner, and deduplicated).
        let consumer = self.consumer;
        let finish = tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!("offsets committed"),
                Err(err) if nothing_to_commit(&err) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "final offset commit failed; the next owner re-reads the last records (deduplicated)")
                }
            }
            consumer
                .context()
                .closing
                .store(true, std::sync::atomic::Ordering::Release);
            drop(consumer);
        });
        let within = stop_by.saturating_duration_since(Instant::now());
        match tokio::time::timeout(within, finish).await {
            Ok(_) => tracing::info!("aggregator stopped"),
            Err(_) => tracing::warn!(
                timeout = ?self.args.shutdown_timeout,
                "the broker did not take the final commit and leave-group in time; stopping without them (the next owner re-reads the last records, deduplicated)"
            ),
        }
        Ok(())
    }

    fn report_consumer_error(&self, err: &KafkaError) {
        // Broker restarts surface here as transport errors; librdkafka reconnects by itself.
        tracing::warn!(error = %err, "consumer error; librdkafka keeps retrying");
    }

    /// Up to `batch_size` records and `batch_max_bytes` of payload, waiting at most
    /// `batch_wait` after the first, and at most `batch_quiet` for each next one. A record that
    /// would take the batch past the byte bound starts the next one instead.
    async fn collect(&mut self, shutdown: &CancellationToken) -> Vec<Record> {
        let size = self.args.batch_size.max(1);
        let max_bytes = self.args.batch_max_bytes;
        let (mut take, mut bytes) = (0, 0);
        for record in self.carry.iter().take(size) {
            let len = record.payload_len();
            // The first record always goes, however large.
            if take > 0 && bytes + len > max_bytes {
                break;
            }
            (take, bytes) = (take + 1, bytes + len);
        }
        let mut batch: Vec<Record> = self.carry.drain(..take).collect();
        if !self.carry.is_empty() {
            // Full from what was read ahead; newer records wait in Kafka.
            return batch;
        }
        let mut deadline = (!batch.is_empty()).then(|| Instant::now() + self.args.batch_wait);
        while batch.len() < size {
            let wait = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(self.args.batch_quiet),
                None => IDLE_POLL,
            };
            if wait.is_zero() {
                break;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                    Err(_elapsed) => break,
                    Ok(Ok(message)) => {
                        let record = decode(&message, self.keys.as_ref());
                        let len = record.payload_len();
                        if !batch.is_empty() && bytes + len > max_bytes {
                            self.carry.push(record);
                            break;
                        }
                        bytes += len;
                        batch.push(record);
                        deadline.get_or_insert_with(|| Instant::now() + self.args.batch_wait);
                    }
                    Ok(Err(err)) => self.report_consumer_error(&err),
                },
            }
        }
        batch
    }

    /// Waits `duration` while still polling the consumer (so the group keeps this member and
    /// rebalances are served); what arrives is carried to the next batches, up to a few
    /// batches' worth. Past that it stops reading: records stay in Kafka, where they are safe.
    async fn wait_serving(
        &mut self,
        duration: Duration,
        shutdown: &CancellationToken,
    ) -> Result<(), Interrupted> {
        let until = Instant::now() + duration;
        let read_ahead = self.args.batch_size.max(1) * READ_AHEAD_BATCHES;
        let read_ahead_bytes = self.args.batch_max_bytes.saturating_mul(READ_AHEAD_BATCHES);
        let mut carried: usize = self.carry.iter().map(Record::payload_len).sum();
        loop {
            let remaining = until.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(());
            }
            if self.carry.len() >= read_ahead || carried >= read_ahead_bytes {
                tokio::select! {
                    () = shutdown.cancelled() => return Err(Interrupted),
                    () = tokio::time::sleep(remaining) => return Ok(()),
                }
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Err(Interrupted),
                received = tokio::time::timeout(remaining, self.consumer.recv()) => match received {
                    Err(_elapsed) => return Ok(()),
                    Ok(Ok(message)) => {
                        let record = decode(&message, self.keys.as_ref());
                        carried += record.payload_len();
                        self.carry.push(record);
                    }
                    Ok(Err(err)) => self.report_consumer_error(&err),
                },
            }
        }
    }

    fn set_waiting(&mut self, waiting: bool) {
        self.waiting = waiting;
        self.metrics.paused(waiting);
    }

    /// Writes one batch for good, or returns `Interrupted` (nothing stored) on shutdown.
    async fn process(
        &mut self,
        batch: Vec<Record>,
        shutdown: &CancellationToken,
    ) -> Result<(), Interrupted> {
        let started = Instant::now();
        let topic = self.args.kafka.topic.clone();
        // Records of partitions this consumer lost meanwhile belong to their new owner.
        let assigned: BTreeSet<i32> = self
            .consumer
            .assignment()
            .map(|tpl| {
                tpl.elements_for_topic(&topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect()
            })
            .unwrap_or_default();
        let (batch, revoked): (Vec<Record>, Vec<Record>) = batch
            .into_iter()
            .partition(|r| assigned.contains(&r.partition()));
        self.metrics.revoked_records(revoked.len());
        if batch.is_empty() {
            return Ok(());
        }
        self.progress.started();
        let positions = positions(&batch);
        let (records, bytes) = (batch.len(), batch.iter().map(Record::payload_len).sum());
        let mut events = Vec::new();
        let mut received_at_ms = Vec::new();
        let mut dead = Vec::new();
        for record in batch {
            match record {
                Record::Event {
                    event,
                    received_at_ms: at,
                } => {
                    events.push(*event);
                    received_at_ms.extend(at);
                }
                Record::Dead(letter) => dead.push(letter),
            }
        }
        self.send_dead_letters(&dead, shutdown).await?;
        self.metrics
            .events_read(events.iter().map(|e| e.event.api_version.as_deref()));
        let (new, duplicates, rejected) = self.write(events, &positions, shutdown).await?;
        if !rejected.is_empty() {
            self.send_dead_letters(&rejected, shutdown).await?;
        }
        self.store_offsets(&topic, &positions);
        self.progress.committed();
        self.metrics.batch_done(&BatchReport {
            new,
            duplicates,
            dead_lettered: dead.len() + rejected.len(),
            records,
            bytes,
            duration: started.elapsed(),
            received_at_ms,
            committed_at_ms: now_ms(),
        });
        Ok(())
    }

    async fn send_dead_letters(
        &mut self,
        letters: &[DeadLetter],
        shutdown: &CancellationToken,
    ) -> Result<(), Interrupted> {
        if letters.is_empty() {
            return Ok(());
        }
        let refs: Vec<&DeadLetter> = letters.iter().collect();
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.dead_letters.send(&refs).await {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "cannot write to the dead-letter topic; the batch waits");
                    self.wait_serving(backoff, shutdown).await?;
                    backoff = (backoff * 2).min(self.args.max_retry_backoff);
                }
            }
        }
        // Recorded for `cardstream dlq` and the console before the offsets move past them;
        // a batch read again records the same rows (one per source record).
        let recorded: Vec<NewDeadLetter> = letters
            .iter()
            .map(|l| l.recorded(&self.args.kafka.topic))
            .collect();
        let mut backoff = FIRST_BACKOFF;
        while let Err(err) = self.store.record_dead_letters(&recorded).await {
            tracing::warn!(error = %err, retry_in = ?backoff, "cannot record dead letters in Postgres; the batch waits");
            self.wait_serving(backoff, shutdown).await?;
            backoff = (backoff * 2).min(self.args.max_retry_backoff);
        }
        for letter in letters {
            self.metrics.dead_lettered(letter.reason);
            tracing::warn!(reason = letter.reason, error = %letter.error, partition = letter.partition, offset = letter.offset, "record sent to the dead-letter topic");
        }
        Ok(())
    }

    /// Writes the batch: each partition's part in its own transaction, all at once. Partitions
    /// are independent (a card, and with it every row its events touch, lives in one), so the
    /// transactions never wait on each other, and Postgres can use more than one core. A part
    /// that fails is then written on its own, with retries.
    async fn write(
        &mut self,
        events: Vec<IncomingEvent>,
        positions: &[Position],
        shutdown: &CancellationToken,
    ) -> Result<(usize, usize, Vec<DeadLetter>), Interrupted> {
        let mut parts: BTreeMap<i32, (Vec<IncomingEvent>, Vec<Position>)> = BTreeMap::new();
        for position in positions {
            parts
                .entry(position.partition)
                .or_default()
                .1
                .push(*position);
        }
        for event in events {
            parts.entry(event.partition).or_default().0.push(event);
        }
        let (group, topic) = (&self.args.consumer_group, &self.args.kafka.topic);
        let attempts =
            futures_util::future::join_all(parts.values().map(|(events, positions)| {
                self.store.apply_batch(group, topic, events, positions)
            }))
            .await;
        let (mut new, mut duplicates, mut rejected) = (0, 0, Vec::new());
        let mut failed = Vec::new();
        for ((events, positions), attempt) in parts.into_values().zip(attempts) {
            match attempt {
                Ok(outcome) => {
                    new += outcome.new_events;
                    duplicates += outcome.duplicates;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "a partition's part of the batch failed; retrying it alone");
                    failed.push((events, positions));
                }
            }
        }
        for (events, positions) in failed {
            let (n, d, r) = self.write_part(&events, &positions, shutdown).await?;
            new += n;
            duplicates += d;
            rejected.extend(r);
        }
        Ok((new, duplicates, rejected))
    }

    /// Writes events and positions in one transaction, retrying transient failures while
    /// holding consumption. A permanent failure is narrowed down by halves to the records
    /// Postgres refuses, which come back as dead letters; the rest is written.
    async fn write_part(
        &mut self,
        events: &[IncomingEvent],
        positions: &[Position],
        shutdown: &CancellationToken,
    ) -> Result<(usize, usize, Vec<DeadLetter>), Interrupted> {
        match self.apply(events, positions, shutdown).await? {
            Ok((new, duplicates)) => Ok((new, duplicates, Vec::new())),
            Err(err) => {
                tracing::error!(error = %err, records = events.len(), "Postgres refused the batch; isolating the records it refuses");
                let mut rejected = Vec::new();
                let (mut new, mut duplicates) = (0, 0);
                let mut stack = vec![events];
                while let Some(part) = stack.pop() {
                    match self.apply(part, &[], shutdown).await? {
                        Ok((n, d)) => {
                            new += n;
                            duplicates += d;
                        }
                        Err(err) if part.len() == 1 => {
                            rejected.push(rejected_letter(&part[0], &err))
                        }
                        Err(_) => {
                            let (left, right) = part.split_at(part.len() / 2);
                            stack.push(right);
                            stack.push(left);
                        }
                    }
                }
                // The positions, on their own, once the rest is settled.
                if let Err(err) = self.apply(&[], positions, shutdown).await? {
                    tracing::error!(error = %err, "cannot record consumer positions");
                }
                Ok((new, duplicates, rejected))
            }
        }
    }

    /// One batch write, retried while the failure is transient. The inner `Err` is a permanent
    /// failure.
    async fn apply(
        &mut self,
        events: &[IncomingEvent],
        positions: &[Position],
        shutdown: &CancellationToken,
    ) -> Result<Result<(usize, usize), cardstream_store::Error>, Interrupted> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self
                .store
                .apply_batch(
                    &self.args.consumer_group,
                    &self.args.kafka.topic,
                    events,
                    positions,
                )
                .await
            {
                Ok(outcome) => {
                    if self.waiting {
                        tracing::info!("Postgres is back; resuming consumption");
                        self.set_waiting(false);
                    }
                    return Ok(Ok((outcome.new_events, outcome.duplicates)));
                }
                Err(err) if err.is_transient() => {
                    let kind = err.timeout().unwrap_or("transient");
                    self.metrics.database_failed(kind);
                    self.progress.failed(format!("{kind}: {err}"));
                    if !self.waiting {
                        tracing::warn!(error = %err, "Postgres unavailable; holding consumption and retrying the batch");
                        self.set_waiting(true);
                    }
                    self.wait_serving(backoff, shutdown).await?;
                    backoff = (backoff * 2).min(self.args.max_retry_backoff);
                }
                Err(err) => {
                    self.metrics.database_failed("permanent");
                    return Ok(Err(err));
                }
            }
        }
    }

    /// Stores the batch's offsets and commits the stored offsets at most every second (and, in
    /// the rebalance hook and at shutdown, at once). Called only after Postgres committed the
    /// batch.
    fn store_offsets(&mut self, topic: &str, positions: &[Position]) {
        let mut tpl = TopicPartitionList::new();
        for p in positions {
            if let Err(err) =
                tpl.add_partition_offset(topic, p.partition, Offset::Offset(p.next_offset))
            {
                tracing::warn!(error = %err, "bad offset");
            }
        }
        if let Err(err) = self.consumer.store_offsets(&tpl) {
            // Typically the partition was revoked meanwhile; its new owner re-reads the records.
            tracing::info!(error = %err, "could not store offsets");
        }
        self.uncommitted = true;
        self.commit_stored();
    }

    /// Commits the stored offsets if a second has passed since the last commit. Asynchronous:
    /// the outcome arrives in `commit_callback`; a lost commit only means some records are read
    /// again after a crash, and they are deduplicated.
    fn commit_stored(&mut self) {
        if !self.uncommitted || self.last_commit.elapsed() < COMMIT_INTERVAL {
            return;
        }
        self.last_commit = Instant::now();
        self.uncommitted = false;
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Async)
            && !nothing_to_commit(&err)
        {
            tracing::warn!(error = %err, "could not start an offset commit");
        }
    }
}

/// The next offset to read per partition: one past the highest offset in the batch.
fn positions(batch: &[Record]) -> Vec<Position> {
    let mut furthest: BTreeMap<i32, i64> = BTreeMap::new();
    for record in batch {
        let next = record.offset() + 1;
        let entry = furthest.entry(record.partition()).or_insert(next);
        *entry = (*entry).max(next);
    }
    furthest
        .into_iter()
        .map(|(partition, next_offset)| Position {
            partition,
            next_offset,
        })
        .collect()
}

fn rejected_letter(event: &IncomingEvent, err: &cardstream_store::Error) -> DeadLetter {
    DeadLetter {
        reason: "rejected_by_database",
        error: err.to_string(),
        partition: event.partition,
        offset: event.offset,
        key: None,
        payload: event.payload.clone().into_bytes(),
        headers: vec![(
            cardstream_kafka::headers::EVENT_ID.to_owned(),
            event.event.id.clone().into_bytes(),
        )],
    }
}
