//! Authorization requests already answered, by event id. A signed request replayed while its
//! signature is still within the tolerance (by an attacker who captured it, or a retrying
//! proxy) carries the same event id: it gets the answer the first one got, and its amount is
//! not counted against the card's limits again. (Not by authorization id: an incremental
//! authorization asks again for the same authorization, in a new event.)

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cardstream_policy::Decision;

/// Most answers remembered: about 100 bytes each. At 300 authorizations a second for the
/// 10-minute default window this is full; the oldest are forgotten first.
pub(crate) const CAPACITY: usize = 200_000;

#[derive(Debug)]
pub(crate) struct Answered {
    /// A signature dated `t` verifies until `t + tolerance`, and one dated up to `tolerance`
    /// in the future verifies now: a replay can arrive up to twice the tolerance later.
    keep: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Decision>,
    order: VecDeque<(Instant, String)>,
}

impl Inner {
    fn forget_oldest(&mut self) {
        if let Some((_, old)) = self.order.pop_front() {
            self.by_id.remove(&old);
        }
    }
}

/// Whether an answer was decided now or repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    New(Decision),
    Replayed(Decision),
}

impl Answered {
    pub(crate) fn new(tolerance: Duration, capacity: usize) -> Self {
        Answered {
            keep: tolerance * 2,
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// The answers, with those older than the window forgotten.
    fn current(&self) -> std::sync::MutexGuard<'_, Inner> {
        let now = Instant::now();
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while inner
            .order
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.keep)
        {
            inner.forget_oldest();
        }
        inner
    }

    fn insert(&self, inner: &mut Inner, id: &str, decision: Decision) {
        if inner.order.len() >= self.capacity {
            inner.forget_oldest();
        }
        inner.by_id.insert(id.to_owned(), decision);
        inner.order.push_back((Instant::now(), id.to_owned()));
    }

    /// The answer already given to the request event `id`, or the one `decide` gives now (which
    /// is then remembered). `decide` runs under the lock, so two copies of a request racing
    /// each other are still decided once.
    pub(crate) fn answer(&self, id: &str, decide: impl FnOnce() -> Decision) -> Answer {
        let mut inner = self.current();
        if let Some(decision) = inner.by_id.get(id) {
            return Answer::Replayed(*decision);
        }
        let decision = decide();
        self.insert(&mut inner, id, decision);
        Answer::New(decision)
    }

    /// The answer already given to the request event `id`, if any: for a decision taken
    /// outside the lock (the shared ledger's, which awaits Postgres).
    pub(crate) fn given(&self, id: &str) -> Option<Decision> {
        self.current().by_id.get(id).copied()
    }

    /// Remembers `decision` for `id`, unless a copy racing this one was answered first: that
    /// answer stands (the ledger gave both copies the same reservation, keyed by event id).
    pub(crate) fn remember(&self, id: &str, decision: Decision) -> Answer {
        let mut inner = self.current();
        if let Some(first) = inner.by_id.get(id) {
            return Answer::Replayed(*first);
        }
        self.insert(&mut inner, id, decision);
        Answer::New(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardstream_policy::Reason;

    fn approve() -> Decision {
        Decision {
            approved: true,
            reason: Reason::Approved,
            amount: None,
        }
    }

    #[test]
    fn a_replay_gets_the_first_answer_without_deciding_again() {
        let answered = Answered::new(Duration::from_secs(300), 10);
        assert_eq!(answered.answer("iauth_1", approve), Answer::New(approve()));
        let again = answered.answer("iauth_1", || panic!("decided twice"));
        assert_eq!(again, Answer::Replayed(approve()));
    }

    #[test]
    fn the_oldest_answers_are_forgotten_past_capacity() {
        let answered = Answered::new(Duration::from_secs(300), 2);
        for id in ["a", "b", "c"] {
            answered.answer(id, approve);
        }
        assert_eq!(answered.answer("c", approve), Answer::Replayed(approve()));
        assert_eq!(answered.answer("a", approve), Answer::New(approve()));
    }
}
