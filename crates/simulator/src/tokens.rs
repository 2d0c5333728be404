//! Wallet tokens: some cards are added to Apple Pay, Google Pay or Samsung Pay, and many of
//! their purchases are then made with the wallet (the authorization carries `token` and
//! `wallet`). Drawn from a generator of their own, so that every seed's purchases stay as
//! they were without tokens.

use cardstream_stripe::types;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::ids::stripe_id;
use crate::script::{Endpoint, SimEvent};
use crate::world::World;

const WALLETS: [&str; 3] = ["apple_pay", "google_pay", "samsung_pay"];
const DEVICES: [&str; 2] = ["phone", "watch"];

/// A card's token in a wallet.
#[derive(Debug, Clone)]
pub(crate) struct WalletToken {
    pub(crate) id: String,
    pub(crate) wallet: &'static str,
}

/// Provisions tokens for about two cards in five: for each, `issuing_token.created`
/// (`requested`) then `issuing_token.updated` (`active`), and for one in eight of those a
/// later `suspended`. Returns the events and, per card, the token its purchases may use (an
/// active one).
pub(crate) fn provision(seed: u64, world: &World) -> (Vec<SimEvent>, Vec<Option<WalletToken>>) {
    let mut draws = ChaCha8Rng::seed_from_u64(seed ^ 0x746f_6b65_6e73);
    let mut events = Vec::new();
    let mut tokens = Vec::with_capacity(world.cards.len());
    for card in &world.cards {
        if !draws.random_bool(0.4) {
            tokens.push(None);
            continue;
        }
        let wallet = WALLETS[draws.random_range(0..WALLETS.len())];
        let device = DEVICES[draws.random_range(0..DEVICES.len())];
        let id = stripe_id(&mut draws, "intok");
        let last4 = format!("{:04}", draws.random_range(0..10_000));
        let created = card.created + 30;
        let mut token = json!({
            "id": id, "object": "issuing.token", "card": card.id, "created": created,
            "device_fingerprint": stripe_id(&mut draws, "dfp"), "last4": last4, "livemode": false,
            "network": "visa",
            "network_data": {
                "device": {"device_fingerprint": null, "ip_address": null, "location": null,
                           "name": null, "phone_number": null, "type": device},
                "type": "visa",
                "visa": {"card_reference_id": stripe_id(&mut draws, "vcr"),
                         "token_reference_id": stripe_id(&mut draws, "vtr"),
                         "token_requestor_id": "40010030273", "token_risk_score": null},
                "wallet_provider": {"account_id": null, "suggested_decision": "approve"},
            },
            "network_updated_at": created,
            "status": "requested",
            "wallet_provider": wallet,
        });
        let mut step = |status: &str, at: i64, token: &mut Value, draws: &mut ChaCha8Rng| {
            let kind = if status == "requested" {
                types::TOKEN_CREATED
            } else {
                types::TOKEN_UPDATED
            };
            let previous = (status != "requested").then(|| json!({"status": token["status"]}));
            token["status"] = status.into();
            token["network_updated_at"] = at.into();
            let event_id = stripe_id(draws, "evt");
            events.push(SimEvent::new(
                Endpoint::Events,
                event_id,
                kind,
                at,
                token.clone(),
                previous,
            ));
        };
        step("requested", created, &mut token, &mut draws);
        step("active", created + 30, &mut token, &mut draws);
        if draws.random_bool(0.125) {
            step("suspended", created + 90, &mut token, &mut draws);
            tokens.push(None);
        } else {
            tokens.push(Some(WalletToken { id, wallet }));
        }
    }
    (events, tokens)
}
