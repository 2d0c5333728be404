//! Stripe Connect: every object and rollup row carries the account of the events that wrote
//! it, and migration 0006 gives rows written before it their account from the stored events.

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_simulator::spread_over_accounts;
use common::{assert_rollups_exact, count, dump, incoming, ingest, simulated, store};

const ACCOUNTS: [Option<&str>; 3] = [None, Some("acct_1Alpha"), Some("acct_1Bravo")];

fn accounts() -> Vec<Option<String>> {
    ACCOUNTS.iter().map(|a| a.map(str::to_owned)).collect()
}

/// Rows of `table` whose account is not that of the event that wrote them.
const WRONG_OBJECT_ACCOUNT: &str = "SELECT count(*) FROM {table} t JOIN stripe_events e
    ON e.event_id = t.version_event_id
    WHERE t.account IS DISTINCT FROM e.payload->>'account'";

/// Rollup rows whose account is not their card's.
const WRONG_ROLLUP_ACCOUNT: &str = "SELECT count(*) FROM {table} r JOIN cards c ON c.id = r.card_id
    WHERE r.account IS DISTINCT FROM c.account";

#[tokio::test]
async fn every_row_carries_its_account_and_the_migration_recovers_it() {
    let (_db, store) = store().await;
    let mut events = simulated(17, 12, 400);
    spread_over_accounts(&mut events, &accounts());
    ingest(&store, &incoming(&events), 64).await;
    assert_rollups_exact(&store).await;

    for table in ["cardholders", "cards", "authorizations", "transactions"] {
        let wrong = count(&store, &WRONG_OBJECT_ACCOUNT.replace("{table}", table)).await;
        assert_eq!(
            wrong, 0,
            "{table}: rows with another account than their event's"
        );
        let accounts = count(
            &store,
            &format!("SELECT count(DISTINCT coalesce(account, 'platform')) FROM {table}"),
        )
        .await;
        assert_eq!(accounts, 3, "{table}: the platform and both accounts");
    }
    for table in [
        "card_daily_spend",
        "card_category_spend",
        "card_merchant_spend",
    ] {
        let wrong = count(&store, &WRONG_ROLLUP_ACCOUNT.replace("{table}", table)).await;
        assert_eq!(
            wrong, 0,
            "{table}: rows with another account than their card's"
        );
        let with_account = count(
            &store,
            &format!("SELECT count(*) FROM {table} WHERE account IS NOT NULL"),
        )
        .await;
        assert!(with_account > 0, "{table}: no connected account's rows");
    }
    // A card's objects are its cardholder's account's.
    let strays = count(
        &store,
        "SELECT count(*) FROM cards c JOIN cardholders h ON h.id = c.cardholder_id
         WHERE c.account IS DISTINCT FROM h.account",
    )
    .await;
    assert_eq!(strays, 0);

    // Rows from before the migration: taking it down drops the column, up again recovers it.
    let before = dump(&store).await;
    // Down through 0006, however many migrations came after it.
    let status = store.migration_status().await.unwrap();
    let steps = status
        .iter()
        .rev()
        .position(|(name, _)| name.ends_with("_connect_accounts"))
        .unwrap()
        + 1;
    store.migrate_down(Some(steps as u32)).await.unwrap();
    let without = count(
        &store,
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'account'
           AND table_schema = current_schema() AND table_name <> 'stripe_sync_cursors'",
    )
    .await;
    assert_eq!(without, 0, "0006 down leaves an account column");
    store.migrate_up().await.unwrap();
    assert_eq!(dump(&store).await, before);
}
