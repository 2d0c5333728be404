//! A requests-per-second limit shared by every request of a run.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces requests at least `1/rate` apart, and holds all of them while Stripe asked to wait
/// (`Retry-After`). Spacing rather than a bucket with a burst: Stripe counts requests per
/// second, so any one-second window then holds at most `rate` starts.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// `rate` requests per second; 0 (or less) means no limit.
    pub fn new(rate: f64) -> Self {
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
        RateLimiter {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's turn.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval.unwrap_or_default();
            at
        };
        // A sleep, even to a moment already past, waits for the timer's next tick (1 ms).
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }

    /// No request starts before `until` (Stripe's `Retry-After`).
    pub fn hold_until(&self, until: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next = (*next).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lower bounds only: the limiter must never let requests start sooner than their spacing.
    #[tokio::test]
    async fn spaces_requests_and_honours_a_hold() {
        let limiter = RateLimiter::new(100.0);
        let start = Instant::now();
        for _ in 0..21 {
            limiter.wait().await;
        }
        // 21 starts at 10 ms spacing: the last no sooner than 200 ms after the first.
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
        let held = Instant::now();
        limiter.hold_until(held + Duration::from_millis(300));
        limiter.wait().await;
        assert!(
            held.elapsed() >= Duration::from_millis(300),
            "{:?}",
            held.elapsed()
        );

        // No limit: a thousand starts do not wait out any spacing (10 s at 100/s).
        let unlimited = RateLimiter::new(0.0);
        let start = Instant::now();
        for _ in 0..1000 {
            unlimited.wait().await;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}
