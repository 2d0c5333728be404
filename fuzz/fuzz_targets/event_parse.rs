//! The webhook body → event model path: `Event::parse` (what the gateway runs on every body),
//! `Event::partition_key` (the Kafka key), `Event::object` (what the aggregator folds) and the
//! helpers the projections call on the typed objects.
//!
//! Input: a raw webhook body. Checks, besides "never panics":
//! - a parsed event serializes and parses again to the same id, type, creation time, partition
//!   key and typed object (compared by the fields cardstream uses; `metadata` is free JSON and
//!   serde_json's default float parsing is not exact, so it is left out);
//! - a typed object serializes and parses back as the same kind of object.
#![no_main]

use cardstream_stripe::{Error, Event, Object};
use libfuzzer_sys::fuzz_target;

/// The fields cardstream reads, as one comparable string.
fn summary(object: &Object) -> String {
    match object {
        Object::Authorization(a) => format!(
            "auth {} {} {} {:?} card={} holder={:?} requested={} decline={:?} history={} txns={}",
            a.id,
            a.amount,
            a.currency,
            a.status,
            a.card_id(),
            a.cardholder_id(),
            a.requested(),
            a.decline_reason(),
            a.request_history.len(),
            a.transactions.len(),
        ),
        Object::Transaction(t) => format!(
            "txn {} {} {:?} spend={} card={} auth={:?}",
            t.id,
            t.money(),
            t.kind,
            t.spend(),
            t.card.id(),
            t.authorization.as_ref().map(|a| a.id().to_owned()),
        ),
        Object::Card(c) => format!(
            "card {} {:?} {} holder={} controls={:?}",
            c.id,
            c.status,
            c.currency,
            c.cardholder.id(),
            c.spending_controls,
        ),
        Object::Cardholder(h) => format!(
            "holder {} {:?} {:?} controls={:?}",
            h.id, h.status, h.name, h.spending_controls
        ),
        Object::Dispute(d) => format!(
            "dispute {} {} {} {:?} txn={}",
            d.id,
            d.amount,
            d.currency,
            d.status,
            d.transaction.id(),
        ),
        Object::Other(_) => "other".to_owned(),
    }
}

fn reserialized(object: &Object) -> Option<String> {
    match object {
        Object::Authorization(a) => serde_json::to_string(a).ok(),
        Object::Transaction(t) => serde_json::to_string(t).ok(),
        Object::Card(c) => serde_json::to_string(c).ok(),
        Object::Cardholder(h) => serde_json::to_string(h).ok(),
        Object::Dispute(d) => serde_json::to_string(d).ok(),
        Object::Other(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let event = match Event::parse(data) {
        Ok(event) => event,
        Err(Error::NotJson(_) | Error::NotAnEvent(_)) => return,
        Err(other) => panic!("Event::parse returned an error it does not document: {other}"),
    };
    assert!(!event.id.is_empty() && !event.kind.is_empty());
    let key = event.partition_key();
    let object = event.object();

    // The envelope round-trips through its own serialization.
    let bytes = serde_json::to_vec(&event).expect("an event serializes");
    let again = Event::parse(&bytes).expect("a serialized event parses");
    assert_eq!(
        (&again.id, &again.kind, again.created, again.livemode),
        (&event.id, &event.kind, event.created, event.livemode)
    );
    assert_eq!(again.partition_key(), key);
    let object_again = again.object();
    assert_eq!(object.is_ok(), object_again.is_ok());

    let Ok(object) = object else { return };
    let Ok(object_again) = object_again else {
        unreachable!()
    };
    assert_eq!(summary(&object), summary(&object_again));

    // A typed object re-serialized is still that object, with the same fields cardstream uses.
    if let Some(json) = reserialized(&object) {
        let body = format!(
            r#"{{"id":"evt_fuzz","object":"event","type":{},"created":1,"data":{{"object":{json}}}}}"#,
            serde_json::to_string(&event.kind).expect("a string serializes")
        );
        let rebuilt = Event::parse(body.as_bytes()).expect("a rebuilt event parses");
        let typed = rebuilt.object().unwrap_or_else(|err| {
            panic!(
                "a re-serialized {} object does not parse: {err}",
                event.kind
            )
        });
        assert_eq!(summary(&typed), summary(&object));
    }
});
