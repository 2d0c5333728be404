//! Sign-in attempt limits, per account and per client address.
//!
//! An attempt is reserved before its password is checked, under the one lock that also checks
//! the limits: however many attempts for one account arrive at once, at most the account's
//! limit get as far as a password check in a window. A wrong password keeps its reservation as
//! the failure; a right one gives it back (see [`LoginLimiter::succeeded`]).
//!
//! Each key holds a fixed window (its start and a count), and there are at most `capacity`
//! keys, so a flood of made-up emails cannot grow the process.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus::{IntGauge, Registry};

/// How long a key counts attempts, by default.
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// What attempts are counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// An account, by a 128-bit hash of its trimmed, lower-cased email, keyed with this
    /// process's own random keys: every key has the same size however long the email, and no
    /// one can choose an email whose key is someone else's.
    Account(u128),
    /// A client address; `None` when the HTTP layer did not know it (they share one key).
    Address(Option<IpAddr>),
}

/// The attempts of one key in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    attempts: u32,
}

impl Window {
    fn expired(&self, now: Instant, length: Duration) -> bool {
        now.saturating_duration_since(self.started) >= length
    }
}

#[derive(Debug, Default)]
struct Keys {
    windows: HashMap<Key, Window>,
    /// Set when the keys were found full of locked keys: none of them expires before this, so
    /// until then a new key is refused without scanning them all again.
    full_until: Option<Instant>,
}

/// Seconds to wait before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryAfter(u64);

impl RetryAfter {
    fn from_wait(wait: Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        RetryAfter(seconds.max(1))
    }

    pub(crate) fn seconds(self) -> u64 {
        self.0
    }
}

/// One attempt, counted against its account and its address. Dropping it leaves it counted,
/// as a failure; [`LoginLimiter::succeeded`] takes it back.
#[derive(Debug)]
#[must_use = "the attempt stays counted as a failure unless it is passed to `succeeded`"]
pub(crate) struct Reservation {
    account: Key,
    address: Key,
    /// The start of the address's window when the attempt was counted in it.
    address_window: Instant,
}

/// Sign-in attempts allowed per account and per client address in a window (a minute by
/// default). Attempts beyond a limit are refused before the password is looked at.
pub(crate) struct LoginLimiter {
    per_account: u32,
    per_address: u32,
    window: Duration,
    capacity: usize,
    hash_keys: (RandomState, RandomState),
    keys: Mutex<Keys>,
    gauge: Option<IntGauge>,
}

impl std::fmt::Debug for LoginLimiter {
    // Not the keys: there can be 100,000 of them, and they are who tried to sign in.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("per_account", &self.per_account)
            .field("per_address", &self.per_address)
            .field("window", &self.window)
            .field("capacity", &self.capacity)
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl LoginLimiter {
    /// `capacity` is the most keys (accounts and addresses) held at once; at least 2, the keys
    /// of one attempt.
    pub(crate) fn new(per_account: u32, per_address: u32, capacity: usize) -> Self {
        LoginLimiter {
            per_account,
            per_address,
            window: DEFAULT_WINDOW,
            capacity: capacity.max(2),
            hash_keys: (RandomState::new(), RandomState::new()),
            keys: Mutex::new(Keys::default()),
            gauge: None,
        }
    }

    /// Counts attempts over `window` instead of a minute.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Registers `cardstream_login_limiter_keys`, the number of keys held, kept current
    /// by each attempt.
    pub(crate) fn with_gauge(mut self, registry: &Registry) -> Result<Self, prometheus::Error> {
        let gauge = IntGauge::new(
            "cardstream_login_limiter_keys",
            "Accounts and client addresses the sign-in limiter holds attempts for.",
        )?;
        registry.register(Box::new(gauge.clone()))?;
        self.gauge = Some(gauge);
        Ok(self)
    }

    /// The number of keys (accounts and addresses) held.
    pub(crate) fn len(&self) -> usize {
        self.lock().windows.len()
    }

    /// Counts an attempt for `email` from `address`, or refuses it when the account or the
    /// address is at its limit (or when no key can be made room for; see `make_room`).
    pub(crate) fn reserve(
        &self,
        email: &str,
        address: Option<IpAddr>,
    ) -> Result<Reservation, RetryAfter> {
        self.reserve_at(email, address, Instant::now())
    }

    /// The attempt was right: the account's failures are forgotten, and the attempt is no
    /// longer counted against its address (the address's failures still are).
    pub(crate) fn succeeded(&self, reservation: Reservation) {
        let mut keys = self.lock();
        keys.windows.remove(&reservation.account);
        if let Some(window) = keys.windows.get_mut(&reservation.address)
            && window.started == reservation.address_window
        {
            window.attempts = window.attempts.saturating_sub(1);
        }
        keys.full_until = None;
        self.update_gauge(&keys);
    }

    // A panic while the lock was held cannot leave a window half-written (each is two plain
    // fields), so a poisoned lock is used as it is: failing open would lift every limit, and
    // failing closed would refuse every sign-in.
    fn lock(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn account_key(&self, email: &str) -> Key {
        let email = email.trim().to_lowercase();
        let high = self.hash_keys.0.hash_one(&email);
        let low = self.hash_keys.1.hash_one(&email);
        Key::Account(u128::from(high) << 64 | u128::from(low))
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Account(_) => self.per_account,
            Key::Address(_) => self.per_address,
        }
    }

    /// Attempts in `window`'s current window, 0 once it has expired.
    fn attempts(&self, window: Option<&Window>, now: Instant) -> u32 {
        window
            .filter(|w| !w.expired(now, self.window))
            .map_or(0, |w| w.attempts)
    }

    fn locked(&self, key: &Key, window: &Window, now: Instant) -> bool {
        self.attempts(Some(window), now) >= self.limit(key)
    }

    fn reserve_at(
        &self,
        email: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Reservation, RetryAfter> {
        let account = self.account_key(email);
        let address = Key::Address(address.map(|a| a.to_canonical()));
        let mut keys = self.lock();

        let mut wait: Option<Duration> = None;
        for key in [account, address] {
            let window = keys.windows.get(&key);
            if self.attempts(window, now) >= self.limit(&key) {
                let ends = window.map_or(now + self.window, |w| w.started + self.window);
                let this = ends.saturating_duration_since(now);
                wait = Some(wait.map_or(this, |w| w.max(this)));
            }
        }
        if let Some(wait) = wait {
            return Err(RetryAfter::from_wait(wait));
        }

        let missing = [account, address]
            .iter()
            .filter(|k| !keys.windows.contains_key(k))
            .count();
        if keys.windows.len() + missing > self.capacity {
            self.make_room(&mut keys, missing, [account, address], now)?;
        }

        let mut address_window = now;
        // The address last, so that `address_window` ends up the address's.
        for key in [account, address] {
            let window = keys.windows.entry(key).or_insert(Window {
                started: now,
                attempts: 0,
            });
            if window.expired(now, self.window) {
                *window = Window {
                    started: now,
                    attempts: 0,
                };
            }
            window.attempts = window.attempts.saturating_add(1);
            address_window = window.started;
        }
        self.update_gauge(&keys);
        Ok(Reservation {
            account,
            address,
            address_window,
        })
    }

    /// Frees `needed` slots: first by forgetting expired keys, then keys below their limit
    /// (down to 7/8 of the capacity, so that the next attempts do not each pay for a scan).
    /// A locked key is never forgotten before its window ends: forgetting it would lift the
    /// lockout, which is exactly what a flood of made-up emails would be sent to achieve.
    ///
    /// When every key is locked, the attempt is refused (fail closed): it cannot be counted,
    /// so it must not reach a password check. Filling the keys with locked ones takes
    /// `capacity` accounts or addresses at their limits within one window, and each address
    /// can only lock so many (its own limit), so this needs a flood from very many addresses,
    /// and it lasts until the oldest of those windows ends.
    fn make_room(
        &self,
        keys: &mut Keys,
        needed: usize,
        keep: [Key; 2],
        now: Instant,
    ) -> Result<(), RetryAfter> {
        if let Some(until) = keys.full_until {
            if now < until {
                return Err(RetryAfter::from_wait(until - now));
            }
            keys.full_until = None;
        }
        let window = self.window;
        // `keep` were counted as present by the caller: they must stay so.
        keys.windows
            .retain(|key, w| keep.contains(key) || !w.expired(now, window));
        if keys.windows.len() + needed <= self.capacity {
            return Ok(());
        }

        let target = (self.capacity - self.capacity / 8).min(self.capacity - needed);
        let mut excess = keys.windows.len().saturating_sub(target);
        keys.windows.retain(|key, w| {
            if excess == 0 || keep.contains(key) || self.locked(key, w, now) {
                true
            } else {
                excess -= 1;
                false
            }
        });
        if keys.windows.len() + needed <= self.capacity {
            return Ok(());
        }

        let until = keys
            .windows
            .values()
            .map(|w| w.started + window)
            .min()
            .unwrap_or(now + window);
        keys.full_until = Some(until);
        tracing::warn!(
            keys = keys.windows.len(),
            "the sign-in limiter is full of locked accounts and addresses; refusing new ones"
        );
        Err(RetryAfter::from_wait(until.saturating_duration_since(now)))
    }

    fn update_gauge(&self, keys: &Keys) {
        if let Some(gauge) = &self.gauge {
            gauge.set(i64::try_from(keys.windows.len()).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn an_account_is_locked_after_its_limit_and_others_are_not() {
        let limiter = LoginLimiter::new(3, 100, 1000);
        for _ in 0..3 {
            // Dropped: a failed password.
            let _failed = limiter.reserve(" A@example.com", ip("10.0.0.1")).unwrap();
        }
        let wait = limiter
            .reserve("a@example.com", ip("10.0.0.1"))
            .unwrap_err();
        assert!((1..=60).contains(&wait.seconds()), "{wait:?}");
        // From another address too: the account is what is locked.
        assert!(limiter.reserve("a@example.com", ip("10.0.0.9")).is_err());
        assert!(limiter.reserve("b@example.com", ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let limiter = LoginLimiter::new(100, 2, 1000);
        let _a = limiter.reserve("a@example.com", ip("10.0.0.2")).unwrap();
        let _b = limiter.reserve("b@example.com", ip("10.0.0.2")).unwrap();
        assert!(limiter.reserve("c@example.com", ip("10.0.0.2")).is_err());
        assert!(limiter.reserve("c@example.com", ip("10.0.0.3")).is_ok());
        // The same address written as IPv4-mapped IPv6 is the same address.
        assert!(
            limiter
                .reserve("c@example.com", ip("::ffff:10.0.0.2"))
                .is_err()
        );
    }

    #[test]
    fn a_success_forgets_the_accounts_failures_but_not_the_addresss() {
        let limiter = LoginLimiter::new(3, 3, 1000);
        let _ = limiter.reserve("a@example.com", ip("10.0.0.4")).unwrap();
        let _ = limiter.reserve("a@example.com", ip("10.0.0.4")).unwrap();
        let right = limiter.reserve("a@example.com", ip("10.0.0.4")).unwrap();
        // Three attempts from the address: it is at its limit until the success is known.
        assert!(limiter.reserve("b@example.com", ip("10.0.0.4")).is_err());
        limiter.succeeded(right);
        // The success is no longer counted against the address, its two failures still are.
        let _ = limiter.reserve("b@example.com", ip("10.0.0.4")).unwrap();
        assert!(limiter.reserve("c@example.com", ip("10.0.0.4")).is_err());
        // The account starts afresh (from elsewhere).
        for _ in 0..3 {
            let _ = limiter.reserve("a@example.com", ip("10.0.0.5")).unwrap();
        }
        assert!(limiter.reserve("a@example.com", ip("10.0.0.6")).is_err());
    }

    #[test]
    fn parallel_attempts_let_exactly_the_limit_through() {
        for (per_account, per_address, same_address) in [(5, 1000, false), (1000, 7, true)] {
            let limiter = LoginLimiter::new(per_account, per_address, 10_000);
            let threads = 100;
            let barrier = Barrier::new(threads);
            let through = AtomicU32::new(0);
            std::thread::scope(|s| {
                for i in 0..threads {
                    let (limiter, barrier, through) = (&limiter, &barrier, &through);
                    s.spawn(move || {
                        let (email, address) = if same_address {
                            (format!("user{i}@example.com"), "10.1.0.1".to_owned())
                        } else {
                            ("victim@example.com".to_owned(), format!("10.2.0.{i}"))
                        };
                        barrier.wait();
                        for _ in 0..10 {
                            if limiter.reserve(&email, address.parse().ok()).is_ok() {
                                through.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            let limit = per_account.min(per_address);
            assert_eq!(through.load(Ordering::Relaxed), limit);
        }
    }

    #[test]
    fn attempts_are_counted_again_after_the_window() {
        let window = Duration::from_secs(10);
        let limiter = LoginLimiter::new(2, 100, 1000).with_window(window);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let _ = limiter.reserve_at("a@example.com", None, at(0)).unwrap();
        let _ = limiter.reserve_at("a@example.com", None, at(3)).unwrap();
        let wait = limiter
            .reserve_at("a@example.com", None, at(4))
            .unwrap_err();
        assert_eq!(
            wait.seconds(),
            6,
            "the window started at 0 s and ends at 10 s"
        );
        assert!(limiter.reserve_at("a@example.com", None, at(9)).is_err());
        let _ = limiter.reserve_at("a@example.com", None, at(10)).unwrap();
        let _ = limiter.reserve_at("a@example.com", None, at(11)).unwrap();
        assert!(limiter.reserve_at("a@example.com", None, at(12)).is_err());
    }

    #[test]
    fn a_million_emails_stay_within_capacity_and_do_not_lift_a_lockout() {
        let capacity = 100_000;
        // A long window: the test must not outlast the victim's lockout.
        let limiter =
            LoginLimiter::new(3, u32::MAX, capacity).with_window(Duration::from_secs(3600));
        for _ in 0..3 {
            let _ = limiter
                .reserve("victim@example.com", ip("10.3.0.1"))
                .unwrap();
        }
        for i in 0..1_000_000u32 {
            let address = IpAddr::from([10, 4, (i % 200) as u8, 1]);
            let _ = limiter
                .reserve(&format!("nobody{i}@example.com"), Some(address))
                .unwrap();
            assert!(limiter.len() <= capacity);
            if i % 10_000 == 0 {
                assert!(limiter.reserve("victim@example.com", None).is_err(), "{i}");
            }
        }
        assert!(limiter.reserve("victim@example.com", None).is_err());
    }

    #[test]
    fn full_of_locked_keys_refuses_new_ones_until_the_oldest_window_ends() {
        let window = Duration::from_secs(10);
        let limiter = LoginLimiter::new(1, 1, 4).with_window(window);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // Two attempts lock four keys: two accounts and two addresses.
        let _ = limiter
            .reserve_at("a@example.com", ip("10.5.0.1"), at(0))
            .unwrap();
        let _ = limiter
            .reserve_at("b@example.com", ip("10.5.0.2"), at(2))
            .unwrap();
        assert_eq!(limiter.len(), 4);
        let wait = limiter
            .reserve_at("c@example.com", ip("10.5.0.3"), at(3))
            .unwrap_err();
        assert_eq!(wait.seconds(), 7, "a's window ends at 10 s");
        assert!(
            limiter
                .reserve_at("a@example.com", ip("10.5.0.4"), at(5))
                .is_err()
        );
        assert!(
            limiter
                .reserve_at("c@example.com", ip("10.5.0.3"), at(5))
                .is_err()
        );
        // a's keys expire at 10 s and make room; b's are still locked.
        let _ = limiter
            .reserve_at("c@example.com", ip("10.5.0.3"), at(10))
            .unwrap();
        assert!(
            limiter
                .reserve_at("b@example.com", ip("10.5.0.5"), at(11))
                .is_err()
        );
        assert_eq!(limiter.len(), 4);
    }

    #[test]
    fn unlocked_keys_make_room_before_locked_ones() {
        let limiter = LoginLimiter::new(2, 100, 8);
        for _ in 0..2 {
            let _ = limiter.reserve("locked@example.com", None).unwrap();
        }
        for i in 0..20 {
            let _ = limiter.reserve(&format!("u{i}@example.com"), None).unwrap();
            assert!(limiter.len() <= 8);
        }
        assert!(limiter.reserve("locked@example.com", None).is_err());
    }

    #[test]
    fn the_gauge_follows_the_keys() {
        let registry = Registry::new();
        let limiter = LoginLimiter::new(3, 3, 100).with_gauge(&registry).unwrap();
        let r = limiter.reserve("a@example.com", ip("10.6.0.1")).unwrap();
        let _ = limiter.reserve("b@example.com", ip("10.6.0.1")).unwrap();
        let gauge = || {
            registry
                .gather()
                .iter()
                .find(|m| m.name() == "cardstream_login_limiter_keys")
                .map(|m| m.get_metric()[0].get_gauge().get_value())
        };
        assert_eq!(gauge(), Some(3.0));
        limiter.succeeded(r);
        assert_eq!(gauge(), Some(2.0));
    }
}
