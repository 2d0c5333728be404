//! Password hashing. argon2 is deliberately slow and memory-hard (19 MiB, tens of
//! milliseconds a hash), so the API runs it through [`Passwords`]: on tokio's blocking threads,
//! never on the async workers that answer every other request, and a few at a time.

use std::num::NonZeroUsize;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::sync::Semaphore;

/// argon2id with the parameters OWASP recommends (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches `hash` (constant-time in the comparison). A malformed hash
/// never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the time a real verification takes, for an email with no account, so that the
/// answer's timing does not reveal which emails exist. Always `false`.
fn decoy_verify(password: &str) -> bool {
    static DECOY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password("\u{0}decoy\u{0}").unwrap_or_default());
    let _ = verify_password(password, &DECOY);
    false
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    #[error("cannot hash the password: {0}")]
    Argon2(argon2::password_hash::Error),
    #[error("the password hashing task failed: {0}")]
    Task(String),
}

/// Runs argon2 on tokio's blocking threads, at most `concurrency` at once (each takes 19 MiB
/// and a core for tens of milliseconds). Callers beyond that wait for a permit. Registers
/// `cardstream_password_checks_total` (verifications run, decoys included) and
/// `cardstream_password_checks_in_flight` (hashes and verifications running now).
#[derive(Clone, Debug)]
pub(crate) struct Passwords {
    permits: Arc<Semaphore>,
    checks: IntCounter,
    in_flight: IntGauge,
}

impl Passwords {
    pub(crate) fn new(
        concurrency: NonZeroUsize,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let checks = IntCounter::new(
            "cardstream_password_checks_total",
            "Password verifications run (decoys for unknown emails included).",
        )?;
        let in_flight = IntGauge::new(
            "cardstream_password_checks_in_flight",
            "Password hashes and verifications running now.",
        )?;
        registry.register(Box::new(checks.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency.get())),
            checks,
            in_flight,
        })
    }

    /// Whether `password` matches `hash`. `false` as well when the check could not run.
    pub(crate) async fn verify(&self, password: String, hash: String) -> bool {
        let checks = self.checks.clone();
        self.run(move || {
            checks.inc();
            verify_password(&password, &hash)
        })
        .await
        .unwrap_or(false)
    }

    /// A fresh PHC string for `password`.
    pub(crate) async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(HashError::Argon2)
    }

    /// The work of a verification, for an email with no account. Always `false`.
    pub(crate) async fn decoy(&self, password: String) -> bool {
        let checks = self.checks.clone();
        self.run(move || {
            checks.inc();
            decoy_verify(&password)
        })
        .await
        .unwrap_or(false)
    }

    /// Runs `work` on a blocking thread once a permit is free. The permit moves into the
    /// blocking task: if the caller gives up (the client went away), the work still runs to
    /// its end, and it keeps its permit until then, so no more than `concurrency` ever run.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| HashError::Task(e.to_string()))?;
        let in_flight = self.in_flight.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            in_flight.inc();
            let out = work();
            in_flight.dec();
            out
        })
        .await
        .map_err(|e| HashError::Task(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horse!", &a));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    fn metric(registry: &Registry, name: &str) -> f64 {
        registry
            .gather()
            .iter()
            .filter(|m| m.name() == name)
            .flat_map(|m| m.get_metric())
            .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
            .sum()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passwords_run_off_the_workers_and_are_counted() {
        let registry = Registry::new();
        let one = NonZeroUsize::new(1).unwrap();
        let passwords = Passwords::new(one, &registry).unwrap();
        let hash = passwords.hash("correct horse".to_owned()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse".to_owned(), hash.clone())
                .await
        );
        assert!(!passwords.verify("wrong".to_owned(), hash.clone()).await);
        assert!(!passwords.decoy("correct horse".to_owned()).await);
        assert!(
            !passwords
                .verify("x".to_owned(), "not a hash".to_owned())
                .await
        );
        // Hashing is not a check; the four verifications (the decoy's included) are.
        assert_eq!(metric(&registry, "cardstream_password_checks_total"), 4.0);
        assert_eq!(
            metric(&registry, "cardstream_password_checks_in_flight"),
            0.0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_limit_run_at_once() {
        let registry = Registry::new();
        let passwords = Passwords::new(NonZeroUsize::new(2).unwrap(), &registry).unwrap();
        let hash = hash_password("correct horse").unwrap();
        let most = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let watching = {
            let registry = registry.clone();
            let most = Arc::clone(&most);
            tokio::spawn(async move {
                loop {
                    let now = metric(&registry, "cardstream_password_checks_in_flight");
                    most.fetch_max(now as i64, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let (passwords, hash) = (passwords.clone(), hash.clone());
                tokio::spawn(async move { passwords.verify("wrong".to_owned(), hash).await })
            })
            .collect();
        for check in checks {
            assert!(!check.await.unwrap());
        }
        watching.abort();
        let most = most.load(std::sync::atomic::Ordering::Relaxed);
        assert!((1..=2).contains(&most), "{most} ran at once");
        assert_eq!(metric(&registry, "cardstream_password_checks_total"), 8.0);
    }
}
