//! What an authorization page shows beside the money: the checks Stripe made of the card's
//! details and what the card network sent, read from the raw objects the store keeps.

use async_graphql::SimpleObject;
use serde_json::Value;

/// The checks of the card's details, each as Stripe words it: `match`, `mismatch` or
/// `not_provided`.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub address_line1_check: Option<String>,
    pub address_postal_code_check: Option<String>,
    pub cvc_check: Option<String>,
    pub expiry_check: Option<String>,
    /// The 3-D Secure result (`authenticated`, `failed`, …); null without 3-D Secure.
    pub three_d_secure: Option<String>,
}

/// The card network's references for the authorization.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct NetworkData {
    pub acquiring_institution_id: Option<String>,
    pub system_trace_audit_number: Option<String>,
    pub transaction_id: Option<String>,
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Verification {
    /// `None` when Stripe sent no `verification_data`.
    pub fn from_raw(raw: Option<&Value>) -> Option<Self> {
        let v = raw.filter(|v| v.is_object())?;
        Some(Verification {
            address_line1_check: text(v, "address_line1_check"),
            address_postal_code_check: text(v, "address_postal_code_check"),
            cvc_check: text(v, "cvc_check"),
            expiry_check: text(v, "expiry_check"),
            three_d_secure: v.get("three_d_secure").and_then(|t| text(t, "result")),
        })
    }
}

impl NetworkData {
    /// `None` when Stripe sent no `network_data`.
    pub fn from_raw(raw: Option<&Value>) -> Option<Self> {
        let v = raw.filter(|v| v.is_object())?;
        Some(NetworkData {
            acquiring_institution_id: text(v, "acquiring_institution_id"),
            system_trace_audit_number: text(v, "system_trace_audit_number"),
            transaction_id: text(v, "transaction_id"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_read_as_stripe_sent_them_and_nothing_when_there_is_nothing() {
        let raw = json!({"address_line1_check": "not_provided", "address_postal_code_check": "match",
            "cvc_check": "mismatch", "expiry_check": "match", "three_d_secure": {"result": "authenticated"}});
        let v = Verification::from_raw(Some(&raw)).unwrap();
        assert_eq!(v.cvc_check.as_deref(), Some("mismatch"));
        assert_eq!(v.three_d_secure.as_deref(), Some("authenticated"));
        let no_3ds = json!({"cvc_check": "match", "three_d_secure": null});
        assert_eq!(
            Verification::from_raw(Some(&no_3ds))
                .unwrap()
                .three_d_secure,
            None
        );
        assert_eq!(Verification::from_raw(None), None);
        assert_eq!(Verification::from_raw(Some(&Value::Null)), None);
        let network = json!({"acquiring_institution_id": "000123", "system_trace_audit_number": null, "transaction_id": "MCC1"});
        let n = NetworkData::from_raw(Some(&network)).unwrap();
        assert_eq!(n.transaction_id.as_deref(), Some("MCC1"));
        assert_eq!(n.system_trace_audit_number, None);
    }
}
