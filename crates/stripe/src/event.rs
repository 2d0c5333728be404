//! The Stripe Event envelope and its typed Issuing payloads.
//!
//! Parsing is in two steps: the envelope (id, type, created) with `data.object` kept as raw
//! JSON, then, only when wanted, the object typed by the event's type. The gateway needs only
//! the first step; the aggregator needs both. Unknown event types are never an error: their
//! object stays raw JSON with its type.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Error;
use crate::objects::{Authorization, Card, Cardholder, Dispute, Token, Transaction};

/// A Stripe Event (`"object": "event"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds at which Stripe created the event; the ordering key between versions of an
    /// object, with the event id as tie-break.
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub api_version: Option<String>,
    /// The connected account the event happened in (Stripe Connect: events posted to a Connect
    /// endpoint carry it); `None` for the platform's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    object: Option<String>,
    pub data: EventData,
}

/// `data` of an event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventData {
    pub object: Box<RawValue>,
    #[serde(default)]
    pub previous_attributes: Option<Box<RawValue>>,
}

/// The object an event carries, typed by the event's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Authorization(Box<Authorization>),
    Transaction(Box<Transaction>),
    Card(Box<Card>),
    Cardholder(Box<Cardholder>),
    Dispute(Box<Dispute>),
    Token(Box<Token>),
    /// An event type cardstream does not fold, kept as it came.
    Other(serde_json::Value),
}

/// The few fields of `data.object` needed to route an event, parsed without typing the rest.
#[derive(Deserialize)]
struct ObjectHead<'a> {
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    object: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    card: Option<CardRef<'a>>,
}

/// `card` as an id or an expanded object; only its id is kept. Written by hand rather than
/// with `#[serde(untagged)]`, which would buffer a whole expanded card (with its cardholder) on
/// the webhook hot path just to find its id.
struct CardRef<'a>(Option<std::borrow::Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for CardRef<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CardRefVisitor(std::marker::PhantomData))
    }
}

struct CardRefVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for CardRefVisitor<'a> {
    type Value = CardRef<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a card id or a card object")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CardRef(Some(std::borrow::Cow::Borrowed(v))))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CardRef(Some(std::borrow::Cow::Owned(v.to_owned()))))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(CardRef(None))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        while let Some(IsId(is_id)) = map.next_key::<IsId>()? {
            if is_id && id.is_none() {
                // The same visitor reads the id string (and tolerates a null).
                id = map.next_value::<CardRef<'a>>()?.0;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(CardRef(id))
    }

    // Numbers, booleans and arrays are not card references; ignore them rather than fail.
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(CardRef(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(CardRef(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(CardRef(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(CardRef(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(CardRef(None))
    }
}

/// A map key, reduced to whether it is `"id"`, without allocating it.
struct IsId(bool);

impl<'de> Deserialize<'de> for IsId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IsId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<IsId, E> {
                Ok(IsId(v == "id"))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Event {
    /// Parses and validates an envelope. Distinguishes bytes that are not JSON at all from JSON
    /// that is not a Stripe event, because the gateway reports them differently.
    pub fn parse(bytes: &[u8]) -> Result<Event, Error> {
        let event: Event = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
            serde_json::error::Category::Data => Error::NotAnEvent(err.to_string()),
            _ => Error::NotJson(err.to_string()),
        })?;
        event.validate()?;
        Ok(event)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.id.is_empty() {
            return Err(Error::NotAnEvent("`id` is empty".into()));
        }
        if self.kind.is_empty() {
            return Err(Error::NotAnEvent("`type` is empty".into()));
        }
        if let Some(object) = &self.object
            && object != "event"
        {
            return Err(Error::NotAnEvent(format!(
                "`object` is {object:?}, not \"event\""
            )));
        }
        if !self.data.object.get().starts_with('{') {
            return Err(Error::NotAnEvent(
                "`data.object` is not a JSON object".into(),
            ));
        }
        Ok(())
    }

    /// The Kafka partition key: the card id, so one card's events stay in order, falling back
    /// to the object's id, then the event id.
    pub fn partition_key(&self) -> String {
        match serde_json::from_str::<ObjectHead<'_>>(self.data.object.get()) {
            Ok(head) => {
                let is_card = head.object.as_deref() == Some("issuing.card");
                let card = head.card.and_then(|c| c.0).filter(|_| !is_card);
                card.or(head.id)
                    .map_or_else(|| self.id.clone(), |id| id.into_owned())
            }
            Err(_) => self.id.clone(),
        }
    }

    /// Types `data.object` by the event type's prefix (`issuing_authorization.*` and so on).
    pub fn object(&self) -> Result<Object, Error> {
        let raw = self.data.object.get();
        let typed = |source: serde_json::Error| Error::InvalidObject {
            event_type: self.kind.clone(),
            message: source.to_string(),
        };
        let prefix = self.kind.split('.').next().unwrap_or_default();
        Ok(match prefix {
            "issuing_authorization" => {
                Object::Authorization(serde_json::from_str(raw).map_err(typed)?)
            }
            "issuing_transaction" => Object::Transaction(serde_json::from_str(raw).map_err(typed)?),
            "issuing_card" => Object::Card(serde_json::from_str(raw).map_err(typed)?),
            "issuing_cardholder" => Object::Cardholder(serde_json::from_str(raw).map_err(typed)?),
            "issuing_dispute" => Object::Dispute(serde_json::from_str(raw).map_err(typed)?),
            "issuing_token" => Object::Token(serde_json::from_str(raw).map_err(typed)?),
            _ => Object::Other(serde_json::from_str(raw).map_err(typed)?),
        })
    }
}

/// Event types cardstream folds into its projections.
pub mod types {
    pub const AUTHORIZATION_REQUEST: &str = "issuing_authorization.request";
    pub const AUTHORIZATION_CREATED: &str = "issuing_authorization.created";
    pub const AUTHORIZATION_UPDATED: &str = "issuing_authorization.updated";
    pub const CARD_CREATED: &str = "issuing_card.created";
    pub const CARD_UPDATED: &str = "issuing_card.updated";
    pub const CARDHOLDER_CREATED: &str = "issuing_cardholder.created";
    pub const CARDHOLDER_UPDATED: &str = "issuing_cardholder.updated";
    pub const TRANSACTION_CREATED: &str = "issuing_transaction.created";
    pub const TRANSACTION_UPDATED: &str = "issuing_transaction.updated";
    pub const DISPUTE_CREATED: &str = "issuing_dispute.created";
    pub const DISPUTE_UPDATED: &str = "issuing_dispute.updated";
    pub const DISPUTE_CLOSED: &str = "issuing_dispute.closed";
    pub const DISPUTE_SUBMITTED: &str = "issuing_dispute.submitted";
    pub const TOKEN_CREATED: &str = "issuing_token.created";
    pub const TOKEN_UPDATED: &str = "issuing_token.updated";
    /// A won dispute's amount returned to the program's Issuing balance.
    pub const DISPUTE_FUNDS_REINSTATED: &str = "issuing_dispute.funds_reinstated";
    /// Funds taken back from the Issuing balance over a dispute.
    pub const DISPUTE_FUNDS_RESCINDED: &str = "issuing_dispute.funds_rescinded";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(object: &str) -> Event {
        let body = format!(
            r#"{{"id":"evt_1","object":"event","type":"x.y","created":1,"data":{{"object":{object}}}}}"#
        );
        Event::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn partition_key_prefers_the_card() {
        assert_eq!(
            event(r#"{"id":"ipi_1","card":"ic_9"}"#).partition_key(),
            "ic_9"
        );
        assert_eq!(
            event(r#"{"id":"iauth_1","card":{"id":"ic_8","object":"issuing.card"}}"#)
                .partition_key(),
            "ic_8"
        );
        assert_eq!(
            event(r#"{"id":"ic_7","object":"issuing.card","cardholder":"ich_1"}"#).partition_key(),
            "ic_7"
        );
        assert_eq!(
            event(r#"{"id":"ich_1","card":null}"#).partition_key(),
            "ich_1"
        );
        assert_eq!(event(r#"{"name":"no id"}"#).partition_key(), "evt_1");
    }

    #[test]
    fn not_json_and_not_an_event_are_told_apart() {
        assert!(matches!(Event::parse(b"{\"id\":"), Err(Error::NotJson(_))));
        assert!(matches!(Event::parse(b"\xff\xfe"), Err(Error::NotJson(_))));
        assert!(matches!(Event::parse(b""), Err(Error::NotJson(_))));
        assert!(matches!(Event::parse(b"[1,2]"), Err(Error::NotAnEvent(_))));
        assert!(matches!(
            Event::parse(b"{\"id\":\"evt_1\"}"),
            Err(Error::NotAnEvent(_))
        ));
        let wrong_object =
            br#"{"id":"ch_1","object":"charge","type":"x","created":1,"data":{"object":{}}}"#;
        assert!(matches!(
            Event::parse(wrong_object),
            Err(Error::NotAnEvent(_))
        ));
        let scalar_object =
            br#"{"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":3}}"#;
        assert!(matches!(
            Event::parse(scalar_object),
            Err(Error::NotAnEvent(_))
        ));
    }

    #[test]
    fn unknown_types_stay_raw() {
        let e = event(r#"{"id":"price_1","object":"plan","amount":2000}"#);
        match e.object().unwrap() {
            Object::Other(value) => assert_eq!(value["amount"], 2000),
            other => panic!("expected raw object, got {other:?}"),
        }
    }
}
