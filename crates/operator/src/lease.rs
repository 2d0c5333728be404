//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
//! does it: the holder renews `renewTime`; another replica takes the Lease only once
//! `renewTime + leaseDurationSeconds` has passed. Every write carries the `resourceVersion`
//! it read, so when two replicas race, the API server accepts one and answers the other 409.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

use crate::Error;

/// One replica's view of the leader Lease.
#[derive(Clone, Debug)]
pub struct LeaderLease {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl LeaderLease {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        LeaderLease {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// One attempt to take or keep the Lease. `Ok(true)`: this replica holds it until
    /// `now + duration`. `Ok(false)`: another replica does, or won a race for it.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool, Error> {
        let duration_seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
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
            return won(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = current.spec.clone().unwrap_or_default();
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let held_for = SignedDuration::from_secs(i64::from(
            spec.lease_duration_seconds.unwrap_or(duration_seconds),
        ));
        let expired = match (&spec.holder_identity, &spec.renew_time) {
            (None, _) | (_, None) => true,
            (Some(_), Some(MicroTime(renewed))) => renewed
                .checked_add(held_for)
                .map_or(true, |until| until <= now),
        };
        if !mine && !expired {
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
        won(self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await)
    }

    /// Gives the Lease up on a clean shutdown, so a standby takes over at once instead of
    /// after the Lease runs out. Best effort: if it fails, the Lease simply expires.
    pub async fn release(&self) {
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
        if let Err(error) = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, "could not release the leader Lease; it will expire instead");
        }
    }
}

/// A write that lost a race (409 Conflict, or 409 AlreadyExists on create) is not an error:
/// another replica is the leader.
fn won(result: Result<Lease, kube::Error>) -> Result<bool, Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error.into()),
    }
}
