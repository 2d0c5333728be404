//! What the operator writes to a CardStream's status, from what it observed. Pure, so that
//! every combination is a unit test.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::{CardStreamStatus, Component};

/// Where the migration Job for the CardStream's image stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    Succeeded,
    Running,
    /// The Job gave up (its backoff limit was reached); the message says why.
    Failed(String),
}

/// One component's Deployment, as the API server last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollout {
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
}

impl Rollout {
    fn done(&self) -> bool {
        self.ready >= self.desired && self.updated >= self.desired
    }
}

/// Everything one reconcile saw.
#[derive(Debug, Clone)]
pub struct Observed {
    pub generation: Option<i64>,
    pub migration: Migration,
    /// Gateway, aggregator and API, in `Component::ALL` order; `None` before they exist.
    pub rollouts: [Option<Rollout>; 3],
    /// The consumer lag, or why Kafka could not be reached.
    pub kafka: Result<i64, String>,
    pub aggregator_replicas: Option<i32>,
}

/// The new status. Conditions keep their `lastTransitionTime` while their status is unchanged.
pub fn status(
    previous: Option<&CardStreamStatus>,
    seen: &Observed,
    now: Timestamp,
) -> CardStreamStatus {
    let condition = |type_: &str, holds: bool, reason: &str, message: String| {
        condition(
            previous,
            seen.generation,
            now,
            type_,
            holds,
            reason,
            message,
        )
    };

    let waiting: Vec<&str> = Component::ALL
        .iter()
        .zip(&seen.rollouts)
        .filter(|(_, r)| !r.is_some_and(|r| r.done()))
        .map(|(c, _)| c.name())
        .collect();

    let (ready, ready_reason, ready_message) = match (&seen.migration, waiting.is_empty()) {
        (Migration::Succeeded, true) => (
            true,
            "AllReplicasReady",
            "every component is ready".to_owned(),
        ),
        (Migration::Succeeded, false) => (
            false,
            "ReplicasNotReady",
            format!("waiting for {}", waiting.join(", ")),
        ),
        (Migration::Running, _) => (
            false,
            "Migrating",
            "the migration Job is running".to_owned(),
        ),
        (Migration::Failed(why), _) => (false, "MigrationFailed", why.clone()),
    };
    let (progressing, progress_reason, progress_message) = match &seen.migration {
        Migration::Running => (
            true,
            "Migrating",
            "migrating the database before the new version starts".to_owned(),
        ),
        Migration::Failed(why) => (false, "MigrationFailed", why.clone()),
        Migration::Succeeded if !waiting.is_empty() => (
            true,
            "RollingOut",
            format!("rolling out {}", waiting.join(", ")),
        ),
        Migration::Succeeded => (
            false,
            "Complete",
            "every component runs the current spec".to_owned(),
        ),
    };
    let (degraded, degraded_reason, degraded_message) = match (&seen.migration, &seen.kafka) {
        (Migration::Failed(why), _) => (true, "MigrationFailed", why.clone()),
        (_, Err(why)) => (true, "KafkaError", why.clone()),
        _ => (false, "AsExpected", String::new()),
    };

    let ready_of = |i: usize| seen.rollouts[i].map_or(0, |r| r.ready);
    CardStreamStatus {
        observed_generation: seen.generation,
        conditions: vec![
            condition("Ready", ready, ready_reason, ready_message),
            condition(
                "Progressing",
                progressing,
                progress_reason,
                progress_message,
            ),
            condition("Degraded", degraded, degraded_reason, degraded_message),
        ],
        gateway_ready_replicas: ready_of(0),
        aggregator_ready_replicas: ready_of(1),
        api_ready_replicas: ready_of(2),
        consumer_lag: seen
            .kafka
            .as_ref()
            .ok()
            .copied()
            .or(previous.and_then(|p| p.consumer_lag)),
        aggregator_replicas: seen.aggregator_replicas,
    }
}

/// The status of a CardStream the operator refuses to run (`InvalidSpec`: an invalid spec, an
/// image outside the allow-list; `SecretUnavailable`: a Secret it cannot read): not ready,
/// degraded, with the reason and the error; the replica counts and lag stay as last seen.
pub fn refused(
    previous: Option<&CardStreamStatus>,
    generation: Option<i64>,
    reason: &str,
    error: &crate::Error,
    now: Timestamp,
) -> CardStreamStatus {
    let condition = |type_: &str, holds: bool| {
        condition(
            previous,
            generation,
            now,
            type_,
            holds,
            reason,
            error.to_string(),
        )
    };
    CardStreamStatus {
        observed_generation: generation,
        conditions: vec![condition("Ready", false), condition("Degraded", true)],
        ..previous.cloned().unwrap_or_default()
    }
}

/// One condition, keeping its `lastTransitionTime` from `previous` while its status is the
/// same.
fn condition(
    previous: Option<&CardStreamStatus>,
    generation: Option<i64>,
    now: Timestamp,
    type_: &str,
    holds: bool,
    reason: &str,
    message: String,
) -> Condition {
    let status = if holds { "True" } else { "False" };
    let since = previous
        .into_iter()
        .flat_map(|s| &s.conditions)
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_ready() -> [Option<Rollout>; 3] {
        [Some(Rollout {
            desired: 2,
            ready: 2,
            updated: 2,
        }); 3]
    }

    fn seen(
        migration: Migration,
        rollouts: [Option<Rollout>; 3],
        kafka: Result<i64, String>,
    ) -> Observed {
        Observed {
            generation: Some(3),
            migration,
            rollouts,
            kafka,
            aggregator_replicas: Some(2),
        }
    }

    fn get<'a>(s: &'a CardStreamStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn everything_ready() {
        let s = status(
            None,
            &seen(Migration::Succeeded, all_ready(), Ok(12)),
            at(100),
        );
        assert_eq!(get(&s, "Ready").status, "True");
        assert_eq!(get(&s, "Progressing").reason, "Complete");
        assert_eq!(get(&s, "Degraded").status, "False");
        assert_eq!(
            (
                s.gateway_ready_replicas,
                s.consumer_lag,
                s.observed_generation
            ),
            (2, Some(12), Some(3))
        );
    }

    #[test]
    fn migrating_holds_ready_false_and_progressing_true() {
        let s = status(None, &seen(Migration::Running, [None; 3], Ok(0)), at(100));
        assert_eq!(
            (
                get(&s, "Ready").status.as_str(),
                get(&s, "Ready").reason.as_str()
            ),
            ("False", "Migrating")
        );
        assert_eq!(get(&s, "Progressing").status, "True");
    }

    #[test]
    fn a_failed_migration_degrades_with_its_message() {
        let failed = Migration::Failed("BackoffLimitExceeded".into());
        let s = status(None, &seen(failed, all_ready(), Ok(0)), at(100));
        let d = get(&s, "Degraded");
        assert_eq!(
            (d.status.as_str(), d.reason.as_str(), d.message.as_str()),
            ("True", "MigrationFailed", "BackoffLimitExceeded")
        );
    }

    #[test]
    fn a_rollout_names_the_components_it_waits_for() {
        let mut r = all_ready();
        r[1] = Some(Rollout {
            desired: 3,
            ready: 2,
            updated: 3,
        });
        let s = status(None, &seen(Migration::Succeeded, r, Ok(0)), at(100));
        assert_eq!(get(&s, "Ready").message, "waiting for aggregator");
        assert_eq!(get(&s, "Progressing").reason, "RollingOut");
    }

    #[test]
    fn kafka_down_degrades_but_keeps_the_last_lag() {
        let before = status(
            None,
            &seen(Migration::Succeeded, all_ready(), Ok(40)),
            at(100),
        );
        let s = status(
            Some(&before),
            &seen(Migration::Succeeded, all_ready(), Err("broker down".into())),
            at(200),
        );
        assert_eq!(get(&s, "Degraded").reason, "KafkaError");
        assert_eq!(
            get(&s, "Ready").status,
            "True",
            "pods still serve while the operator cannot measure"
        );
        assert_eq!(s.consumer_lag, Some(40));
    }

    #[test]
    fn transition_time_moves_only_when_the_status_does() {
        let first = status(None, &seen(Migration::Running, [None; 3], Ok(0)), at(100));
        let still = status(
            Some(&first),
            &seen(Migration::Running, [None; 3], Ok(0)),
            at(200),
        );
        assert_eq!(get(&still, "Ready").last_transition_time, Time(at(100)));
        let done = status(
            Some(&still),
            &seen(Migration::Succeeded, all_ready(), Ok(0)),
            at(300),
        );
        assert_eq!(get(&done, "Ready").last_transition_time, Time(at(300)));
    }
}
