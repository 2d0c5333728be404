//! Stripe Connect: a platform receives its connected accounts' events on one endpoint, each
//! carrying `account`, next to its own (which carry none). This spreads a simulated world over
//! accounts as a platform's would be: each cardholder belongs to one account, and so do its
//! cards and everything that happens on them.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

use crate::SimEvent;

/// Gives each event the account of its cardholder: `accounts[n]` for the n-th cardholder met
/// (round robin, so every account gets cardholders), where `None` is the platform's own
/// account. Events whose cardholder cannot be told are left as they are.
pub fn spread_over_accounts(events: &mut [SimEvent], accounts: &[Option<String>]) {
    let mut spreader = AccountSpreader::new(accounts.to_vec());
    events.iter_mut().for_each(|event| spreader.apply(event));
}

/// [`spread_over_accounts`] one event at a time, for a simulation that makes its events as it
/// goes: it remembers the cardholders (and their cards) met so far, so each keeps its account.
#[derive(Debug, Default)]
pub struct AccountSpreader {
    accounts: Vec<Option<String>>,
    holders: HashMap<String, usize>,
    card_holders: HashMap<String, String>,
}

impl AccountSpreader {
    /// Over `accounts` (`None`: the platform's own); with none, events are left as they are.
    pub fn new(accounts: Vec<Option<String>>) -> Self {
        AccountSpreader {
            accounts,
            ..AccountSpreader::default()
        }
    }

    /// Gives `event` the account of its cardholder (see [`spread_over_accounts`]).
    pub fn apply(&mut self, event: &mut SimEvent) {
        if self.accounts.is_empty() {
            return;
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&event.body) else {
            return;
        };
        let object = &body["data"]["object"];
        let Some(holder) = cardholder_of(object, &self.card_holders) else {
            return;
        };
        if let Some(card) = object["id"].as_str()
            && object["object"] == "issuing.card"
        {
            self.card_holders.insert(card.to_owned(), holder.clone());
        }
        let next = self.holders.len();
        let n = *self.holders.entry(holder).or_insert(next);
        if let (Some(account), Some(envelope)) = (
            &self.accounts[n % self.accounts.len()],
            body.as_object_mut(),
        ) {
            envelope.insert("account".to_owned(), Value::String(account.clone()));
            event.body = Bytes::from(body.to_string());
        }
    }
}

/// `acct_` and letters and digits, as Stripe's account ids are (and as the gateway checks).
pub(crate) fn is_account_id(id: &str) -> bool {
    id.strip_prefix("acct_")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The cardholder an Issuing object belongs to.
fn cardholder_of(object: &Value, card_holders: &HashMap<String, String>) -> Option<String> {
    let id = |v: &Value| v.as_str().or_else(|| v["id"].as_str()).map(str::to_owned);
    if object["object"] == "issuing.cardholder" {
        return id(&object["id"]);
    }
    id(&object["cardholder"])
        .or_else(|| id(&object["card"]["cardholder"]))
        .or_else(|| id(&object["card"]).and_then(|card| card_holders.get(&card).cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_of_a_cardholder_gets_its_account() {
        let mut events = crate::generate_declining_every(4, 7, 6, 1_764_000_000, 60);
        let accounts = [None, Some("acct_a".to_owned()), Some("acct_b".to_owned())];
        spread_over_accounts(&mut events, &accounts);
        let mut by_holder: HashMap<String, Option<String>> = HashMap::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut card_holders = HashMap::new();
        for event in &events {
            let body: Value = serde_json::from_slice(&event.body).unwrap_or_default();
            let object = &body["data"]["object"];
            let holder = cardholder_of(object, &card_holders).unwrap_or_default();
            if object["object"] == "issuing.card" {
                card_holders.insert(
                    object["id"].as_str().unwrap_or("").to_owned(),
                    holder.clone(),
                );
            }
            let account = body["account"].as_str().map(str::to_owned);
            seen.insert(account.clone());
            let first = by_holder.entry(holder).or_insert_with(|| account.clone());
            assert_eq!(*first, account, "{}", event.id);
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[test]
    fn one_event_at_a_time_is_the_same_as_all_at_once() {
        let accounts = vec![None, Some("acct_a".to_owned()), Some("acct_b".to_owned())];
        let mut all = crate::generate_declining_every(3, 11, 9, 1_764_000_000, 80);
        let mut each = all.clone();
        spread_over_accounts(&mut all, &accounts);
        let mut spreader = AccountSpreader::new(accounts);
        each.iter_mut().for_each(|event| spreader.apply(event));
        let bodies =
            |events: &[SimEvent]| events.iter().map(|e| e.body.clone()).collect::<Vec<_>>();
        assert_eq!(bodies(&each), bodies(&all));
    }

    #[test]
    fn account_ids_are_checked_as_the_gateway_does() {
        assert!(is_account_id("acct_dev1"));
        for bad in ["", "acct_", "acct_a-b", "acct_a_b", "ACCT_1", "acct_1 "] {
            assert!(!is_account_id(bad), "{bad:?}");
        }
    }
}
