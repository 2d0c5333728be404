//! An object read from a list endpoint, written as an event the pipeline folds like any other.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// A snapshot event: `{"object":"event","type":"<object>.snapshot","created":<read at>,…}`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `evt_snapshot_…`, a digest of the account and the object's bytes: the same object read
    /// twice unchanged (a page re-read after a resume) is the same event, which the store keeps
    /// once.
    pub id: String,
    pub kind: String,
    pub created: i64,
    /// The Kafka key: the card, as for webhook events of the same object.
    pub key: String,
    pub payload: String,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    object: std::borrow::Cow<'a, str>,
    #[serde(default)]
    livemode: bool,
}

/// The snapshot of `object` (as Stripe sent it) read in second `read_at`, for `account`.
/// `None` when the bytes are not an object with an `id` and an `object` type.
pub fn snapshot(object: &RawValue, read_at: i64, account: Option<&str>) -> Option<Snapshot> {
    let head: Head<'_> = serde_json::from_str(object.get()).ok()?;
    // `issuing.card` → `issuing_card.snapshot`, as Stripe names the card's events.
    let kind = format!("{}.snapshot", head.object.replace('.', "_"));
    let mut digest = Sha256::new();
    digest.update(account.unwrap_or_default().as_bytes());
    digest.update([0]);
    digest.update(object.get().as_bytes());
    let id = format!("evt_snapshot_{}", &hex::encode(digest.finalize())[..32]);
    let account = match account {
        Some(account) => format!(r#","account":{}"#, serde_json::Value::from(account)),
        None => String::new(),
    };
    let payload = format!(
        r#"{{"id":"{id}","object":"event","type":"{kind}","created":{read_at},"livemode":{},"api_version":null{account},"data":{{"object":{}}}}}"#,
        head.livemode,
        object.get()
    );
    let key = cardstream_stripe::Event::parse(payload.as_bytes())
        .map(|e| e.partition_key())
        .unwrap_or_else(|_| head.id.clone().into_owned());
    Some(Snapshot {
        id,
        kind,
        created: read_at,
        key,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardstream_stripe::{Event, Object};

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn a_snapshot_is_an_event_the_store_types() {
        let auth = include_str!("../../stripe/tests/fixtures/issuing.authorization.json");
        let s = snapshot(&raw(auth.trim()), 1_800_000_000, None).unwrap();
        assert_eq!(s.kind, "issuing_authorization.snapshot");
        let event = Event::parse(s.payload.as_bytes()).unwrap();
        assert_eq!(event.created, 1_800_000_000);
        assert_eq!(event.id, s.id);
        assert!(matches!(event.object().unwrap(), Object::Authorization(_)));
        assert_eq!(s.key, event.partition_key());
        assert!(s.key.starts_with("ic_"), "{}", s.key);
    }

    #[test]
    fn the_same_object_is_the_same_event_and_accounts_are_kept_apart() {
        let card = raw(r#"{"id":"ic_1","object":"issuing.card","livemode":true}"#);
        let a = snapshot(&card, 1, None).unwrap();
        let b = snapshot(&card, 2, None).unwrap();
        assert_eq!(a.id, b.id, "a re-read unchanged object dedupes");
        let c = snapshot(&card, 1, Some("acct_1")).unwrap();
        assert_ne!(a.id, c.id);
        let event: serde_json::Value = serde_json::from_str(&c.payload).unwrap();
        assert_eq!(event["account"], "acct_1");
        assert_eq!(event["livemode"], true);
        assert_eq!(a.key, "ic_1");
        assert!(snapshot(&raw(r#"{"no":"id"}"#), 1, None).is_none());
    }
}
