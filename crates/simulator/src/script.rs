//! The deterministic script of a simulation: first the cardholders and cards, then purchases
//! forever. A purchase's follow-up events depend only on its own draws and on the answer the
//! gateway gave, so the same seed and the same answers give the same events.

use std::collections::VecDeque;

use bytes::Bytes;
use cardstream_stripe::{Currency, types};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::ids::stripe_id;
use crate::objects;
use crate::rhythm;
use crate::tokens::{self, WalletToken};
use crate::world::World;

/// Where an event is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /webhooks/stripe`
    Events,
    /// `POST /webhooks/stripe/authorization`
    Authorization,
}

/// One webhook body ready to sign and send.
#[derive(Debug, Clone)]
pub struct SimEvent {
    pub id: String,
    pub kind: &'static str,
    pub endpoint: Endpoint,
    pub body: Bytes,
}

impl SimEvent {
    pub(crate) fn new(
        endpoint: Endpoint,
        id: String,
        kind: &'static str,
        created: i64,
        object: Value,
        previous: Option<Value>,
    ) -> Self {
        let body = objects::event(&id, kind, created, object, previous).to_string();
        SimEvent {
            id,
            kind,
            endpoint,
            body: Bytes::from(body),
        }
    }
}

/// What the gateway said to an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Approved {
        reason: String,
    },
    Declined {
        reason: String,
    },
    /// Approved for `amount`, less than asked (the answer's `amount`): Stripe holds that much,
    /// and the merchant captures at most that.
    PartiallyApproved {
        reason: String,
        amount: i64,
    },
    /// No usable answer (error status, timeout): Stripe declines with `webhook_error`.
    NoAnswer,
}

/// How an approved purchase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// One capture of the whole amount.
    Capture,
    /// One capture of part of the amount (a tip-less restaurant bill, a fuel pre-auth).
    Partial(i64),
    /// Two captures summing to the amount (split shipment).
    Split(i64, i64),
    /// No capture: the merchant released the hold.
    Reversal,
    /// A full capture, then a refund of this much.
    Refunded(i64),
}

/// One purchase: its draws, and the events that follow once the answer is known.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub authorization_id: String,
    pub card_id: String,
    pub amount: i64,
    pub currency: Currency,
    pub category: &'static str,
    /// The merchant's currency: the card's, or another for a purchase abroad.
    pub merchant_currency: Currency,
    created: i64,
    card: Value,
    cardholder_id: String,
    merchant: Value,
    /// Set when Stripe itself declines before asking (inactive card, fraud); then there is no
    /// request to the authorization endpoint.
    stripe_decline: Option<&'static str>,
    ending: Ending,
    request_event_id: String,
    network_risk_score: u32,
    /// Seeds the ids of the follow-up events, so they do not depend on when they are built.
    rng_seed: u64,
    /// The wallet token it is paid with, if any.
    token: Option<WalletToken>,
}

/// A step of the script.
#[derive(Debug, Clone)]
pub enum Step {
    /// An event to deliver as it is.
    Event(SimEvent),
    /// A purchase: ask for a decision (if Stripe would), then deliver its follow-ups.
    Purchase(Box<Purchase>),
}

/// The simulation's script.
#[derive(Debug)]
pub struct Script {
    rng: ChaCha8Rng,
    world: World,
    setup: VecDeque<SimEvent>,
    /// Fixed start time for reproducible timestamps; `None` follows the wall clock.
    start: Option<i64>,
    time_step_ms: i64,
    /// The times of the history's purchases still to come, oldest first (`with_history`); the
    /// script goes on as `start` says once they are done.
    history: VecDeque<i64>,
    purchases: u64,
    /// Per card, the active wallet token its purchases may be made with.
    tokens: Vec<Option<WalletToken>>,
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Script {
    /// `start`: fixed timestamp of the first purchase, each next one `time_step_ms` later; with
    /// `None`, events carry the time at which they are generated.
    pub fn new(seed: u64, cards: usize, start: Option<i64>, time_step_ms: i64) -> Script {
        Script::starting(seed, cards, start, time_step_ms, None)
    }

    /// A script that first makes `purchases` purchases spread over the `days` up to now, with
    /// a program's weekly and daily rhythm (see `rhythm`), its cards made before them; then
    /// goes on with the wall clock, as [`Script::new`] with no `start` does.
    pub fn with_history(seed: u64, cards: usize, days: u32, purchases: u64) -> Script {
        let now = unix_now();
        let from = now - i64::from(days) * 86_400;
        Script::starting(seed, cards, None, 1000, Some((from, now, purchases)))
    }

    fn starting(
        seed: u64,
        cards: usize,
        start: Option<i64>,
        time_step_ms: i64,
        history: Option<(i64, i64, u64)>,
    ) -> Script {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let origin = history.map_or_else(|| start.unwrap_or_else(unix_now), |(from, _, _)| from);
        let world = World::new(&mut rng, cards, origin);
        let mut setup = VecDeque::new();
        for holder in &world.cardholders {
            let id = stripe_id(&mut rng, "evt");
            let object = objects::cardholder(holder, true);
            setup.push_back(SimEvent::new(
                Endpoint::Events,
                id,
                types::CARDHOLDER_CREATED,
                holder.created,
                object,
                None,
            ));
        }
        for card in &world.cards {
            let id = stripe_id(&mut rng, "evt");
            let object = objects::card(&world, card);
            setup.push_back(SimEvent::new(
                Endpoint::Events,
                id,
                types::CARD_CREATED,
                card.created,
                object,
                None,
            ));
        }
        let (provisioned, tokens) = tokens::provision(seed, &world);
        setup.extend(provisioned);
        // Its own generator, so that a history does not change the world a seed makes.
        let history = history.map_or_else(VecDeque::new, |(from, to, count)| {
            let mut times = ChaCha8Rng::seed_from_u64(seed ^ 0x6869_7374);
            rhythm::history(&mut times, from, to, count).into()
        });
        Script {
            rng,
            world,
            setup,
            start,
            time_step_ms: time_step_ms.max(0),
            history,
            purchases: 0,
            tokens,
        }
    }

    /// Whether the history's purchases are still being made (they are sent unpaced).
    pub fn in_history(&self) -> bool {
        !self.history.is_empty()
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    fn now(&self) -> i64 {
        if let Some(&t) = self.history.front() {
            return t;
        }
        match self.start {
            Some(start) => {
                let offset = i64::try_from(self.purchases)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(self.time_step_ms)
                    / 1000;
                start.saturating_add(offset)
            }
            None => unix_now(),
        }
    }

    /// The next step. Setup events come first; then, now and then, a card is frozen or
    /// unfrozen (an `issuing_card.updated`), and otherwise a purchase.
    pub fn next_step(&mut self) -> Step {
        if let Some(event) = self.setup.pop_front() {
            return Step::Event(event);
        }
        if self.rng.random_bool(0.002) {
            return Step::Event(self.toggle_card());
        }
        Step::Purchase(Box::new(self.purchase()))
    }

    fn toggle_card(&mut self) -> SimEvent {
        let index = self.world.pick_card(&mut self.rng);
        let was_active = self.world.cards[index].active;
        self.world.cards[index].active = !was_active;
        let id = stripe_id(&mut self.rng, "evt");
        let object = objects::card(&self.world, &self.world.cards[index]);
        let previous = json!({"status": if was_active { "active" } else { "inactive" }});
        SimEvent::new(
            Endpoint::Events,
            id,
            types::CARD_UPDATED,
            self.now(),
            object,
            Some(previous),
        )
    }

    fn purchase(&mut self) -> Purchase {
        let created = self.now();
        if self.history.pop_front().is_none() {
            self.purchases += 1;
        }
        let rng = &mut self.rng;
        let card_index = self.world.pick_card(rng);
        let merchant_index = self.world.pick_merchant(rng);
        let card = &self.world.cards[card_index];
        let amount = self.world.amount(rng, merchant_index, card.currency);
        let stripe_decline = if !card.active {
            Some("card_inactive")
        } else if rng.random_bool(0.02) {
            Some(
                [
                    "insufficient_funds",
                    "suspected_fraud",
                    "verification_failed",
                ][rng.random_range(0..3)],
            )
        } else {
            None
        };
        let roll: f64 = rng.random();
        let ending = if roll < 0.70 {
            Ending::Capture
        } else if roll < 0.80 {
            Ending::Partial((amount * rng.random_range(80..100) / 100).max(1))
        } else if roll < 0.88 && amount >= 2 {
            let first = rng.random_range(1..amount);
            Ending::Split(first, amount - first)
        } else if roll < 0.95 {
            Ending::Reversal
        } else {
            let refund = if rng.random_bool(0.5) {
                amount
            } else {
                (amount / 2).max(1)
            };
            Ending::Refunded(refund)
        };
        let authorization_id = stripe_id(rng, "iauth");
        let request_event_id = stripe_id(rng, "evt");
        let network_risk_score = rng.random_range(0..30);
        let rng_seed: u64 = rng.random();
        // Two purchases in three on a card in a wallet are made with it (from the seed just
        // drawn: no draw of its own, so the other purchases stay as they were).
        let token = self.tokens[card_index]
            .clone()
            .filter(|_| !rng_seed.is_multiple_of(3));
        Purchase {
            authorization_id,
            card_id: card.id.clone(),
            amount,
            currency: card.currency,
            category: self.world.merchants[merchant_index].category,
            merchant_currency: merchant_currency(merchant_index, card.currency),
            created,
            card: objects::card(&self.world, card),
            cardholder_id: self.world.cardholders[card.cardholder].id.clone(),
            merchant: objects::merchant_data(&self.world.merchants[merchant_index]),
            stripe_decline,
            ending,
            request_event_id,
            network_risk_score,
            rng_seed,
            token,
        }
    }
}

/// One merchant in six charges in another currency than the card's (a purchase abroad):
/// euros on a dollar card, dollars on the others. From the merchant's index, so that the
/// random draws, and with them every seed's world, stay as they were.
fn merchant_currency(merchant_index: usize, card: Currency) -> Currency {
    match (merchant_index % 6, card) {
        (5, Currency::USD) => Currency::EUR,
        (5, _) => Currency::USD,
        _ => card,
    }
}

/// Dollars per unit of each currency: fixed, a simulation's exchange rates.
fn usd_per_unit(currency: Currency) -> f64 {
    match currency {
        Currency::EUR => 1.08,
        Currency::GBP => 1.27,
        Currency::JPY => 0.0067,
        _ => 1.0,
    }
}

impl Purchase {
    /// `amount` (minor units of the card's currency) in the merchant's currency: what the
    /// merchant charged, before the network converted it to the card's.
    pub fn merchant_amount(&self, amount: i64) -> i64 {
        if self.merchant_currency == self.currency {
            return amount;
        }
        let units = amount as f64 / 10f64.powi(self.currency.exponent() as i32);
        let dollars = units * usd_per_unit(self.currency);
        let theirs = dollars / usd_per_unit(self.merchant_currency);
        (theirs * 10f64.powi(self.merchant_currency.exponent() as i32)).round() as i64
    }

    /// Whether Stripe lets the approved amount differ from the asked one: at a fuel pump, as
    /// in Stripe's programs, where the pump stops at what was approved.
    pub fn amount_controllable(&self) -> bool {
        self.category == "automated_fuel_dispensers"
    }

    /// The `issuing_authorization.request` to the authorization endpoint, unless Stripe
    /// declines by itself.
    pub fn request(&self) -> Option<SimEvent> {
        if self.stripe_decline.is_some() {
            return None;
        }
        let pending = json!({
            "amount": self.amount, "amount_details": {"atm_fee": null, "cashback_amount": null},
            "currency": self.currency, "is_amount_controllable": self.amount_controllable(),
            "merchant_amount": self.merchant_amount(self.amount), "merchant_currency": self.merchant_currency,
            "network_risk_score": self.network_risk_score,
        });
        let object = self.authorization(
            0,
            false,
            "pending",
            Some(pending),
            json!([]),
            json!([]),
            json!({}),
        );
        Some(SimEvent::new(
            Endpoint::Authorization,
            self.request_event_id.clone(),
            types::AUTHORIZATION_REQUEST,
            self.created,
            object,
            None,
        ))
    }

    /// The events that follow the decision, in the order Stripe would create them.
    pub fn follow_ups(&self, answer: &Answer) -> Vec<SimEvent> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.rng_seed);
        let t = self.created;
        let (approved, reason, metadata) = match (self.stripe_decline, answer) {
            (Some(reason), _) => (false, reason.to_owned(), json!({})),
            (None, Answer::Approved { reason } | Answer::PartiallyApproved { reason, .. }) => (
                true,
                "webhook_approved".to_owned(),
                json!({"cardstream_reason": reason}),
            ),
            (None, Answer::Declined { reason }) => (
                false,
                "webhook_declined".to_owned(),
                json!({"cardstream_reason": reason}),
            ),
            (None, Answer::NoAnswer) => (false, "webhook_error".to_owned(), json!({})),
        };
        // What Stripe holds: all of it, or what a partial approval gave (never more than asked).
        let held = match answer {
            Answer::PartiallyApproved { amount, .. } if self.stripe_decline.is_none() => {
                (*amount).clamp(0, self.amount)
            }
            _ => self.amount,
        };
        let history = json!([{
            "amount": held, "amount_details": {"atm_fee": null, "cashback_amount": null},
            "approved": approved, "authorization_code": null, "created": t,
            "currency": self.currency, "merchant_amount": self.merchant_amount(held),
            "merchant_currency": self.merchant_currency, "reason": reason, "reason_message": null,
            "requested_at": t,
        }]);
        let mut events = Vec::new();
        let mut event = |rng: &mut ChaCha8Rng, kind, created, object, previous| {
            events.push(SimEvent::new(
                Endpoint::Events,
                stripe_id(rng, "evt"),
                kind,
                created,
                object,
                previous,
            ));
        };
        if !approved {
            let object = self.authorization(0, false, "closed", None, history, json!([]), metadata);
            event(&mut rng, types::AUTHORIZATION_CREATED, t, object, None);
            return events;
        }
        let pending = self.authorization(
            held,
            true,
            "pending",
            None,
            history.clone(),
            json!([]),
            metadata.clone(),
        );
        event(&mut rng, types::AUTHORIZATION_CREATED, t, pending, None);
        // Now and then what programs meet besides one capture per purchase (one draw, from
        // this purchase's own generator, so other purchases stay as they were): a tip captured
        // over the authorized amount, the capture corrected later, a second charge the merchant
        // made without asking (a force capture), a refund of a purchase never seen captured.
        let odd: f64 = rng.random();
        let over_capture = odd < 0.02 && held == self.amount;
        // The merchant captures at most what was held, but for an over-capture (a tip).
        let captures: Vec<i64> = match self.ending {
            Ending::Capture if over_capture => vec![held + (held / 10).max(1)],
            Ending::Capture | Ending::Refunded(_) => vec![held],
            Ending::Partial(amount) => vec![amount.min(held)],
            Ending::Split(a, b) if a + b <= held => vec![a, b],
            Ending::Split(..) => vec![held],
            Ending::Reversal => vec![],
        };
        let mut transactions = Vec::new();
        for (i, amount) in captures.iter().enumerate() {
            let txn = self.transaction(&mut rng, -amount, "capture", t + 2 + i as i64);
            event(
                &mut rng,
                types::TRANSACTION_CREATED,
                t + 2 + i as i64,
                txn.clone(),
                None,
            );
            transactions.push(txn);
        }
        let status = if captures.is_empty() {
            "reversed"
        } else {
            "closed"
        };
        let first_capture = transactions.first().cloned();
        let disputed = first_capture
            .clone()
            .filter(|_| (0.07..0.09).contains(&odd));
        let closed = self.authorization(
            0,
            true,
            status,
            None,
            history,
            Value::Array(transactions),
            metadata,
        );
        let previous = json!({"amount": held, "status": "pending"});
        event(
            &mut rng,
            types::AUTHORIZATION_UPDATED,
            t + 5,
            closed,
            Some(previous),
        );
        if let Ending::Refunded(amount) = self.ending {
            let refund = self.transaction(&mut rng, amount.min(held), "refund", t + 60);
            event(&mut rng, types::TRANSACTION_CREATED, t + 60, refund, None);
        }
        match (odd, first_capture) {
            // The capture corrected by the merchant: a tenth less.
            (odd, Some(mut capture)) if (0.02..0.04).contains(&odd) => {
                let before = capture["amount"].as_i64().unwrap_or(0);
                let after = before - before / 10;
                capture["amount"] = after.into();
                capture["merchant_amount"] = self.merchant_amount(after).into();
                let previous = json!({"amount": before});
                event(
                    &mut rng,
                    types::TRANSACTION_UPDATED,
                    t + 6,
                    capture,
                    Some(previous),
                );
            }
            // A second charge without an authorization: a force capture.
            (odd, _) if (0.04..0.06).contains(&odd) => {
                let mut charge =
                    self.transaction(&mut rng, -(self.amount / 4).max(1), "capture", t + 7);
                charge["authorization"] = Value::Null;
                event(&mut rng, types::TRANSACTION_CREATED, t + 7, charge, None);
            }
            // A refund with nothing captured to match it.
            (odd, _) if (0.06..0.07).contains(&odd) => {
                let mut refund =
                    self.transaction(&mut rng, (self.amount / 5).max(1), "refund", t + 90);
                refund["authorization"] = Value::Null;
                event(&mut rng, types::TRANSACTION_CREATED, t + 90, refund, None);
            }
            _ => {}
        }
        if let Some(capture) = disputed {
            for (kind, created, dispute) in self.dispute(&mut rng, &capture, t) {
                event(&mut rng, kind, created, dispute, None);
            }
        }
        events
    }

    /// A dispute opened on `capture` and driven through Stripe's lifecycle: created, then
    /// never submitted (expired), or submitted and closed lost, or won with its funds
    /// reinstated (now and then taken back again: rescinded).
    fn dispute(
        &self,
        rng: &mut ChaCha8Rng,
        capture: &Value,
        t: i64,
    ) -> Vec<(&'static str, i64, Value)> {
        const REASONS: [&str; 6] = [
            "fraudulent",
            "not_received",
            "duplicate",
            "merchandise_not_as_described",
            "canceled",
            "other",
        ];
        let outcome: f64 = rng.random();
        let opened = t + 120;
        let mut dispute = json!({
            "id": stripe_id(rng, "idp"),
            "object": "issuing.dispute",
            "amount": -capture["amount"].as_i64().unwrap_or(0),
            "balance_transactions": null,
            "created": opened,
            "currency": self.currency,
            "evidence": {"reason": REASONS[rng.random_range(0..REASONS.len())]},
            "livemode": false,
            "loss_reason": null,
            "metadata": {},
            "status": "unsubmitted",
            "transaction": capture["id"],
        });
        let mut steps = vec![(types::DISPUTE_CREATED, opened, dispute.clone())];
        let mut step = |kind, after: i64, status: &str, dispute: &mut Value| {
            dispute["status"] = status.into();
            steps.push((kind, opened + after, dispute.clone()));
        };
        if outcome < 0.15 {
            step(types::DISPUTE_CLOSED, 300, "expired", &mut dispute);
            return steps;
        }
        step(types::DISPUTE_SUBMITTED, 60, "submitted", &mut dispute);
        if outcome < 0.45 {
            dispute["loss_reason"] = "evidence_not_sufficient".into();
            step(types::DISPUTE_CLOSED, 120, "lost", &mut dispute);
            return steps;
        }
        step(types::DISPUTE_CLOSED, 120, "won", &mut dispute);
        step(types::DISPUTE_FUNDS_REINSTATED, 130, "won", &mut dispute);
        if outcome >= 0.9 {
            step(types::DISPUTE_FUNDS_RESCINDED, 180, "won", &mut dispute);
        }
        steps
    }

    #[allow(clippy::too_many_arguments)]
    fn authorization(
        &self,
        amount: i64,
        approved: bool,
        status: &str,
        pending: Option<Value>,
        history: Value,
        transactions: Value,
        metadata: Value,
    ) -> Value {
        // Stripe's own `verification_failed` decline is a CVC that did not match.
        let cvc_check = match self.stripe_decline {
            Some("verification_failed") => "mismatch",
            _ => "match",
        };
        json!({
            "id": self.authorization_id,
            "object": "issuing.authorization",
            "amount": amount,
            "amount_details": {"atm_fee": null, "cashback_amount": null},
            "approved": approved,
            "authorization_method": "online",
            "balance_transactions": [],
            "card": self.card,
            "cardholder": self.cardholder_id,
            "created": self.created,
            "currency": self.currency,
            "livemode": false,
            "merchant_amount": self.merchant_amount(amount),
            "merchant_currency": self.merchant_currency,
            "merchant_data": self.merchant,
            "metadata": metadata,
            "network_data": {
                "acquiring_institution_id": "000100",
                "system_trace_audit_number": null,
                "transaction_id": format!("NT{}", &self.authorization_id[6..]),
            },
            "pending_request": pending,
            "request_history": history,
            "status": status,
            "token": self.token.as_ref().map(|t| t.id.clone()),
            "transactions": transactions,
            "verification_data": {
                "address_line1_check": "not_provided", "address_postal_code_check": "match",
                "authentication_exemption": null, "cvc_check": cvc_check, "expiry_check": "match",
                "postal_code": null, "three_d_secure": null,
            },
            "wallet": self.token.as_ref().map(|t| t.wallet),
        })
    }

    fn transaction(&self, rng: &mut ChaCha8Rng, amount: i64, kind: &str, created: i64) -> Value {
        json!({
            "id": stripe_id(rng, "ipi"),
            "object": "issuing.transaction",
            "amount": amount,
            "amount_details": {"atm_fee": null, "cashback_amount": null},
            "authorization": self.authorization_id,
            "balance_transaction": null,
            "card": self.card_id,
            "cardholder": self.cardholder_id,
            "created": created,
            "currency": self.currency,
            "dispute": null,
            "livemode": false,
            "merchant_amount": self.merchant_amount(amount),
            "merchant_currency": self.merchant_currency,
            "merchant_data": self.merchant,
            "metadata": {},
            "network_data": {"authorization_code": null, "processing_date": null, "transaction_id": null},
            "token": self.token.as_ref().map(|t| t.id.clone()),
            "type": kind,
            "wallet": self.token.as_ref().map(|t| t.wallet),
        })
    }
}
