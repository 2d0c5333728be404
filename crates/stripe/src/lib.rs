//! Stripe Issuing as cardstream understands it: the event envelope, the Issuing objects, money
//! in minor units, and webhook signatures. Pure data and computation; no I/O.

mod categories;
mod enums;
mod event;
mod money;
mod objects;
pub mod signature;

pub use categories::{is_merchant_category, merchant_categories};
pub use enums::{
    AuthorizationStatus, CardStatus, CardholderStatus, DisputeStatus, TransactionType,
};
pub use event::{Event, EventData, Object, types};
pub use money::{Currency, Money};
pub use objects::{
    Authorization, Card, Cardholder, Dispute, DisputeEvidence, Expandable, HasId, MerchantData,
    PendingRequest, RequestHistory, SpendingControls, SpendingLimit, Token, Transaction,
};
pub use signature::{SignatureError, Verifier, WebhookSecret};

/// Errors of this crate. Each variant says what was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    #[error("the JSON is not a Stripe event: {0}")]
    NotAnEvent(String),
    #[error("the {event_type} event's object does not have the expected shape: {message}")]
    InvalidObject { event_type: String, message: String },
    #[error("{0:?} is not a three-letter currency code")]
    InvalidCurrency(String),
    #[error("at least one webhook secret is required")]
    NoSecrets,
}
