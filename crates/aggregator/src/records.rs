//! Turning a Kafka record into an event to fold, or into a dead letter saying why not.

use cardstream_kafka::{RecordKeys, headers};
use cardstream_store::{IncomingEvent, NewDeadLetter};
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// A record taken off the topic, owned.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Event {
        event: Box<IncomingEvent>,
        /// When the gateway received it (unix ms), for the freshness metric.
        received_at_ms: Option<i64>,
    },
    Dead(DeadLetter),
}

impl Record {
    pub(crate) fn partition(&self) -> i32 {
        match self {
            Record::Event { event, .. } => event.partition,
            Record::Dead(dead) => dead.partition,
        }
    }

    /// The record's payload size in bytes.
    pub(crate) fn payload_len(&self) -> usize {
        match self {
            Record::Event { event, .. } => event.payload.len(),
            Record::Dead(dead) => dead.payload.len(),
        }
    }

    pub(crate) fn offset(&self) -> i64 {
        match self {
            Record::Event { event, .. } => event.offset,
            Record::Dead(dead) => dead.offset,
        }
    }
}

/// Every dead letter's reason (a missing MAC and the store's [`cardstream_store::Unreadable`]
/// reasons here, the database's refusal in the consumer), so that the metric exports each from
/// the start.
pub(crate) const DEAD_LETTER_REASONS: [&str; 7] = [
    "unauthenticated",
    "not_utf8",
    "not_json",
    "not_an_event",
    "unsupported_content",
    "invalid_object",
    "rejected_by_database",
];

/// A record that cannot be folded, with what is needed to find and fix it later.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    /// Stable, for the metric label and the `cardstream-dlq-reason` header.
    pub(crate) reason: &'static str,
    pub(crate) error: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl DeadLetter {
    /// The row `cardstream dlq` and the console read, for a record read from `topic`. The
    /// event's id and type come from the gateway's headers (the payload may not parse).
    pub(crate) fn recorded(&self, topic: &str) -> NewDeadLetter {
        let header = |name: &str| {
            self.headers
                .iter()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| String::from_utf8(value.clone()).ok())
                .filter(|value| !value.is_empty())
        };
        NewDeadLetter {
            source_topic: topic.to_owned(),
            source_partition: self.partition,
            source_offset: self.offset,
            reason: self.reason.to_owned(),
            error: self.error.clone(),
            event_id: header(headers::EVENT_ID),
            event_type: header(headers::EVENT_TYPE),
            key: self.key.clone(),
            headers: self.headers.clone(),
            payload: self.payload.clone(),
        }
    }
}

fn owned_headers(message: &BorrowedMessage<'_>) -> Vec<(String, Vec<u8>)> {
    message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes a record with the store's parser. Never fails: what cannot be read, or (with
/// `keys`) does not carry the gateway's MAC, becomes a dead letter under the parser's reason.
pub(crate) fn decode(message: &BorrowedMessage<'_>, keys: Option<&RecordKeys>) -> Record {
    let payload = message.payload().unwrap_or_default();
    let dead = |reason: &'static str, error: String| {
        Record::Dead(DeadLetter {
            reason,
            error,
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            headers: owned_headers(message),
        })
    };
    if let Some(keys) = keys {
        let mac = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == headers::MAC)?.value);
        if let Err(err) = keys.verify(mac, payload) {
            return dead("unauthenticated", err.to_string());
        }
    }
    let received_at_ms = message.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == headers::RECEIVED_AT_MS)
            .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
    });
    match IncomingEvent::parse(payload, message.partition(), message.offset()) {
        Ok(event) => Record::Event {
            event: Box::new(event),
            received_at_ms,
        },
        Err(err) => dead(err.reason(), err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::DEAD_LETTER_REASONS;
    use cardstream_store::Unreadable;

    /// The reasons spelled out in this crate (given to `dead` here, as a `reason` field in the
    /// consumer) and every reason of the store's parser are listed, and nothing else is.
    #[test]
    fn every_reason_a_record_is_dead_lettered_for_is_listed() {
        let sources = [include_str!("records.rs"), include_str!("consumer.rs")];
        let mut found = Vec::new();
        for source in sources {
            for marker in ["dead(\"", "reason: \""] {
                for (i, _) in source.match_indices(marker) {
                    let rest = &source[i + marker.len()..];
                    found.push(rest[..rest.find('"').unwrap_or(0)].to_owned());
                }
            }
        }
        found.retain(|r| !r.is_empty() && !r.contains(' '));
        assert!(found.len() >= 2, "{found:?}");
        found.extend(Unreadable::REASONS.map(str::to_owned));
        for reason in &found {
            assert!(DEAD_LETTER_REASONS.contains(&reason.as_str()), "{reason}");
        }
        for listed in DEAD_LETTER_REASONS {
            assert!(found.iter().any(|r| r == listed), "{listed} is never used");
        }
    }
}
