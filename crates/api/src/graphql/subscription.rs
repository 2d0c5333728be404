//! The subscription root: a card's activity, live, and the program's, as a coalesced signal.

use async_graphql::{Context, ID, ResultExt, SimpleObject, Subscription};
use cardstream_store::Change;
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast::error::RecvError;

use super::context::{admin, store, visible_card};
use super::errors::ApiError;
use super::objects::Authorization;
use super::scalars::Long;
use crate::live::{Feed, Live};

/// Most changes a subscriber catches up on at once (after a reconnect, or when it fell
/// behind the feed).
const BACKLOG: i64 = 10_000;

/// The least time between two program ticks: a burst of batches is one refetch a second.
const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Subscription;

/// An authorization of the card that is new or changed (approved, captured, refunded,
/// disputed…), with the number of the change (pass the last one seen as `afterSeq`).
#[derive(SimpleObject)]
pub struct ActivityEvent {
    pub card_id: ID,
    pub authorization: Authorization,
    pub seq: Long,
}

fn event(change: Change) -> ActivityEvent {
    ActivityEvent {
        card_id: ID(change.card_id),
        authorization: Authorization(change.authorization),
        seq: Long(change.seq),
    }
}

/// Something changed in the program since the last tick.
#[derive(SimpleObject)]
pub struct ProgramTick {
    /// Cards whose activity or spend changed since the last tick (a card changed by several
    /// batches counts once per batch).
    pub changed_cards: i32,
}

/// Whose changes a program tick counts: every account's for a platform admin, only those of
/// the admin's Connect accounts otherwise (nor does such an admin learn of the others').
#[derive(Clone)]
struct TickScope(std::collections::BTreeSet<String>);

impl TickScope {
    /// Cards of the scope that `feed` changed.
    fn changed(&self, feed: &Feed) -> usize {
        if self.0.is_empty() {
            return feed.cards.len();
        }
        feed.changes
            .iter()
            .filter(|c| {
                c.authorization
                    .account
                    .as_ref()
                    .is_some_and(|a| self.0.contains(a))
            })
            .map(|c| c.card_id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    /// Feeds missed by a subscriber that fell behind: for a platform admin as many cards at
    /// least; for an account's admin, one refetch (what changed cannot be told any more).
    fn missed(&self, feeds: u64) -> usize {
        if self.0.is_empty() {
            usize::try_from(feeds).unwrap_or(usize::MAX)
        } else {
            1
        }
    }
}

#[Subscription]
impl Subscription {
    /// Admin: a tick after the aggregator commits changes anywhere in the program, at most
    /// one a second however many batches commit (the overview refetches on each).
    async fn program_activity(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ProgramTick> + use<>> {
        let viewer = admin(ctx).await.extend()?;
        let scope = TickScope(viewer.accounts.clone());
        let live = ctx.data_unchecked::<Live>().clone();
        let state = (
            live.subscribe(),
            live.listening(),
            None::<tokio::time::Instant>,
        );
        Ok(stream::unfold(
            state,
            move |(mut receiver, listening, last)| {
                let scope = scope.clone();
                async move {
                    // Nothing of the viewer's accounts: no tick.
                    let mut changed = 0;
                    while changed == 0 {
                        changed = match receiver.recv().await {
                            Ok(feed) => scope.changed(&feed),
                            Err(RecvError::Lagged(n)) => scope.missed(n),
                            Err(RecvError::Closed) => return None,
                        };
                    }
                    if let Some(last) = last {
                        tokio::time::sleep_until(last + TICK_EVERY).await;
                    }
                    // Everything that arrived meanwhile is in this tick.
                    loop {
                        match receiver.try_recv() {
                            Ok(feed) => changed += scope.changed(&feed),
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                                changed += scope.missed(n);
                            }
                            Err(_) => break,
                        }
                    }
                    let tick = ProgramTick {
                        changed_cards: i32::try_from(changed).unwrap_or(i32::MAX),
                    };
                    Some((
                        tick,
                        (receiver, listening, Some(tokio::time::Instant::now())),
                    ))
                }
            },
        ))
    }

    /// Every new or changed authorization of a card the viewer may see (approved, captured,
    /// refunded, disputed…), each once, as the aggregator commits it, with the number of the
    /// change. Subscribing again with the last number seen as `afterSeq` first sends every
    /// change of the card made since (kept for an hour). Fed by Postgres NOTIFY and the change
    /// feed, read once per API process for all its subscriptions; no polling.
    async fn activity(
        &self,
        ctx: &Context<'_>,
        card_id: ID,
        after_seq: Option<Long>,
    ) -> async_graphql::Result<impl Stream<Item = ActivityEvent> + use<>> {
        let card = visible_card(ctx, &card_id).await.extend()?;
        let store = store(ctx).clone();
        let live = ctx.data_unchecked::<Live>().clone();
        // Subscribed before the backlog is read: nothing committed in between is missed.
        let receiver = live.subscribe();
        let (backlog, last) = match after_seq {
            None => (Vec::new(), 0),
            Some(after) => {
                let (_, low) = store
                    .change_bounds()
                    .await
                    .map_err(ApiError::from)
                    .extend()?;
                if low.is_some_and(|low| after.0 + 1 < low) {
                    return Err(ApiError::BadUserInput(format!(
                        "the changes after {} are no longer kept (an hour is): load the page again",
                        after.0
                    )))
                    .extend();
                }
                let backlog = store
                    .changes_after(after.0, Some(&card.id), BACKLOG)
                    .await
                    .map_err(ApiError::from)
                    .extend()?;
                let last = backlog.last().map_or(after.0, |c| c.seq);
                (backlog, last)
            }
        };
        let backlog = stream::iter(backlog.into_iter().map(event));
        let state = (receiver, store, card.id, last, live.listening());
        let live_changes = stream::unfold(
            state,
            |(mut receiver, store, card_id, mut last, listening)| async move {
                loop {
                    let mine: Vec<Change> = match receiver.recv().await {
                        Ok(feed) => feed
                            .changes
                            .iter()
                            .filter(|c| c.card_id == card_id && c.seq > last)
                            .cloned()
                            .collect(),
                        // Some feeds were dropped for this slow subscriber: its card's changes
                        // are read from the feed's table instead.
                        Err(RecvError::Lagged(_)) => {
                            match store.changes_after(last, Some(&card_id), BACKLOG).await {
                                Ok(changes) => changes,
                                Err(_) => continue,
                            }
                        }
                        Err(RecvError::Closed) => return None,
                    };
                    let Some(newest) = mine.last() else { continue };
                    last = newest.seq;
                    let events: Vec<ActivityEvent> = mine.into_iter().map(event).collect();
                    let state = (receiver, store, card_id, last, listening);
                    return Some((stream::iter(events), state));
                }
            },
        )
        .flatten();
        Ok(backlog.chain(live_changes))
    }
}
