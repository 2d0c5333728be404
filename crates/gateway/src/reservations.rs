//! The shared ledger's reservations, sent in batches: a request joins a queue, and a few
//! workers, each on one Postgres connection, take whatever is waiting and reserve it in one
//! statement. Idle, a request goes alone at once; busy, the requests that arrive while a
//! statement runs share the next one, so the database's cost per request falls as the rate
//! rises instead of capping it (one statement per request held two cores to about 800 a
//! second).
//!
//! The requester waits for its answer up to its deadline and no longer; a worker never starts
//! a statement for a request whose deadline has passed, and never abandons one in flight
//! (that would leave its connection mid-protocol).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cardstream_store::{LedgerBatch, LedgerConnection, SpendGrant, SpendRequest, Store};
use prometheus::Histogram;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

use crate::spend::{day_of, month_start};

/// Most requests one statement reserves: enough to absorb a burst, few enough that the
/// statement stays a few milliseconds.
const MAX_BATCH: usize = 256;

/// Requests waiting at most; past it, a request is answered as timed out at once (the
/// workers are behind by more than any deadline could cover).
const QUEUE: usize = 8192;

/// Why no reservation was made.
#[derive(Debug, Clone)]
pub(crate) enum Unreserved {
    /// Not within the deadline: no connection free, the queue full, or the card's lock busy
    /// (Postgres gives up on it at the same bound, as `lock_timeout`).
    TimedOut,
    Failed(String),
}

impl From<cardstream_store::Error> for Unreserved {
    fn from(err: cardstream_store::Error) -> Self {
        if err.timeout() == Some("lock_timeout") {
            Unreserved::TimedOut
        } else {
            Unreserved::Failed(err.to_string())
        }
    }
}

/// A request waiting to be reserved.
struct Pending {
    request: SpendRequest,
    deadline: Instant,
    reply: oneshot::Sender<Result<SpendGrant, Unreserved>>,
}

impl Pending {
    fn answer(self, result: Result<SpendGrant, Unreserved>) {
        // The requester may have stopped waiting: nothing to tell it then.
        let _ = self.reply.send(result);
    }

    fn waited_for(&self, now: Instant) -> bool {
        !self.reply.is_closed() && self.deadline > now
    }
}

/// The queue the workers reserve from. Dropping every clone stops them.
#[derive(Debug, Clone)]
pub(crate) struct Reservations {
    queue: mpsc::Sender<Pending>,
}

impl Reservations {
    /// Starts `workers` workers on `store`; reservations not folded within `ttl` stop counting.
    /// `batches` observes how many requests each statement reserved.
    pub(crate) fn start(store: Store, workers: usize, ttl: Duration, batches: Histogram) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..workers.max(1) {
            let worker = Worker {
                store: store.clone(),
                conn: None,
                ttl,
                batches: batches.clone(),
            };
            tokio::spawn(worker.run(waiting.clone()));
        }
        Reservations { queue }
    }

    /// `request`'s grant, or why there is none by `deadline`.
    pub(crate) async fn reserve(
        &self,
        request: SpendRequest,
        deadline: Instant,
    ) -> Result<SpendGrant, Unreserved> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            request,
            deadline,
            reply,
        };
        self.queue.try_send(pending).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => Unreserved::TimedOut,
            mpsc::error::TrySendError::Closed(_) => {
                Unreserved::Failed("the ledger's workers have stopped".into())
            }
        })?;
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => Err(Unreserved::TimedOut),
            Ok(Err(_)) => Err(Unreserved::Failed(
                "a ledger worker dropped the request".into(),
            )),
            Ok(Ok(result)) => result,
        }
    }
}

/// One worker and what it reserves with.
struct Worker {
    store: Store,
    /// Kept from batch to batch: taking one from the pool each time cost a health-check round
    /// trip per statement.
    conn: Option<LedgerConnection>,
    ttl: Duration,
    batches: Histogram,
}

impl Worker {
    /// Takes what is waiting (at least one request), reserves it, and again, until every
    /// sender is gone.
    async fn run(mut self, waiting: Arc<Mutex<mpsc::Receiver<Pending>>>) {
        loop {
            let batch = {
                let mut waiting = waiting.lock().await;
                let Some(first) = waiting.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                batch
            };
            self.reserve(batch).await;
        }
    }

    /// Reserves `batch`: first without waiting for any card another transaction holds, then
    /// the requests for those cards, waiting for their locks as long as their deadlines allow.
    async fn reserve(&mut self, mut batch: Vec<Pending>) {
        batch.retain(|p| p.waited_for(Instant::now()));
        let Some(latest) = batch.iter().map(|p| p.deadline).max() else {
            return;
        };
        if self.conn.is_none() {
            match tokio::time::timeout_at(latest, self.store.ledger_connection()).await {
                Ok(Ok(conn)) => self.conn = Some(conn),
                Ok(Err(err)) => return answer_all(batch, &Unreserved::from(err)),
                Err(_) => return answer_all(batch, &Unreserved::TimedOut),
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let mut busy = Vec::new();
        for skip_busy in [true, false] {
            let now = Instant::now();
            batch.retain(|p| p.waited_for(now));
            let Some(earliest) = batch.iter().map(|p| p.deadline).min() else {
                return;
            };
            let day = day_of(SystemTime::now());
            let settings = LedgerBatch {
                day,
                month_start: month_start(day),
                ttl: self.ttl,
                wait: earliest.saturating_duration_since(now),
                skip_busy,
            };
            let requests: Vec<SpendRequest> = batch.iter().map(|p| p.request.clone()).collect();
            self.batches.observe(requests.len() as f64);
            match Store::reserve_spend(conn, &requests, &settings).await {
                Err(err) => {
                    // A lock not had in time leaves the connection as good as it was; after
                    // anything else (Postgres restarted, say) the next batch takes a new one.
                    if err.timeout() != Some("lock_timeout") {
                        self.conn = None;
                    }
                    return answer_all(batch, &Unreserved::from(err));
                }
                Ok(grants) => {
                    for (pending, grant) in batch.drain(..).zip(grants) {
                        match grant {
                            Some(grant) => pending.answer(Ok(grant)),
                            None => busy.push(pending),
                        }
                    }
                }
            }
            std::mem::swap(&mut batch, &mut busy);
        }
    }
}

fn answer_all(batch: Vec<Pending>, reason: &Unreserved) {
    for pending in batch {
        pending.answer(Err(reason.clone()));
    }
}
