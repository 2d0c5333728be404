//! Rows of the object tables, taken from typed Stripe objects, and what each contributes to the
//! rollups.

use cardstream_stripe::{
    Authorization, Card, Cardholder, Dispute, MerchantData, Token, Transaction,
};

use crate::version::Version;

/// Days since 1970-01-01 (UTC) of a unix timestamp: the rollups' day bucket.
pub(crate) fn day_of(unix_seconds: i64) -> i32 {
    i32::try_from(unix_seconds.div_euclid(86_400)).unwrap_or(i32::MAX)
}

#[derive(Debug, Clone)]
pub(crate) struct Merchant {
    pub(crate) name: Option<String>,
    pub(crate) category: String,
    pub(crate) category_code: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) network_id: Option<String>,
}

impl From<&MerchantData> for Merchant {
    fn from(m: &MerchantData) -> Self {
        Merchant {
            name: m.name.clone(),
            category: m.category.clone(),
            category_code: m.category_code.clone(),
            city: m.city.clone(),
            country: m.country.clone(),
            network_id: m.network_id.clone(),
        }
    }
}

/// The merchant rollup's key: the name Stripe reports, else the network id.
pub(crate) fn merchant_key(name: Option<&str>, network_id: Option<&str>) -> String {
    name.filter(|n| !n.is_empty())
        .or(network_id.filter(|n| !n.is_empty()))
        .unwrap_or("unknown merchant")
        .to_owned()
}

#[derive(Debug, Clone)]
pub(crate) struct CardholderRow {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) phone_number: Option<String>,
    pub(crate) status: String,
    pub(crate) kind: Option<String>,
    pub(crate) created: i64,
}

impl From<&Cardholder> for CardholderRow {
    fn from(h: &Cardholder) -> Self {
        CardholderRow {
            id: h.id.clone(),
            name: h.name.clone(),
            email: h.email.clone(),
            phone_number: h.phone_number.clone(),
            status: h.status.to_string(),
            kind: h.kind.clone(),
            created: h.created,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CardRow {
    pub(crate) id: String,
    pub(crate) cardholder_id: String,
    pub(crate) status: String,
    pub(crate) currency: String,
    pub(crate) kind: Option<String>,
    pub(crate) brand: Option<String>,
    pub(crate) last4: Option<String>,
    pub(crate) exp_month: Option<i32>,
    pub(crate) exp_year: Option<i32>,
    pub(crate) created: i64,
}

impl From<&Card> for CardRow {
    fn from(c: &Card) -> Self {
        CardRow {
            id: c.id.clone(),
            cardholder_id: c.cardholder.id().to_owned(),
            status: c.status.to_string(),
            currency: c.currency.to_string(),
            kind: c.kind.clone(),
            brand: c.brand.clone(),
            last4: c.last4.clone(),
            exp_month: c.exp_month.and_then(|m| i32::try_from(m).ok()),
            exp_year: c.exp_year.and_then(|y| i32::try_from(y).ok()),
            created: c.created,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AuthorizationRow {
    pub(crate) id: String,
    pub(crate) card_id: String,
    pub(crate) cardholder_id: Option<String>,
    pub(crate) amount: i64,
    pub(crate) requested_amount: i64,
    pub(crate) currency: String,
    pub(crate) merchant_amount: Option<i64>,
    pub(crate) merchant_currency: Option<String>,
    pub(crate) approved: bool,
    pub(crate) status: String,
    pub(crate) decline_reason: Option<String>,
    pub(crate) cardstream_reason: Option<String>,
    pub(crate) merchant: Merchant,
    pub(crate) authorization_method: Option<String>,
    pub(crate) wallet: Option<String>,
    pub(crate) token_id: Option<String>,
    pub(crate) request_history: String,
    /// Raw JSON objects, or none when Stripe sent none.
    pub(crate) verification_data: Option<String>,
    pub(crate) network_data: Option<String>,
    pub(crate) created: i64,
}

/// A raw JSON value for a jsonb column: none for null (or absent).
fn raw_object(value: &serde_json::Value) -> Option<String> {
    (!value.is_null()).then(|| value.to_string())
}

impl From<&Authorization> for AuthorizationRow {
    fn from(a: &Authorization) -> Self {
        // What was asked, in the card's currency and the merchant's: the pending request's
        // while it is pending, then the latest decision's (a closed authorization holds 0).
        let (requested_amount, merchant_asked) =
            match (&a.pending_request, a.request_history.last()) {
                (Some(pending), _) => (
                    pending.amount,
                    pending.merchant_amount.zip(pending.merchant_currency),
                ),
                (None, Some(latest)) => (
                    latest.amount,
                    latest.merchant_amount.zip(latest.merchant_currency),
                ),
                (None, None) => (a.amount, None),
            };
        let merchant_asked = merchant_asked.or(a.merchant_amount.zip(a.merchant_currency));
        AuthorizationRow {
            id: a.id.clone(),
            card_id: a.card_id().to_owned(),
            cardholder_id: a.cardholder_id().map(str::to_owned),
            amount: a.amount,
            requested_amount,
            currency: a.currency.to_string(),
            merchant_amount: merchant_asked.map(|(amount, _)| amount),
            merchant_currency: merchant_asked.map(|(_, currency)| currency.to_string()),
            approved: a.approved,
            status: a.status.to_string(),
            decline_reason: a.decline_reason().map(str::to_owned),
            cardstream_reason: a
                .metadata
                .get("cardstream_reason")
                .and_then(|r| r.as_str())
                .map(str::to_owned),
            merchant: Merchant::from(&a.merchant_data),
            authorization_method: a.authorization_method.clone(),
            wallet: a.wallet.clone(),
            token_id: a.token.as_ref().map(|t| t.id().to_owned()),
            request_history: serde_json::to_string(&a.request_history)
                .unwrap_or_else(|_| "[]".to_owned()),
            verification_data: raw_object(&a.verification_data),
            network_data: raw_object(&a.network_data),
            created: a.created,
        }
    }
}

/// What an authorization adds to `card_daily_spend`: one approval or one decline on its day.
/// A request still waiting for its decision (pending, not approved) counts as neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthorizationContribution {
    pub(crate) card_id: String,
    pub(crate) day: i32,
    pub(crate) currency: String,
    pub(crate) approved: bool,
    pub(crate) status: String,
    /// The Connect account ('' for the platform's own), for the program rollups.
    pub(crate) account: String,
    /// Stripe's and cardstream's reasons for a decline ('' when none).
    pub(crate) reason: String,
    pub(crate) cardstream_reason: String,
}

impl AuthorizationContribution {
    pub(crate) fn counts(&self) -> (i32, i32) {
        match (self.approved, self.status.as_str()) {
            (true, _) => (1, 0),
            (false, "pending") => (0, 0),
            (false, _) => (0, 1),
        }
    }
}

impl AuthorizationRow {
    pub(crate) fn contribution(&self, account: Option<&str>) -> AuthorizationContribution {
        AuthorizationContribution {
            card_id: self.card_id.clone(),
            day: day_of(self.created),
            currency: self.currency.clone(),
            approved: self.approved,
            status: self.status.clone(),
            account: account.unwrap_or_default().to_owned(),
            reason: self.decline_reason.clone().unwrap_or_default(),
            cardstream_reason: self.cardstream_reason.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TransactionRow {
    pub(crate) id: String,
    pub(crate) card_id: String,
    pub(crate) cardholder_id: Option<String>,
    pub(crate) authorization_id: Option<String>,
    pub(crate) kind: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) merchant_amount: Option<i64>,
    pub(crate) merchant_currency: Option<String>,
    pub(crate) merchant: Merchant,
    pub(crate) dispute_id: Option<String>,
    pub(crate) wallet: Option<String>,
    pub(crate) created: i64,
}

impl From<&Transaction> for TransactionRow {
    fn from(t: &Transaction) -> Self {
        TransactionRow {
            id: t.id.clone(),
            card_id: t.card.id().to_owned(),
            cardholder_id: t.cardholder.as_ref().map(|c| c.id().to_owned()),
            authorization_id: t.authorization.as_ref().map(|a| a.id().to_owned()),
            kind: t.kind.to_string(),
            amount: t.amount,
            currency: t.currency.to_string(),
            merchant_amount: t.merchant_amount,
            merchant_currency: t.merchant_currency.map(|c| c.to_string()),
            merchant: Merchant::from(&t.merchant_data),
            dispute_id: t.dispute.as_ref().map(|d| d.id().to_owned()),
            wallet: t.wallet.clone(),
            created: t.created,
        }
    }
}

/// What a transaction adds to the spend rollups. Only captures and refunds move spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransactionContribution {
    pub(crate) card_id: String,
    pub(crate) day: i32,
    pub(crate) currency: String,
    pub(crate) category: String,
    pub(crate) merchant: String,
    pub(crate) kind: String,
    pub(crate) amount: i64,
    /// The Connect account ('' for the platform's own), for the program rollups.
    pub(crate) account: String,
}

impl TransactionContribution {
    /// `(spend, captured, refunded, captures, refunds)`.
    pub(crate) fn figures(&self) -> (i64, i64, i64, i32, i32) {
        match self.kind.as_str() {
            "capture" => (-self.amount, -self.amount, 0, 1, 0),
            "refund" => (-self.amount, 0, self.amount, 0, 1),
            _ => (0, 0, 0, 0, 0),
        }
    }
}

impl TransactionRow {
    pub(crate) fn contribution(&self, account: Option<&str>) -> TransactionContribution {
        TransactionContribution {
            account: account.unwrap_or_default().to_owned(),
            card_id: self.card_id.clone(),
            day: day_of(self.created),
            currency: self.currency.clone(),
            category: self.merchant.category.clone(),
            merchant: merchant_key(
                self.merchant.name.as_deref(),
                self.merchant.network_id.as_deref(),
            ),
            kind: self.kind.clone(),
            amount: self.amount,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DisputeRow {
    pub(crate) id: String,
    pub(crate) transaction_id: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) status: String,
    pub(crate) reason: Option<String>,
    pub(crate) loss_reason: Option<String>,
    pub(crate) created: i64,
}

impl From<&Dispute> for DisputeRow {
    fn from(d: &Dispute) -> Self {
        DisputeRow {
            id: d.id.clone(),
            transaction_id: d.transaction.id().to_owned(),
            amount: d.amount,
            currency: d.currency.to_string(),
            status: d.status.to_string(),
            reason: d.evidence.reason.clone(),
            loss_reason: d.loss_reason.clone(),
            created: d.created,
        }
    }
}

/// An `issuing.token` as the `tokens` table holds it.
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub(crate) id: String,
    pub(crate) card_id: String,
    pub(crate) status: String,
    pub(crate) wallet_provider: Option<String>,
    pub(crate) device_type: Option<String>,
    pub(crate) network: Option<String>,
    pub(crate) last4: Option<String>,
    pub(crate) device_fingerprint: Option<String>,
    pub(crate) network_updated_at: Option<i64>,
    pub(crate) network_data: Option<String>,
    pub(crate) created: i64,
}

impl From<&Token> for TokenRow {
    fn from(t: &Token) -> Self {
        TokenRow {
            id: t.id.clone(),
            card_id: t.card.id().to_owned(),
            status: t.status.clone(),
            wallet_provider: t.wallet_provider.clone(),
            device_type: t.device_type().map(str::to_owned),
            network: t.network.clone(),
            last4: t.last4.clone(),
            device_fingerprint: t.device_fingerprint.clone(),
            network_updated_at: t.network_updated_at,
            network_data: t.network_data.as_ref().and_then(raw_object),
            created: t.created,
        }
    }
}

/// A row with the version of the event that produced it.
#[derive(Debug, Clone)]
pub(crate) struct Versioned<R> {
    pub(crate) version: Version,
    /// The Connect account the object belongs to; `None` for the platform's own.
    pub(crate) account: Option<String>,
    pub(crate) row: R,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_floor() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn only_captures_and_refunds_move_spend() {
        let c = |kind: &str, amount| TransactionContribution {
            card_id: "ic".into(),
            day: 0,
            currency: "usd".into(),
            category: "x".into(),
            merchant: "m".into(),
            kind: kind.into(),
            amount,
            account: String::new(),
        };
        assert_eq!(c("capture", -500).figures(), (500, 500, 0, 1, 0));
        assert_eq!(c("refund", 200).figures(), (-200, 0, 200, 0, 1));
        assert_eq!(c("adjustment", -10).figures(), (0, 0, 0, 0, 0));
    }

    #[test]
    fn a_pending_request_is_neither_approved_nor_declined() {
        let a = |approved, status: &str| AuthorizationContribution {
            card_id: "ic".into(),
            day: 0,
            currency: "usd".into(),
            approved,
            status: status.into(),
            account: String::new(),
            reason: String::new(),
            cardstream_reason: String::new(),
        };
        assert_eq!(a(false, "pending").counts(), (0, 0));
        assert_eq!(a(true, "pending").counts(), (1, 0));
        assert_eq!(a(false, "closed").counts(), (0, 1));
        assert_eq!(a(true, "reversed").counts(), (1, 0));
    }
}
