//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
//! does it.
//!
//! Time is never compared across machines. A standby judges the Lease expired when the record
//! has not changed for `leaseDurationSeconds` *as measured on its own monotonic clock since it
//! saw the last change*; `renewTime` is written for people reading the Lease, and ignored. The
//! leader keeps leading only while a renewal has succeeded within the renew deadline (10 s of a
//! 15 s Lease): past it, it stops, while any standby still has at least the rest of the
//! duration to wait. Every write carries the `resourceVersion` it read, so when two replicas
//! race, the API server accepts one and answers the other 409.
//!
//! Why not a crate: `kube-leader-election` (0.32, built for kube 0.9x) and `kube-lease-manager`
//! both compare `renewTime` with the local wall clock, which is exactly the skew this avoids.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardstream_telemetry::CancellationToken;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::time::Instant;

use crate::Error;

/// How long a Lease holds, how long its leader may go without renewing, how often it tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// A standby takes over once the Lease has not changed for this long.
    pub duration: Duration,
    /// The leader stops leading once no renewal has succeeded for this long.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby tries to acquire.
    pub retry_period: Duration,
}

impl LeaseTiming {
    /// client-go's proportions: 15 s, 10 s, 2 s.
    pub fn for_duration(duration: Duration) -> Self {
        LeaseTiming {
            duration,
            renew_deadline: duration * 2 / 3,
            retry_period: duration * 2 / 15,
        }
    }

    /// The order that makes a split impossible: retry < renew deadline < duration, and the
    /// duration a whole number of seconds (the Lease stores seconds).
    pub fn validate(&self) -> Result<(), String> {
        if self.duration.subsec_nanos() != 0 || self.duration < Duration::from_secs(1) {
            return Err(format!(
                "the lease duration must be whole seconds, at least 1 s (got {:?})",
                self.duration
            ));
        }
        if !(self.retry_period > Duration::ZERO
            && self.retry_period < self.renew_deadline
            && self.renew_deadline < self.duration)
        {
            return Err(format!(
                "lease timing must satisfy 0 < retry period ({:?}) < renew deadline ({:?}) < duration ({:?})",
                self.retry_period, self.renew_deadline, self.duration
            ));
        }
        Ok(())
    }

    /// How long reconciles still running when leadership ends may go on: half of what is left
    /// between the renew deadline and the earliest moment a standby can take over.
    pub fn stop_grace(&self) -> Duration {
        self.duration.saturating_sub(self.renew_deadline) / 2
    }
}

/// Why a leader stopped leading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Another replica holds the Lease: it may be reconciling already.
    Taken,
    /// No renewal succeeded within the renew deadline: no standby can take over before the
    /// Lease's duration has passed.
    Expired,
}

/// The Lease record as last seen, and when this replica first saw it so.
#[derive(Debug)]
struct Observed {
    record: LeaseSpec,
    at: Instant,
}

/// One replica's view of the leader Lease.
#[derive(Clone, Debug)]
pub struct LeaderLease {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
    observed: Arc<Mutex<Option<Observed>>>,
}

impl LeaderLease {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self::with_timing(api, name, identity, LeaseTiming::for_duration(duration))
    }

    pub fn with_timing(api: Api<Lease>, name: &str, identity: &str, timing: LeaseTiming) -> Self {
        LeaderLease {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            observed: Arc::default(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// One attempt to take or keep the Lease. `Ok(true)`: this replica holds it. `Ok(false)`:
    /// another replica does, or won a race for it. `now` is only written into the Lease (for
    /// `kubectl`); expiry is judged by [`Observed`] time, whatever the clocks say.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool, Error> {
        let duration_seconds = i32::try_from(self.timing.duration.as_secs()).unwrap_or(i32::MAX);
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return self.won(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = current.spec.clone().unwrap_or_default();
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let unchanged_for = self.observe(&spec);
        let held_for = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(duration_seconds)).unwrap_or(0),
        );
        let free = spec.holder_identity.as_deref().is_none_or(str::is_empty);
        if !mine && !free && unchanged_for < held_for {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let next = Lease {
            metadata: current.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(duration_seconds),
                acquire_time: if mine {
                    spec.acquire_time
                } else {
                    Some(MicroTime(now))
                },
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(if mine { transitions } else { transitions + 1 }),
                ..spec
            }),
        };
        self.won(
            self.api
                .replace(&self.name, &PostParams::default(), &next)
                .await,
        )
    }

    /// Records `record` as seen now if it differs from the last one seen; returns for how long
    /// it has been seen unchanged.
    fn observe(&self, record: &LeaseSpec) -> Duration {
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match observed.as_ref() {
            Some(seen) if &seen.record == record => seen.at.elapsed(),
            _ => {
                *observed = Some(Observed {
                    record: record.clone(),
                    at: Instant::now(),
                });
                Duration::ZERO
            }
        }
    }

    /// A write that lost a race (409 Conflict, or 409 AlreadyExists on create) is not an
    /// error: another replica is the leader. A write that won is the record now seen.
    fn won(&self, result: Result<Lease, kube::Error>) -> Result<bool, Error> {
        match result {
            Ok(lease) => {
                self.observe(&lease.spec.unwrap_or_default());
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Waits until this replica holds the Lease: `Some(start of the winning attempt)`, or
    /// `None` on shutdown. `standing_by` hears each attempt's outcome (for readiness).
    pub async fn acquire(
        &self,
        shutdown: &CancellationToken,
        mut standing_by: impl FnMut(Result<(), &Error>),
    ) -> Option<Instant> {
        loop {
            let started = Instant::now();
            let attempt = tokio::time::timeout(
                self.timing.renew_deadline,
                self.try_acquire_or_renew(Timestamp::now()),
            );
            tokio::select! {
                () = shutdown.cancelled() => return None,
                result = attempt => match result {
                    Ok(Ok(true)) => return Some(started),
                    Ok(Ok(false)) => standing_by(Ok(())),
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "cannot reach the leader Lease");
                        standing_by(Err(&error));
                    }
                    Err(_) => {
                        let error = Error::LeaseTimeout(self.timing.renew_deadline);
                        tracing::warn!(%error, "cannot reach the leader Lease");
                        standing_by(Err(&error));
                    }
                },
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.timing.retry_period) => {}
            }
        }
    }

    /// Runs `work` while this replica leads, from the attempt that started at `acquired`.
    /// `work` is given a token that is cancelled when leadership ends: it should start nothing
    /// new from then on. When the renew deadline passed, whatever it still runs
    /// [`LeaseTiming::stop_grace`] later is dropped, which is before any standby can take
    /// over; when another replica already holds the Lease, it is dropped at once. The Lease is
    /// renewed until `work` returns (a shutdown draining reconciles stays under the same
    /// deadline), and `work`'s output is returned only if it finished while leading.
    pub async fn hold<F: Future>(
        &self,
        acquired: Instant,
        work: impl FnOnce(CancellationToken) -> F,
    ) -> Result<F::Output, Error> {
        let leading = CancellationToken::new();
        let work = work(leading.clone());
        let lost = async {
            if self.keep(acquired, &leading).await == Ended::Expired {
                tokio::time::sleep(self.timing.stop_grace()).await;
            }
        };
        tokio::select! {
            // Leadership ending wins a tie: work polled after the deadline could start more.
            biased;
            () = lost => {
                tracing::error!(
                    grace = ?self.timing.stop_grace(),
                    "work still running after leadership ended was abandoned"
                );
                Err(Error::LeaseLost)
            }
            output = work => if leading.is_cancelled() {
                Err(Error::LeaseLost)
            } else {
                Ok(output)
            },
        }
    }

    /// Keeps the Lease won by the attempt that started at `acquired`: renews every retry
    /// period, and cancels `leading` (then returns) as soon as another replica holds the Lease
    /// or no renewal has succeeded within the renew deadline. An attempt still waiting for the
    /// API server at the deadline counts as failed. Runs until then, whatever else happens.
    pub async fn keep(&self, acquired: Instant, leading: &CancellationToken) -> Ended {
        let mut renewed = acquired;
        loop {
            let deadline = renewed + self.timing.renew_deadline;
            tokio::select! {
                () = tokio::time::sleep(self.timing.retry_period) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
            let started = Instant::now();
            let attempt =
                tokio::time::timeout_at(deadline, self.try_acquire_or_renew(Timestamp::now()));
            match attempt.await {
                Ok(Ok(true)) => renewed = started,
                Ok(Ok(false)) => {
                    tracing::error!("another replica holds the leader Lease; stopping");
                    leading.cancel();
                    return Ended::Taken;
                }
                Ok(Err(error)) if Instant::now() < deadline => {
                    tracing::warn!(%error, "could not renew the leader Lease; retrying");
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "no renewal of the leader Lease within the renew deadline; stopping");
                    break;
                }
                Err(_) => {
                    tracing::error!(
                        deadline = ?self.timing.renew_deadline,
                        "no renewal of the leader Lease within the renew deadline; stopping"
                    );
                    break;
                }
            }
        }
        leading.cancel();
        Ended::Expired
    }

    /// Gives the Lease up on a clean shutdown, so a standby takes over at once instead of
    /// after the Lease runs out. Best effort (and bounded): if it fails, the Lease expires.
    pub async fn release(&self) {
        // A renewal dropped in flight may still land between the read and the write: then the
        // write gets 409, and reading again finds that renewal.
        let attempt = async {
            for _ in 0..3 {
                let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
                    return;
                };
                let Some(spec) = lease.spec.as_mut() else {
                    return;
                };
                if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                    return;
                }
                spec.holder_identity = None;
                spec.renew_time = None;
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => return,
                    Err(kube::Error::Api(status)) if status.code == 409 => {}
                    Err(error) => {
                        tracing::warn!(%error, "could not release the leader Lease; it will expire instead");
                        return;
                    }
                }
            }
        };
        if tokio::time::timeout(self.timing.retry_period, attempt)
            .await
            .is_err()
        {
            tracing::warn!("releasing the leader Lease timed out; it will expire instead");
        }
    }
}
