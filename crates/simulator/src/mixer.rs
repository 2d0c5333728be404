//! At-least-once, any-order delivery, as Stripe does it: events wait in a window and leave in
//! a random order, and some are sent twice.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::script::SimEvent;

#[derive(Debug)]
pub(crate) struct Mixer {
    rng: ChaCha8Rng,
    window: usize,
    duplicate_rate: f64,
    /// Events waiting, each marked when it is already a duplicate (so it is not copied again).
    buffer: VecDeque<(SimEvent, bool)>,
}

impl Mixer {
    pub(crate) fn new(seed: u64, window: usize, duplicate_rate: f64) -> Self {
        Mixer {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x006d_6978_6572),
            window,
            duplicate_rate: duplicate_rate.clamp(0.0, 1.0),
            buffer: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, event: SimEvent) {
        self.buffer.push_back((event, false));
    }

    /// Whether an event should leave now: the window is full.
    pub(crate) fn ready(&self) -> bool {
        self.buffer.len() > self.window
    }

    /// The next event to send (`true` when it is a duplicate). Without a window, events
    /// leave in order.
    pub(crate) fn pop(&mut self) -> Option<(SimEvent, bool)> {
        let (event, duplicate) = if self.window == 0 {
            self.buffer.pop_front()?
        } else {
            let at = self.rng.random_range(0..self.buffer.len().max(1));
            self.buffer.swap_remove_back(at)?
        };
        if !duplicate && self.duplicate_rate > 0.0 && self.rng.random_bool(self.duplicate_rate) {
            self.buffer.push_back((event.clone(), true));
        }
        Some((event, duplicate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Endpoint;

    fn event(n: usize) -> SimEvent {
        SimEvent {
            id: format!("evt_{n}"),
            kind: "x",
            endpoint: Endpoint::Events,
            body: bytes::Bytes::new(),
        }
    }

    fn drain(mixer: &mut Mixer, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..n {
            mixer.push(event(i));
            while mixer.ready() {
                out.push(mixer.pop().unwrap().0.id);
            }
        }
        while let Some((e, _)) = mixer.pop() {
            out.push(e.id);
        }
        out
    }

    #[test]
    fn without_window_or_duplicates_order_is_kept() {
        let out = drain(&mut Mixer::new(1, 0, 0.0), 50);
        assert_eq!(out, (0..50).map(|i| format!("evt_{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn a_window_reorders_within_its_size_and_loses_nothing() {
        const WINDOW: usize = 8;
        let out = drain(&mut Mixer::new(1, WINDOW, 0.0), 500);
        let sent: Vec<usize> = out.iter().map(|id| id[4..].parse().unwrap()).collect();
        let mut sorted = sent.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..500).collect::<Vec<_>>(),
            "lost or doubled events"
        );

        // What the window bounds: when event i arrives, at most WINDOW events are waiting, so
        // all but WINDOW of the i events before it have left. An event therefore leaves ahead
        // of at most WINDOW earlier ones, i.e. at position i - WINDOW or later. (How late it
        // leaves is not bounded: each pick is uniform over the window, so an event may wait
        // through any number of picks, as a Stripe retry may come hours later.)
        let mut overtaken = Vec::with_capacity(sent.len());
        for (position, &i) in sent.iter().enumerate() {
            let earlier_still_waiting = sent[position + 1..].iter().filter(|&&j| j < i).count();
            assert!(
                earlier_still_waiting <= WINDOW,
                "evt_{i} left at position {position}, ahead of {earlier_still_waiting} earlier \
                 events: a window of {WINDOW} allows {WINDOW}"
            );
            overtaken.push(earlier_still_waiting);
        }
        // And the window is used, not just respected: events do overtake others, up to the
        // whole window (a newest event is picked out of a full window one time in WINDOW + 1).
        assert_ne!(sent, sorted, "a window of {WINDOW} reordered nothing");
        assert_eq!(overtaken.iter().max(), Some(&WINDOW), "{overtaken:?}");
    }

    #[test]
    fn duplicates_are_sent_once_more_at_most() {
        let out = drain(&mut Mixer::new(7, 4, 0.3), 1000);
        let mut counts = std::collections::HashMap::new();
        for id in &out {
            *counts.entry(id.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 1000);
        assert!(counts.values().all(|c| *c <= 2));
        let dups = out.len() - 1000;
        assert!(
            (200..400).contains(&dups),
            "{dups} duplicates for a 30% rate"
        );
    }
}
