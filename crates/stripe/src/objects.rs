//! The Stripe Issuing objects cardstream folds into its projections.
//!
//! Only the fields cardstream uses are typed; serde ignores the rest, so new Stripe fields never
//! break parsing. Fields Stripe documents as nullable are `Option`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::enums::{
    AuthorizationStatus, CardStatus, CardholderStatus, DisputeStatus, TransactionType,
};
use crate::money::{Currency, Money};

/// A field Stripe may send either as an id or, when expanded, as the whole object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

/// Objects with a Stripe id.
pub trait HasId {
    fn id(&self) -> &str;
}

impl<T: HasId> Expandable<T> {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }

    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(object) => Some(object),
        }
    }
}

macro_rules! has_id {
    ($($t:ty),+) => { $(impl HasId for $t { fn id(&self) -> &str { &self.id } })+ };
}
has_id!(Authorization, Transaction, Card, Cardholder, Dispute, Token);

/// `merchant_data` on authorizations and transactions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MerchantData {
    /// One of Stripe's 273 merchant category names, e.g. `taxicabs_limousines`.
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub category_code: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub network_id: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// `pending_request` of an authorization awaiting a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub merchant_amount: Option<i64>,
    #[serde(default)]
    pub merchant_currency: Option<Currency>,
    #[serde(default)]
    pub is_amount_controllable: bool,
}

/// One entry of `request_history`: a decision taken on the authorization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestHistory {
    pub amount: i64,
    pub currency: Currency,
    pub approved: bool,
    /// Why: `webhook_approved`, `webhook_declined`, `spending_controls`, `card_inactive`, …
    pub reason: String,
    #[serde(default)]
    pub reason_message: Option<String>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub merchant_amount: Option<i64>,
    #[serde(default)]
    pub merchant_currency: Option<Currency>,
}

/// `issuing.authorization`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    pub id: String,
    /// Held amount in the card's currency; 0 while the request is pending.
    pub amount: i64,
    pub currency: Currency,
    pub approved: bool,
    pub status: AuthorizationStatus,
    pub created: i64,
    /// Expanded in webhooks.
    pub card: Expandable<Card>,
    #[serde(default)]
    pub cardholder: Option<Expandable<Cardholder>>,
    #[serde(default)]
    pub merchant_data: MerchantData,
    #[serde(default)]
    pub merchant_amount: Option<i64>,
    #[serde(default)]
    pub merchant_currency: Option<Currency>,
    #[serde(default)]
    pub pending_request: Option<PendingRequest>,
    #[serde(default)]
    pub request_history: Vec<RequestHistory>,
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    #[serde(default)]
    pub authorization_method: Option<String>,
    #[serde(default)]
    pub wallet: Option<String>,
    /// The wallet token the purchase was made with (`issuing.token`), if any.
    #[serde(default)]
    pub token: Option<Expandable<Token>>,
    #[serde(default)]
    pub metadata: Value,
    /// The checks of the card's details (address, postal code, CVC, expiry, 3-D Secure), as
    /// Stripe sent them: kept raw, shown as they are.
    #[serde(default)]
    pub verification_data: Value,
    /// What the card network sent (acquirer, trace number, network transaction id), raw.
    #[serde(default)]
    pub network_data: Value,
}

impl Authorization {
    pub fn card_id(&self) -> &str {
        self.card.id()
    }

    /// The cardholder: the authorization's own field, or the one on the expanded card.
    pub fn cardholder_id(&self) -> Option<&str> {
        match &self.cardholder {
            Some(cardholder) => Some(cardholder.id()),
            None => self.card.object().map(|card| card.cardholder.id()),
        }
    }

    /// The amount being asked for: the pending request while pending, else the held amount.
    pub fn requested(&self) -> Money {
        match &self.pending_request {
            Some(pending) => Money::new(pending.amount, pending.currency),
            None => Money::new(self.amount, self.currency),
        }
    }

    /// The reason of the latest decision in `request_history`, when it was a decline.
    pub fn decline_reason(&self) -> Option<&str> {
        self.request_history
            .iter()
            .max_by_key(|entry| entry.created)
            .filter(|entry| !entry.approved)
            .map(|entry| entry.reason.as_str())
    }
}

/// `issuing.transaction`. A capture has a negative `amount`, a refund a positive one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    #[serde(rename = "type")]
    pub kind: TransactionType,
    pub card: Expandable<Card>,
    #[serde(default)]
    pub cardholder: Option<Expandable<Cardholder>>,
    #[serde(default)]
    pub authorization: Option<Expandable<Authorization>>,
    pub created: i64,
    #[serde(default)]
    pub merchant_data: MerchantData,
    #[serde(default)]
    pub merchant_amount: Option<i64>,
    #[serde(default)]
    pub merchant_currency: Option<Currency>,
    #[serde(default)]
    pub dispute: Option<Expandable<Dispute>>,
    #[serde(default)]
    pub wallet: Option<String>,
}

impl Transaction {
    pub fn money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }

    /// What this transaction adds to spend: a capture of −100 is 100 of spend, a refund of
    /// +40 is −40.
    pub fn spend(&self) -> i64 {
        self.amount.saturating_neg()
    }
}

/// `spending_controls.spending_limits[]` on cards and cardholders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendingLimit {
    pub amount: i64,
    pub interval: String,
    #[serde(default)]
    pub categories: Option<Vec<String>>,
}

/// `spending_controls` on cards and cardholders. Lists are `null` when not set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendingControls {
    #[serde(default)]
    pub allowed_categories: Option<Vec<String>>,
    #[serde(default)]
    pub blocked_categories: Option<Vec<String>>,
    #[serde(default)]
    pub spending_limits: Option<Vec<SpendingLimit>>,
    #[serde(default)]
    pub spending_limits_currency: Option<Currency>,
}

/// `issuing.card`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub id: String,
    /// Expanded in webhooks.
    pub cardholder: Expandable<Cardholder>,
    pub status: CardStatus,
    pub currency: Currency,
    pub created: i64,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub last4: Option<String>,
    #[serde(default)]
    pub exp_month: Option<u32>,
    #[serde(default)]
    pub exp_year: Option<u32>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    #[serde(default)]
    pub spending_controls: Option<SpendingControls>,
    #[serde(default)]
    pub metadata: Value,
}

/// `issuing.cardholder`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cardholder {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    pub status: CardholderStatus,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub created: i64,
    #[serde(default)]
    pub spending_controls: Option<SpendingControls>,
    #[serde(default)]
    pub metadata: Value,
}

/// `issuing.token`: a card added to a digital wallet (Apple Pay, Google Pay, Samsung Pay).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub card: Expandable<Card>,
    pub created: i64,
    /// `requested`, `active`, `suspended`, `deleted`.
    pub status: String,
    /// `apple_pay`, `google_pay`, `samsung_pay`; `None` when no wallet was used.
    #[serde(default)]
    pub wallet_provider: Option<String>,
    /// `visa` or `mastercard`.
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub last4: Option<String>,
    #[serde(default)]
    pub device_fingerprint: Option<String>,
    #[serde(default)]
    pub network_updated_at: Option<i64>,
    /// The network's view of the device and wallet (`device.type`: phone, watch, other), kept
    /// as Stripe sent it.
    #[serde(default)]
    pub network_data: Option<Value>,
}

impl Token {
    /// `network_data.device.type`: phone, watch or other.
    pub fn device_type(&self) -> Option<&str> {
        self.network_data
            .as_ref()?
            .get("device")?
            .get("type")?
            .as_str()
    }
}

/// `evidence` of a dispute; only the reason is typed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DisputeEvidence {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `issuing.dispute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    pub status: DisputeStatus,
    pub transaction: Expandable<Transaction>,
    pub created: i64,
    #[serde(default)]
    pub evidence: DisputeEvidence,
    /// Why a lost dispute was lost (`evidence_not_sufficient`, …); `None` otherwise.
    #[serde(default)]
    pub loss_reason: Option<String>,
    #[serde(default)]
    pub metadata: Value,
}
