//! The subscription root: a card's activity, live, and the program's, as a coalesced signal.

use std::collections::HashMap;

use async_graphql::{Context, ID, ResultExt, SimpleObject, Subscription};
use cardstream_store::{ActivityFilter, Page};
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast::error::RecvError;

use super::context::{admin, store, visible_card};
use super::objects::Authorization;
use crate::live::Live;

/// How many of a card's newest authorizations are compared after each notification.
const WATCHED: u64 = 25;

/// The least time between two program ticks: a burst of batches is one refetch a second.
const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Subscription;

/// An authorization of the card that is new or changed (approved, captured, reversed…).
#[derive(SimpleObject)]
pub struct ActivityEvent {
    pub card_id: ID,
    pub authorization: Authorization,
}

/// Something changed in the program since the last tick.
#[derive(SimpleObject)]
pub struct ProgramTick {
    /// Cards whose activity or spend changed since the last tick (a card changed by several
    /// batches counts once per batch).
    pub changed_cards: i32,
}

#[Subscription]
impl Subscription {
    /// Admin: a tick after the aggregator commits changes anywhere in the program, at most
    /// one a second however many batches commit (the overview refetches on each).
    async fn program_activity(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ProgramTick> + use<>> {
        admin(ctx).await.extend()?;
        let live = ctx.data_unchecked::<Live>().clone();
        let state = (
            live.subscribe(),
            live.listening(),
            None::<tokio::time::Instant>,
        );
        Ok(stream::unfold(
            state,
            |(mut receiver, listening, last)| async move {
                let mut changed = match receiver.recv().await {
                    Ok(cards) => cards.len(),
                    Err(RecvError::Lagged(n)) => usize::try_from(n).unwrap_or(usize::MAX),
                    Err(RecvError::Closed) => return None,
                };
                if let Some(last) = last {
                    tokio::time::sleep_until(last + TICK_EVERY).await;
                }
                // Everything that arrived meanwhile is in this tick.
                loop {
                    match receiver.try_recv() {
                        Ok(cards) => changed += cards.len(),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                            changed += usize::try_from(n).unwrap_or(0);
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
            },
        ))
    }

    /// Every new or changed authorization of a card the viewer may see, as the aggregator
    /// commits it. Fed by Postgres NOTIFY; no polling.
    async fn activity(
        &self,
        ctx: &Context<'_>,
        card_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ActivityEvent> + use<>> {
        let card = visible_card(ctx, &card_id).await.extend()?;
        let store = store(ctx).clone();
        let live = ctx.data_unchecked::<Live>().clone();
        let receiver = live.subscribe();
        // What the client has already seen: the current page, so only changes are sent.
        let mut seen: HashMap<String, String> = HashMap::new();
        if let Ok(rows) = store
            .activity(&card.id, &ActivityFilter::default(), &Page::first(WATCHED))
            .await
        {
            seen.extend(rows.into_iter().map(|r| (r.id, r.version_event_id)));
        }
        let state = (receiver, seen, store, card.id, live.listening());
        Ok(stream::unfold(
            state,
            |(mut receiver, mut seen, store, card_id, listening)| async move {
                loop {
                    match receiver.recv().await {
                        Ok(cards) if !cards.contains(&card_id) => continue,
                        // Lagged: some notifications were dropped; compare anyway.
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    }
                    let Ok(rows) = store
                        .activity(&card_id, &ActivityFilter::default(), &Page::first(WATCHED))
                        .await
                    else {
                        continue;
                    };
                    let mut changed: Vec<ActivityEvent> = rows
                        .iter()
                        .filter(|r| seen.get(&r.id) != Some(&r.version_event_id))
                        .map(|r| ActivityEvent {
                            card_id: ID(card_id.clone()),
                            authorization: Authorization(r.clone()),
                        })
                        .collect();
                    // Only the watched rows are remembered, so a subscription's state stays
                    // at WATCHED entries however long it runs.
                    seen = rows
                        .into_iter()
                        .map(|r| (r.id, r.version_event_id))
                        .collect();
                    if changed.is_empty() {
                        continue;
                    }
                    // Oldest first, as they happened.
                    changed.reverse();
                    let state = (receiver, seen, store, card_id, listening);
                    return Some((stream::iter(changed), state));
                }
            },
        )
        .flatten())
    }
}
