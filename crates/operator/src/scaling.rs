//! How many aggregator replicas the measured consumer lag calls for.
//!
//! Up at once: lag is customers' data waiting. Down only when every recommendation over the
//! stabilisation window was lower (as the HorizontalPodAutoscaler does), so a lag that
//! oscillates does not make pods come and go. Never fewer than `minReplicas`, never more than
//! `maxReplicas` or the topic's partitions (a replica without a partition only idles).

use std::collections::VecDeque;

use crate::AutoscalingSpec;

/// Remembers recent recommendations for one CardStream.
#[derive(Debug, Default, Clone)]
pub struct Recommender {
    /// (unix seconds, replicas the lag called for), oldest first.
    history: VecDeque<(i64, i32)>,
    /// When this recommender first measured: until a whole window has been seen (an operator
    /// that just started, or just took the lease), it does not scale down.
    since: Option<i64>,
}

impl Recommender {
    /// The replica count to run now, given the lag, the replicas running and the partitions.
    pub fn recommend(
        &mut self,
        spec: &AutoscalingSpec,
        now: i64,
        lag: i64,
        current: i32,
        partitions: i32,
    ) -> i32 {
        let ceiling = spec.max_replicas.min(partitions).max(1);
        let floor = spec.min_replicas.clamp(1, ceiling);
        let per_replica = spec.target_lag_per_replica.max(1);
        // Signed div_ceil is not stable; both are non-negative here.
        let wanted = (lag.max(0) as u64).div_ceil(per_replica as u64);
        let desired = i32::try_from(wanted)
            .unwrap_or(i32::MAX)
            .clamp(floor, ceiling);

        let since = *self.since.get_or_insert(now);
        self.history.push_back((now, desired));
        while self
            .history
            .front()
            .is_some_and(|(at, _)| *at < now - spec.stabilization_window_seconds)
        {
            self.history.pop_front();
        }
        if desired >= current {
            return desired;
        }
        if now - since < spec.stabilization_window_seconds {
            return current.clamp(floor, ceiling);
        }
        // Scaling down: to the highest recommendation still inside the window.
        let highest = self
            .history
            .iter()
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(desired);
        highest.min(current).clamp(floor, ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: i32, max: i32, per_replica: i64, window: i64) -> AutoscalingSpec {
        AutoscalingSpec {
            min_replicas: min,
            max_replicas: max,
            target_lag_per_replica: per_replica,
            stabilization_window_seconds: window,
        }
    }

    /// (lag, running, partitions) → replicas, each row on a fresh recommender.
    #[test]
    fn decision_table() {
        let s = spec(1, 8, 10_000, 300);
        let rows: &[(i64, i32, i32, i32, &str)] = &[
            (0, 1, 8, 1, "no lag: the minimum"),
            (1, 1, 8, 1, "a little lag: one replica works it off"),
            (10_000, 1, 8, 1, "exactly one replica's worth"),
            (10_001, 1, 8, 2, "just over: two"),
            (45_000, 2, 8, 5, "up at once"),
            (1_000_000, 2, 8, 8, "capped at maxReplicas"),
            (1_000_000, 2, 4, 4, "capped at the partitions"),
            (
                -5,
                3,
                8,
                3,
                "a negative lag (offsets reset) is no lag; down waits for the window",
            ),
            (0, 0, 8, 1, "never below the minimum"),
        ];
        for (lag, running, partitions, expected, why) in rows {
            let got = Recommender::default().recommend(&s, 1_000, *lag, *running, *partitions);
            assert_eq!(got, *expected, "{why}: lag {lag}, running {running}");
        }
    }

    #[test]
    fn down_only_after_the_window_and_never_flapping() {
        let s = spec(1, 8, 10_000, 300);
        let mut r = Recommender::default();
        assert_eq!(r.recommend(&s, 0, 60_000, 1, 8), 6);
        // The lag oscillates for four minutes: the replicas stay at 6.
        for (i, lag) in [5_000, 58_000, 2_000, 59_000, 0].iter().enumerate() {
            let now = 60 * (i as i64 + 1);
            assert_eq!(r.recommend(&s, now, *lag, 6, 8), 6, "minute {}", i + 1);
        }
        // More lag than ever: up at once, window or not.
        assert_eq!(r.recommend(&s, 330, 61_000, 6, 8), 7);
        assert_eq!(r.recommend(&s, 340, 0, 7, 8), 7);
        // Quiet from here: down once nothing higher is left in the window.
        assert_eq!(
            r.recommend(&s, 600, 0, 7, 8),
            7,
            "61,000 at 330 s is still inside"
        );
        assert_eq!(
            r.recommend(&s, 631, 0, 7, 8),
            1,
            "the window holds only zeros"
        );
    }

    #[test]
    fn a_minimum_above_the_partitions_gives_the_partitions() {
        let s = spec(6, 8, 10_000, 0);
        assert_eq!(Recommender::default().recommend(&s, 0, 0, 1, 4), 4);
    }
}
