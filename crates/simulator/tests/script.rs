//! The simulator's events: reproducible, Stripe-shaped, and consistent with the answers given.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use cardstream_simulator::{Answer, Endpoint, SimEvent, generate};
use cardstream_stripe::{Currency, Event, Object, TransactionType, types};

const START: i64 = 1_760_000_000;

fn approve_all(_: &cardstream_simulator::Purchase) -> Answer {
    Answer::Approved {
        reason: "approved".into(),
    }
}

fn parse(events: &[SimEvent]) -> Vec<(Event, Object)> {
    events
        .iter()
        .map(|e| {
            let event = Event::parse(&e.body).unwrap();
            let object = event.object().unwrap();
            assert_eq!(event.id, e.id);
            assert_eq!(event.kind, e.kind);
            (event, object)
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_events_and_another_seed_does_not() {
    let a = generate(7, 30, START, 300, approve_all);
    let b = generate(7, 30, START, 300, approve_all);
    let c = generate(8, 30, START, 300, approve_all);
    let bodies = |v: &[SimEvent]| v.iter().map(|e| e.body.clone()).collect::<Vec<_>>();
    assert_eq!(bodies(&a), bodies(&b));
    assert_ne!(bodies(&a), bodies(&c));
}

#[test]
fn events_are_stripe_shaped_and_parse_with_the_model() {
    let events = generate(1, 50, START, 2000, approve_all);
    let parsed = parse(&events);
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    for (event, object) in &parsed {
        assert!(
            event.id.starts_with("evt_1") && event.id.len() == 28,
            "{}",
            event.id
        );
        let id = match object {
            Object::Authorization(a) => &a.id,
            Object::Transaction(t) => &t.id,
            Object::Card(c) => &c.id,
            Object::Cardholder(h) => &h.id,
            Object::Dispute(d) => &d.id,
            Object::Token(t) => &t.id,
            other => panic!("unexpected object {other:?}"),
        };
        let prefix = id.split('_').next().unwrap();
        assert!(
            ["iauth", "ipi", "ic", "ich", "idp", "intok"].contains(&prefix),
            "{id}"
        );
    }
    // Cardholders and cards come first, then the wallet tokens of some cards.
    let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    let first_purchase = kinds
        .iter()
        .position(|k| k.starts_with("issuing_authorization"))
        .unwrap();
    assert!(kinds[..first_purchase].iter().all(|k| {
        [
            types::CARDHOLDER_CREATED,
            types::CARD_CREATED,
            types::TOKEN_CREATED,
            types::TOKEN_UPDATED,
        ]
        .contains(k)
    }));
    assert_eq!(
        kinds.iter().filter(|k| **k == types::CARD_CREATED).count(),
        50
    );
    // Authorization events are about 2 KB, as Stripe's are.
    let auth_sizes: Vec<usize> = events
        .iter()
        .filter(|e| e.kind == types::AUTHORIZATION_CREATED)
        .map(|e| e.body.len())
        .collect();
    let mean = auth_sizes.iter().sum::<usize>() / auth_sizes.len();
    assert!(
        (1500..4000).contains(&mean),
        "mean authorization event is {mean} bytes"
    );
}

#[test]
fn traffic_spreads_over_categories_with_skew_and_several_currencies() {
    let events = generate(3, 200, START, 5000, approve_all);
    let mut categories: BTreeMap<String, usize> = BTreeMap::new();
    let mut currencies = BTreeSet::new();
    for (_, object) in parse(&events) {
        if let Object::Authorization(a) = object {
            *categories
                .entry(a.merchant_data.category.clone())
                .or_default() += 1;
            currencies.insert(a.currency);
            assert!(cardstream_stripe::is_merchant_category(
                &a.merchant_data.category
            ));
        }
    }
    assert!(
        categories.len() >= 40,
        "only {} categories",
        categories.len()
    );
    let mut counts: Vec<usize> = categories.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: usize = counts.iter().sum();
    assert!(
        counts[0] * 10 > total,
        "the top category should carry over a tenth: {counts:?}"
    );
    assert!(
        currencies.contains(&Currency::JPY),
        "a zero-decimal currency is simulated"
    );
    assert!(currencies.len() >= 3);
}

#[test]
fn follow_ups_honour_the_answer_and_add_up() {
    let mut n = 0;
    let events = generate(5, 40, START, 3000, |_| {
        n += 1;
        if n % 4 == 0 {
            Answer::Declined {
                reason: "category_blocked".into(),
            }
        } else {
            Answer::Approved {
                reason: "approved".into(),
            }
        }
    });
    let parsed = parse(&events);
    let mut requested: BTreeMap<String, i64> = BTreeMap::new();
    let mut created: BTreeMap<String, (bool, Option<String>, String)> = BTreeMap::new();
    let mut captured: BTreeMap<String, i64> = BTreeMap::new();
    let mut refunded: BTreeMap<String, i64> = BTreeMap::new();
    let mut final_status: BTreeMap<String, String> = BTreeMap::new();
    let mut first_capture: BTreeMap<String, i64> = BTreeMap::new();
    let (mut updated, mut force_captures, mut lone_refunds) = (0, 0, 0);
    for (event, object) in &parsed {
        match object {
            Object::Authorization(a) if event.kind == types::AUTHORIZATION_REQUEST => {
                assert_eq!(a.amount, 0, "a pending request holds nothing yet");
                assert!(!a.approved);
                requested.insert(a.id.clone(), a.pending_request.as_ref().unwrap().amount);
            }
            Object::Authorization(a) if event.kind == types::AUTHORIZATION_CREATED => {
                let reason = a
                    .metadata
                    .get("cardstream_reason")
                    .and_then(|r| r.as_str())
                    .map(str::to_owned);
                let history = a.request_history.last().unwrap().reason.clone();
                created.insert(a.id.clone(), (a.approved, reason, history));
            }
            Object::Authorization(a) => {
                final_status.insert(a.id.clone(), a.status.to_string());
            }
            Object::Transaction(t) if event.kind == types::TRANSACTION_UPDATED => {
                updated += 1;
                // A correction of a capture already counted: replace its contribution.
                let auth = t.authorization.as_ref().unwrap().id().to_owned();
                let before = first_capture[&t.id];
                *captured.get_mut(&auth).unwrap() += -t.amount - before;
            }
            Object::Transaction(t) if t.authorization.is_none() => match t.kind {
                TransactionType::Capture => force_captures += 1,
                _ => lone_refunds += 1,
            },
            Object::Transaction(t) => {
                let auth = t.authorization.as_ref().unwrap().id().to_owned();
                match t.kind {
                    TransactionType::Capture => {
                        assert!(t.amount < 0, "captures are negative");
                        first_capture.insert(t.id.clone(), -t.amount);
                        *captured.entry(auth).or_default() += -t.amount;
                    }
                    TransactionType::Refund => {
                        assert!(t.amount > 0, "refunds are positive");
                        *refunded.entry(auth).or_default() += t.amount;
                    }
                    TransactionType::Other(_) => panic!("unexpected transaction type"),
                }
            }
            _ => {}
        }
    }
    let mut declined_by_gateway = 0;
    let mut declined_by_stripe = 0;
    let mut over_captures = 0;
    for (id, (approved, reason, history)) in &created {
        match requested.get(id) {
            // Asked: the outcome is the gateway's, with its reason in the metadata.
            Some(amount) => {
                if *approved {
                    assert_eq!(history, "webhook_approved");
                    let capture = captured.get(id).copied().unwrap_or(0);
                    // At most what was asked, but for a tip of a tenth (an over-capture).
                    assert!(
                        capture <= amount + (amount / 10).max(1),
                        "captured {capture} of {amount}"
                    );
                    over_captures += usize::from(capture > *amount);
                    let status = &final_status[id];
                    assert_eq!(status, if capture == 0 { "reversed" } else { "closed" });
                    assert!(refunded.get(id).copied().unwrap_or(0) <= capture);
                } else {
                    declined_by_gateway += 1;
                    assert_eq!(history, "webhook_declined");
                    assert_eq!(reason.as_deref(), Some("category_blocked"));
                    assert!(
                        !captured.contains_key(id),
                        "a declined authorization is never captured"
                    );
                }
            }
            // Not asked: Stripe declined by itself.
            None => {
                declined_by_stripe += 1;
                assert!(!approved);
                assert!(!captured.contains_key(id));
            }
        }
    }
    assert!(
        declined_by_gateway > 100 && declined_by_stripe > 10,
        "{declined_by_gateway} {declined_by_stripe}"
    );
    // Partial and split captures and refunds all occur.
    let partial = captured
        .iter()
        .filter(|(id, c)| requested.get(*id).is_some_and(|r| *c < r))
        .count();
    assert!(partial > 50, "{partial} partial captures");
    assert!(refunded.len() > 20, "{} refunds", refunded.len());
    // And the odd ones: over-captures, corrected captures, force captures, lone refunds.
    assert!(
        over_captures > 5 && updated > 5 && force_captures > 5 && lone_refunds > 2,
        "{over_captures} over-captures, {updated} corrections, {force_captures} force captures, {lone_refunds} lone refunds"
    );
    let split = parsed
        .iter()
        .filter(|(_, o)| matches!(o, Object::Transaction(_)))
        .count()
        > captured.len() + refunded.len();
    assert!(split, "some authorizations are captured in two parts");
}

/// Fuel purchases ask with a controllable amount; a partial approval of half of each holds
/// half, is captured and refunded within it, and carries the gateway's reason.
#[test]
fn a_partial_approval_holds_and_captures_at_most_the_approved_amount() {
    let mut controllable = 0;
    let events = generate(5, 40, START, 3000, |p| {
        if p.amount_controllable() {
            controllable += 1;
            Answer::PartiallyApproved {
                reason: "partially_approved".into(),
                amount: p.amount / 2,
            }
        } else {
            approve_all(p)
        }
    });
    assert!(controllable > 20, "{controllable} fuel purchases");
    let mut asked: BTreeMap<String, (i64, bool)> = BTreeMap::new();
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    let mut captured: BTreeMap<String, i64> = BTreeMap::new();
    let mut refunded: BTreeMap<String, i64> = BTreeMap::new();
    for (event, object) in parse(&events) {
        match object {
            Object::Authorization(a) if event.kind == types::AUTHORIZATION_REQUEST => {
                let pending = a.pending_request.as_ref().unwrap();
                assert_eq!(
                    pending.is_amount_controllable,
                    a.merchant_data.category == "automated_fuel_dispensers"
                );
                asked.insert(
                    a.id.clone(),
                    (pending.amount, pending.is_amount_controllable),
                );
            }
            Object::Authorization(a)
                if event.kind == types::AUTHORIZATION_CREATED && a.approved =>
            {
                let (amount, partial) = asked[&a.id];
                let expected = if partial { amount / 2 } else { amount };
                assert_eq!(a.amount, expected, "{}", a.id);
                assert_eq!(a.request_history.last().unwrap().amount, expected);
                let reason = a.metadata.get("cardstream_reason").and_then(|r| r.as_str());
                assert_eq!(
                    reason,
                    Some(if partial {
                        "partially_approved"
                    } else {
                        "approved"
                    })
                );
                held.insert(a.id.clone(), expected);
            }
            // Linked first versions only (corrections and unlinked ones are counted elsewhere).
            Object::Transaction(t) if event.kind == types::TRANSACTION_CREATED => {
                let Some(auth) = t.authorization.as_ref().map(|a| a.id().to_owned()) else {
                    continue;
                };
                match t.kind {
                    TransactionType::Capture => *captured.entry(auth).or_default() += -t.amount,
                    _ => *refunded.entry(auth).or_default() += t.amount,
                }
            }
            _ => {}
        }
    }
    let partial: Vec<&String> = asked
        .iter()
        .filter(|(_, (_, p))| *p)
        .map(|(id, _)| id)
        .collect();
    assert!(partial.iter().any(|id| captured.contains_key(*id)));
    // A partial approval is never over-captured.
    for (id, amount) in captured.iter().filter(|(id, _)| asked[*id].1) {
        assert!(
            amount <= &held[id],
            "{id}: captured {amount} of {}",
            held[id]
        );
        assert!(refunded.get(id).copied().unwrap_or(0) <= *amount);
    }
}

/// Some purchases are abroad: the merchant's amount and currency differ from the card's, on
/// the request, the decision and each transaction alike, converted at one rate.
#[test]
fn purchases_abroad_carry_the_merchants_currency_beside_the_cards() {
    let events = generate(5, 40, START, 2000, approve_all);
    let mut abroad = 0;
    for (event, object) in parse(&events) {
        match object {
            Object::Authorization(a) if event.kind == types::AUTHORIZATION_REQUEST => {
                let p = a.pending_request.as_ref().unwrap();
                let theirs = p.merchant_currency.unwrap();
                if theirs != p.currency {
                    abroad += 1;
                    let (card, merchant) = (p.amount as f64, p.merchant_amount.unwrap() as f64);
                    assert!(merchant > 0.0, "{}", a.id);
                    // The same rate each time: a dollar card's euros are about 0.93 per dollar.
                    if p.currency == Currency::USD {
                        assert_eq!(theirs, Currency::EUR);
                        assert!(
                            (merchant / card - 1.0 / 1.08).abs() < 0.01,
                            "{card} {merchant}"
                        );
                    }
                } else {
                    assert_eq!(p.merchant_amount, Some(p.amount));
                }
            }
            Object::Transaction(t) => {
                let theirs = t.merchant_currency.unwrap();
                let merchant = t.merchant_amount.unwrap();
                if theirs == t.currency {
                    assert_eq!(merchant, t.amount);
                } else {
                    assert_eq!(merchant.signum(), t.amount.signum(), "{}", t.id);
                }
            }
            _ => {}
        }
    }
    assert!(abroad > 50, "{abroad} purchases abroad");
}

#[test]
fn requests_go_to_the_authorization_endpoint_and_the_rest_to_events() {
    for event in generate(2, 10, START, 200, approve_all) {
        let expected = if event.kind == types::AUTHORIZATION_REQUEST {
            Endpoint::Authorization
        } else {
            Endpoint::Events
        };
        assert_eq!(event.endpoint, expected, "{}", event.kind);
    }
}

/// Some captures are disputed, and each dispute runs Stripe's lifecycle: opened `unsubmitted`
/// on a capture for its amount, then expired (never submitted), or submitted and lost (with a
/// loss reason), or won with its funds reinstated, now and then rescinded after.
#[test]
fn disputes_follow_stripes_lifecycle() {
    let events = generate(5, 40, START, 3000, |_| Answer::Approved {
        reason: "approved".into(),
    });
    let mut captures: BTreeMap<String, i64> = BTreeMap::new();
    let mut lifecycles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (event, object) in &parse(&events) {
        match object {
            Object::Transaction(t) if t.kind == TransactionType::Capture => {
                captures.insert(t.id.clone(), -t.amount);
            }
            Object::Dispute(d) => {
                assert_eq!(Some(&d.amount), captures.get(d.transaction.id()));
                assert_eq!(
                    d.loss_reason.is_some(),
                    d.status.to_string() == "lost",
                    "a loss reason exactly when lost"
                );
                let step = format!("{} {}", event.kind, d.status);
                lifecycles.entry(d.id.clone()).or_default().push(step);
            }
            _ => {}
        }
    }
    let mut endings: BTreeMap<&str, usize> = BTreeMap::new();
    for steps in lifecycles.values() {
        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
        let ending = match steps.as_slice() {
            [
                "issuing_dispute.created unsubmitted",
                "issuing_dispute.closed expired",
            ] => "expired",
            [
                "issuing_dispute.created unsubmitted",
                "issuing_dispute.submitted submitted",
                "issuing_dispute.closed lost",
            ] => "lost",
            [
                "issuing_dispute.created unsubmitted",
                "issuing_dispute.submitted submitted",
                "issuing_dispute.closed won",
                "issuing_dispute.funds_reinstated won",
                rest @ ..,
            ] => match rest {
                [] => "won",
                ["issuing_dispute.funds_rescinded won"] => "won, then rescinded",
                _ => panic!("after reinstatement: {rest:?}"),
            },
            other => panic!("not Stripe's lifecycle: {other:?}"),
        };
        *endings.entry(ending).or_default() += 1;
    }
    let share = lifecycles.len() as f64 / captures.len() as f64;
    assert!(
        (0.01..0.04).contains(&share),
        "{} disputes on {} captures",
        lifecycles.len(),
        captures.len()
    );
    assert_eq!(endings.len(), 4, "every ending occurs: {endings:?}");
}

/// Some cards are added to wallets (requested, then active, now and then suspended), and
/// purchases on a card with an active token are mostly made with it: the authorization names
/// the token and its wallet, never a token of another card or one that is not active.
#[test]
fn wallet_tokens_are_provisioned_and_used() {
    let events = generate(5, 40, START, 3000, |_| Answer::Approved {
        reason: "approved".into(),
    });
    let mut tokens: BTreeMap<String, (String, Vec<String>, Option<String>)> = BTreeMap::new();
    let mut with_token = 0;
    let mut purchases = 0;
    for (event, object) in &parse(&events) {
        match object {
            Object::Token(t) => {
                let entry = tokens
                    .entry(t.id.clone())
                    .or_insert_with(|| (t.card.id().to_owned(), Vec::new(), None));
                entry.1.push(format!("{} {}", event.kind, t.status));
                entry.2 = t.wallet_provider.clone();
                assert!(t.device_type().is_some(), "a device type");
            }
            Object::Authorization(a) if event.kind == types::AUTHORIZATION_CREATED => {
                purchases += 1;
                let Some(token) = &a.token else {
                    assert_eq!(a.wallet, None);
                    continue;
                };
                with_token += 1;
                let (card, lifecycle, wallet) = &tokens[token.id()];
                assert_eq!(card, a.card_id(), "a token of the purchase's card");
                assert_eq!(&a.wallet, wallet, "the token's wallet");
                assert!(
                    !lifecycle.iter().any(|s| s.ends_with("suspended")),
                    "a suspended token is not used"
                );
            }
            _ => {}
        }
    }
    for (card, lifecycle, _) in tokens.values() {
        assert!(card.starts_with("ic_"));
        assert!(
            lifecycle.starts_with(&[
                "issuing_token.created requested".to_owned(),
                "issuing_token.updated active".to_owned(),
            ]),
            "{lifecycle:?}"
        );
    }
    // About two cards in five; two purchases in three on them.
    assert!(
        (8..=24).contains(&tokens.len()),
        "{} tokens on 40 cards",
        tokens.len()
    );
    assert!(
        with_token > purchases / 8 && with_token < purchases / 2,
        "{with_token} of {purchases} purchases with a wallet"
    );
}
