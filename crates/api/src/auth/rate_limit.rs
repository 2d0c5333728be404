use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed-login limits: per account and per client address, over a sliding minute. Attempts
/// beyond a limit are refused before the password is even checked.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    per_account: u32,
    per_address: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub(crate) fn new(per_account: u32, per_address: u32) -> Self {
        LoginLimiter {
            per_account,
            per_address,
            window: Duration::from_secs(60),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, address: Option<IpAddr>) -> [(String, bool); 2] {
        [
            (format!("account:{}", email.trim().to_lowercase()), true),
            (
                format!(
                    "address:{}",
                    address.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
                ),
                false,
            ),
        ]
    }

    /// `Err(seconds to wait)` when this account or address failed too often recently.
    pub(crate) fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), u64> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let mut wait = 0;
        for (key, is_account) in Self::keys(email, address) {
            let limit = if is_account {
                self.per_account
            } else {
                self.per_address
            };
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= limit as usize
                    && let Some(oldest) = times.first()
                {
                    wait = wait.max((self.window - now.duration_since(*oldest)).as_secs() + 1);
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    pub(crate) fn record_failure(&self, email: &str, address: Option<IpAddr>) {
        if let Ok(mut failures) = self.failures.lock() {
            // Bound the memory an attacker can make us use with random emails.
            if failures.len() > 100_000 {
                failures.clear();
            }
            for (key, _) in Self::keys(email, address) {
                failures.entry(key).or_default().push(Instant::now());
            }
        }
    }

    /// A success clears the account's failures (not the address's).
    pub(crate) fn record_success(&self, email: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&format!("account:{}", email.trim().to_lowercase()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_its_limit_and_others_are_not() {
        let limiter = LoginLimiter::new(3, 100);
        let ip: Option<IpAddr> = "10.0.0.1".parse().ok();
        for _ in 0..3 {
            assert!(limiter.check("a@example.com", ip).is_ok());
            limiter.record_failure("A@example.com", ip);
        }
        let wait = limiter.check("a@example.com", ip).unwrap_err();
        assert!((1..=61).contains(&wait), "{wait}");
        assert!(limiter.check("b@example.com", ip).is_ok());
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let limiter = LoginLimiter::new(100, 2);
        let ip: Option<IpAddr> = "10.0.0.2".parse().ok();
        limiter.record_failure("a@example.com", ip);
        limiter.record_failure("b@example.com", ip);
        assert!(limiter.check("c@example.com", ip).is_err());
        assert!(
            limiter
                .check("c@example.com", "10.0.0.3".parse().ok())
                .is_ok()
        );
    }
}
