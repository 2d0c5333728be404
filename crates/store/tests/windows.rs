//! The overview's windows (migration 0021): kept by the fold for the days before today,
//! rebuilt when the day changes, and read for a preset's range with the same answers the
//! daily rollups give.

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_simulator::{Answer, SimEvent, generate_history};
use cardstream_store::{Accounts, DayRange, ProgramKey, Store};
use common::{assert_rollups_exact, count, incoming, ingest, store};

/// Events of `purchases` purchases over the last `days` days (every seventh request
/// declined).
fn history(days: u32, purchases: u64) -> Vec<SimEvent> {
    let mut n = 0;
    generate_history(21, 12, days, purchases, |_| {
        n += 1;
        if n % 7 == 0 {
            Answer::Declined {
                reason: "category_blocked".into(),
            }
        } else {
            Answer::Approved {
                reason: "approved".into(),
            }
        }
    })
}

async fn today(store: &Store) -> i32 {
    count(
        store,
        "SELECT floor(extract(epoch FROM now()) / 86400)::int8",
    )
    .await as i32
}

/// What the overview reads for the presets ending `today` and the periods before them, in
/// every currency, by every key the windows keep.
async fn overview(store: &Store, today: i32) -> Vec<String> {
    let mut out = Vec::new();
    for days in [1, 7, 30] {
        let range = DayRange {
            from: today + 1 - days,
            to: today + 1,
        };
        for range in [range, range.previous()] {
            let spend = store.program_spend(&Accounts::All, range).await.unwrap();
            out.push(format!("{range:?} {spend:?}"));
            for currency in spend.iter().map(|s| &s.currency) {
                for key in [ProgramKey::Category, ProgramKey::Merchant, ProgramKey::Card] {
                    let rows = store
                        .program_keyed(&Accounts::All, currency, range, key, 100)
                        .await
                        .unwrap();
                    out.push(format!("{range:?} {currency} {key:?} {rows:?}"));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn windows_kept_by_the_fold_and_rebuilt_each_day_read_as_the_daily_rollups() {
    let (_db, store) = store().await;
    let records = incoming(&history(70, 900));
    // Half the history (every other chunk: days in every window) before the windows exist,
    // the rest after, in batches, out of order against the first half.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for (i, chunk) in records.chunks(40).enumerate() {
        if i % 2 == 0 { &mut before } else { &mut after }.extend_from_slice(chunk);
    }
    ingest(&store, &before, 50).await;
    assert!(store.refresh_windows().await.unwrap(), "nothing was built");
    assert!(
        !store.refresh_windows().await.unwrap(),
        "built twice in a day"
    );
    ingest(&store, &after, 50).await;
    let windows = count(&store, "SELECT count(*) FROM card_windows").await;
    assert!(windows > 0, "no card windows");
    // The drift check recomputes the windows from the daily rollups, which it recomputes from
    // the transactions.
    assert_rollups_exact(&store).await;

    let today = today(&store).await;
    let windowed = overview(&store, today).await;
    assert!(
        windowed.len() > 20 && windowed.iter().any(|l| l.contains("Card [ProgramKeyed")),
        "the overview read nothing: {windowed:?}"
    );
    // The same reads from the daily rollups alone.
    sqlx::query("DELETE FROM rollup_window_state")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(overview(&store, today).await, windowed);

    // Windows kept as of yesterday (a day the aggregators have not caught up with) are not
    // read for today's presets; the next refresh rebuilds them for today.
    store.rebuild_windows(today - 1).await.unwrap();
    assert_rollups_exact(&store).await;
    sqlx::query("UPDATE card_windows SET spend = spend + 1000000")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(overview(&store, today).await, windowed);
    assert!(store.refresh_windows().await.unwrap());
    assert_rollups_exact(&store).await;
    assert_eq!(overview(&store, today).await, windowed);

    // And today's presets do read the windows: a window changed behind the fold's back shows.
    sqlx::query("UPDATE card_windows SET spend = spend + 1000000 WHERE days = 29")
        .execute(store.pool())
        .await
        .unwrap();
    assert_ne!(overview(&store, today).await, windowed);
}

#[tokio::test]
async fn a_replay_rebuilds_the_windows() {
    let (_db, store) = store().await;
    ingest(&store, &incoming(&history(40, 300)), 64).await;
    store.refresh_windows().await.unwrap();
    let before = count(&store, "SELECT count(*) FROM program_windows").await;
    assert!(before > 0);
    store.replay(100, |_| {}).await.unwrap();
    assert_eq!(
        count(&store, "SELECT count(*) FROM program_windows").await,
        before
    );
    assert_rollups_exact(&store).await;
}
