//! Which of two versions of a Stripe object is newer.

use std::cmp::Ordering;

/// The version of an object carried by one event: the event's `created`, then a rank by event
/// type for events of the same second, then the event id as the final tie-break.
///
/// The rank puts an authorization request (the decision is not yet known) before
/// `.created`, and `.created` before any `.updated`: Stripe timestamps have one-second
/// resolution, and a request, its outcome and its capture often share a second.
///
/// A backfill's `.snapshot` (an object read from Stripe's API, `created` = the second the read
/// was sent) ranks below every webhook event: it includes every change made before its second,
/// so it beats the events of earlier seconds, but a change in its own second may or may not be
/// in it, so the event of that second wins. A snapshot never overwrites a newer event, and an
/// event never loses to an older snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub created: i64,
    pub rank: i16,
    pub event_id: String,
}

impl Version {
    pub fn new(created: i64, event_type: &str, event_id: impl Into<String>) -> Self {
        Version {
            created,
            rank: rank(event_type),
            event_id: event_id.into(),
        }
    }
}

fn rank(event_type: &str) -> i16 {
    match event_type.rsplit('.').next() {
        Some("snapshot") => -1,
        Some("request") => 0,
        Some("created") => 1,
        _ => 2,
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.created, self.rank, &self.event_id).cmp(&(other.created, other.rank, &other.event_id))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_then_rank_then_event_id() {
        let v = |c, t, id: &str| Version::new(c, t, id);
        assert!(
            v(2, "issuing_authorization.request", "evt_a")
                > v(1, "issuing_authorization.updated", "evt_z")
        );
        assert!(
            v(1, "issuing_authorization.created", "evt_a")
                > v(1, "issuing_authorization.request", "evt_z")
        );
        assert!(
            v(1, "issuing_authorization.updated", "evt_a")
                > v(1, "issuing_authorization.created", "evt_z")
        );
        assert!(v(1, "issuing_card.updated", "evt_b") > v(1, "issuing_card.updated", "evt_a"));
        // A snapshot loses to any event of its own second and beats those of earlier ones.
        assert!(
            v(5, "issuing_authorization.request", "evt_a")
                > v(5, "issuing_authorization.snapshot", "evt_z")
        );
        assert!(
            v(5, "issuing_authorization.snapshot", "evt_a")
                > v(4, "issuing_authorization.updated", "evt_z")
        );
        assert_eq!(
            v(1, "x.updated", "evt_a").cmp(&v(1, "x.updated", "evt_a")),
            Ordering::Equal
        );
    }
}
