//! Stripe-shaped JSON for the simulated objects, with the fields Stripe sends (not only the ones
//! cardstream reads), so that events have a realistic size (about 2 KB for an authorization).

use serde_json::{Value, json};

use crate::world::{Card, Cardholder, Merchant, World};

/// The Stripe API version the simulated events are sent with.
pub const API_VERSION: &str = "2024-06-20";

fn address(city: (&str, &str, &str)) -> Value {
    json!({
        "city": city.0, "country": city.2, "line1": "1234 Main Street", "line2": null,
        "postal_code": "94111", "state": if city.1.is_empty() { Value::Null } else { city.1.into() },
    })
}

fn spending_controls() -> Value {
    json!({
        "allowed_categories": null, "allowed_merchant_countries": null,
        "blocked_categories": null, "blocked_merchant_countries": null,
        "spending_limits": [], "spending_limits_currency": null,
        "allowed_card_presences": null, "blocked_card_presences": null,
    })
}

pub(crate) fn cardholder(holder: &Cardholder, active: bool) -> Value {
    json!({
        "id": holder.id,
        "object": "issuing.cardholder",
        "billing": {"address": address(holder.city)},
        "company": null,
        "created": holder.created,
        "email": holder.email(),
        "individual": {
            "card_issuing": {"user_terms_acceptance": {"date": holder.created, "ip": "91.121.146.224", "user_agent": null}},
            "dob": null, "first_name": holder.first_name, "last_name": holder.last_name,
            "verification": {"document": {"back": null, "front": null}},
        },
        "livemode": false,
        "metadata": {},
        "name": holder.name(),
        "phone_number": "+18008675309",
        "preferred_locales": ["en"],
        "requirements": {"disabled_reason": null, "past_due": []},
        "spending_controls": spending_controls(),
        "status": if active { "active" } else { "inactive" },
        "type": "individual",
    })
}

pub(crate) fn card(world: &World, card: &Card) -> Value {
    let holder = &world.cardholders[card.cardholder];
    json!({
        "id": card.id,
        "object": "issuing.card",
        "brand": "Visa",
        "cancellation_reason": null,
        "cardholder": cardholder(holder, true),
        "created": card.created,
        "currency": card.currency,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "last4": card.last4,
        "livemode": false,
        "metadata": {},
        "personalization_design": null,
        "replaced_by": null,
        "replacement_for": null,
        "replacement_reason": null,
        "shipping": null,
        "spending_controls": spending_controls(),
        "status": if card.active { "active" } else { "inactive" },
        "type": if card.physical { "physical" } else { "virtual" },
        "wallets": {
            "apple_pay": {"eligible": true, "ineligible_reason": null},
            "google_pay": {"eligible": true, "ineligible_reason": null},
            "primary_account_identifier": null,
        },
    })
}

pub(crate) fn merchant_data(merchant: &Merchant) -> Value {
    json!({
        "category": merchant.category,
        "category_code": merchant.category_code,
        "city": merchant.city.0,
        "country": merchant.city.2,
        "name": merchant.name,
        "network_id": merchant.network_id,
        "postal_code": "94107",
        "state": if merchant.city.1.is_empty() { Value::Null } else { merchant.city.1.into() },
        "terminal_id": null,
        "url": null,
        "tax_id": null,
    })
}

/// Wraps an object in an event envelope.
pub(crate) fn event(
    id: &str,
    kind: &str,
    created: i64,
    object: Value,
    previous: Option<Value>,
) -> Value {
    let mut data = json!({"object": object});
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    json!({
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
    })
}
