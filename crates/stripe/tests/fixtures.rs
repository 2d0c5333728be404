//! Every Stripe object and event in `tests/fixtures/` (copied from Stripe's published fixtures)
//! parses, and every published signature vector verifies as documented.

#![allow(clippy::unwrap_used)]

use cardstream_stripe::signature::{self, SignatureError};
use cardstream_stripe::{
    AuthorizationStatus, Currency, Event, Object, TransactionType, Verifier, WebhookSecret,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Wraps a fixture object in an event envelope the way Stripe delivers it.
fn event_around(event_type: &str, object: &str) -> Event {
    let object: Value = serde_json::from_str(object).unwrap();
    let body = json!({
        "id": "evt_fixture", "object": "event", "type": event_type, "created": 1721948550,
        "livemode": false, "api_version": "2024-06-20", "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "data": {"object": object}
    });
    Event::parse(body.to_string().as_bytes()).unwrap()
}

#[test]
fn authorization_fixture_parses_with_expanded_card_and_pending_request() {
    let event = event_around(
        "issuing_authorization.request",
        &fixture("issuing.authorization.json"),
    );
    let Object::Authorization(auth) = event.object().unwrap() else {
        panic!("not an authorization")
    };
    assert_eq!(auth.id, "iauth_1Pgc77B7WZ01zgkWn0SmtHBY");
    assert_eq!(auth.status, AuthorizationStatus::Pending);
    assert_eq!(auth.card_id(), "ic_1Pgag5B7WZ01zgkWephORn8N");
    assert_eq!(auth.cardholder_id(), Some("ich_1Pgag4B7WZ01zgkWdPVfBngi"));
    assert_eq!(auth.merchant_data.category, "taxicabs_limousines");
    assert_eq!(auth.merchant_data.name.as_deref(), Some("Rocket Rides"));
    let pending = auth.pending_request.as_ref().unwrap();
    assert_eq!((pending.amount, pending.currency), (700, Currency::USD));
    assert_eq!(auth.requested().amount, 700);
    assert!(auth.request_history.is_empty());
    assert_eq!(auth.decline_reason(), None);
    assert_eq!(event.partition_key(), "ic_1Pgag5B7WZ01zgkWephORn8N");
}

#[test]
fn transaction_fixture_is_a_negative_capture() {
    let event = event_around(
        "issuing_transaction.created",
        &fixture("issuing.transaction.json"),
    );
    let Object::Transaction(txn) = event.object().unwrap() else {
        panic!("not a transaction")
    };
    assert_eq!(txn.kind, TransactionType::Capture);
    assert_eq!(txn.amount, -100);
    assert_eq!(txn.spend(), 100);
    assert_eq!(
        txn.authorization.as_ref().unwrap().id(),
        "iauth_1Pgc78B7WZ01zgkW9IPKCfII"
    );
    assert_eq!(txn.card.id(), "ic_1Pgag5B7WZ01zgkWephORn8N");
    assert_eq!(event.partition_key(), "ic_1Pgag5B7WZ01zgkWephORn8N");
}

#[test]
fn dispute_fixture_parses() {
    let event = event_around("issuing_dispute.created", &fixture("issuing.dispute.json"));
    let Object::Dispute(dispute) = event.object().unwrap() else {
        panic!("not a dispute")
    };
    assert_eq!(dispute.amount, 100);
    assert_eq!(dispute.transaction.id(), "ipi_1Pgc77B7WZ01zgkWUr0uYdLL");
    assert_eq!(dispute.evidence.reason.as_deref(), Some("fraudulent"));
}

#[test]
fn card_and_cardholder_inside_the_authorization_fixture_parse_as_events() {
    let auth: Value = serde_json::from_str(&fixture("issuing.authorization.json")).unwrap();
    let card = auth["card"].to_string();
    let cardholder = auth["card"]["cardholder"].to_string();
    let Object::Card(card) = event_around("issuing_card.created", &card)
        .object()
        .unwrap()
    else {
        panic!("not a card")
    };
    assert_eq!(card.last4.as_deref(), Some("4242"));
    assert_eq!(card.cardholder.id(), "ich_1Pgag4B7WZ01zgkWdPVfBngi");
    let Object::Cardholder(holder) = event_around("issuing_cardholder.created", &cardholder)
        .object()
        .unwrap()
    else {
        panic!("not a cardholder")
    };
    assert_eq!(holder.name.as_deref(), Some("Jenny Rosen"));
}

#[test]
fn event_fixture_of_an_unknown_type_is_kept_raw() {
    let event = Event::parse(fixture("event.json").as_bytes()).unwrap();
    assert_eq!(event.kind, "plan.created");
    assert_eq!(event.id, "evt_1Pgc76B7WZ01zgkWwyRHS12y");
    let Object::Other(raw) = event.object().unwrap() else {
        panic!("unknown types must stay raw")
    };
    assert_eq!(raw["id"], "price_1PgafmB7WZ01zgkW6dKueIc5");
    assert_eq!(event.partition_key(), "price_1PgafmB7WZ01zgkW6dKueIc5");
}

#[test]
fn unknown_fields_are_tolerated() {
    let mut txn: Value = serde_json::from_str(&fixture("issuing.transaction.json")).unwrap();
    txn["a_field_from_the_future"] = json!({"nested": [1, 2, 3]});
    txn["type"] = json!("adjustment");
    let Object::Transaction(txn) = event_around("issuing_transaction.updated", &txn.to_string())
        .object()
        .unwrap()
    else {
        panic!("not a transaction")
    };
    assert_eq!(txn.kind, TransactionType::Other("adjustment".into()));
}

#[test]
fn a_known_type_with_a_broken_object_names_the_type() {
    let err = event_around("issuing_transaction.created", r#"{"id":"ipi_1"}"#)
        .object()
        .unwrap_err();
    assert!(
        err.to_string().contains("issuing_transaction.created"),
        "{err}"
    );
}

fn vectors() -> Vec<Value> {
    serde_json::from_str(&fixture("signature-vectors.json")).unwrap()
}

#[test]
fn published_header_vector_verifies_and_ignores_v0() {
    let v = &vectors()[0];
    let secret = WebhookSecret::new(v["secret"].as_str().unwrap());
    let verifier = Verifier::new(&[secret], 300).unwrap();
    let payload = v["payload"].as_str().unwrap().as_bytes();
    let header = v["header"].as_str().unwrap().as_bytes();
    let now = v["timestamp"].as_i64().unwrap();
    let parsed = verifier.verify(Some(header), payload, now).unwrap();
    assert_eq!(parsed.timestamp, 1533204620);
    // The v0 value alone must not verify: only v1 counts.
    let v0_only =
        b"t=1533204620,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
    assert!(verifier.verify(Some(v0_only), payload, now).is_err());
    // The same header is stale ten minutes later.
    assert_eq!(
        verifier
            .verify(Some(header), payload, now + 600)
            .unwrap_err()
            .code(),
        "timestamp_outside_tolerance"
    );
}

#[test]
fn published_raw_hmac_vectors_match() {
    let raw: Vec<_> = vectors()
        .into_iter()
        .filter(|v| v.get("expected_hmac_hex").is_some())
        .collect();
    assert_eq!(raw.len(), 3);
    for v in raw {
        let got = signature::hmac_hex(
            v["secret"].as_str().unwrap(),
            v["message"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(
            got,
            v["expected_hmac_hex"].as_str().unwrap(),
            "{}",
            v["message"]
        );
    }
}

#[test]
fn rolled_secret_vector_verifies_for_either_secret() {
    let v = vectors()
        .into_iter()
        .find(|v| v.get("header_rolled").is_some())
        .unwrap();
    let first = WebhookSecret::new(v["secret"].as_str().unwrap());
    let second = WebhookSecret::new(v["second_secret"].as_str().unwrap());
    let payload = v["payload"].as_str().unwrap().as_bytes();
    let t = v["timestamp"].as_i64().unwrap();
    assert_eq!(
        signature::sign(&first, t, payload),
        v["v1"].as_str().unwrap()
    );
    assert_eq!(
        signature::sign(&second, t, payload),
        v["v1_for_second_secret"].as_str().unwrap()
    );
    let rolled = v["header_rolled"].as_str().unwrap().as_bytes();
    for secrets in [
        vec![first.clone()],
        vec![second.clone()],
        vec![first, second],
    ] {
        let verifier = Verifier::new(&secrets, 300).unwrap();
        assert!(verifier.verify(Some(rolled), payload, t + 300).is_ok());
        assert!(verifier.verify(Some(rolled), payload, t - 300).is_ok());
        assert_eq!(
            verifier.verify(Some(rolled), payload, t + 301),
            Err(SignatureError::OutsideTolerance {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
    }
    let stranger = Verifier::new(&[WebhookSecret::new("whsec_other")], 300).unwrap();
    assert_eq!(
        stranger.verify(Some(rolled), payload, t),
        Err(SignatureError::NoMatch)
    );
}
