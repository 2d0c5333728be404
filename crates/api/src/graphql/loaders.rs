//! Batched lookups: whatever a resolver needs once per parent (a card's cardholder, its spend,
//! its activity page, an authorization's transactions) goes through a DataLoader, which
//! gathers the keys every sibling asks for and answers them with one statement per kind of
//! question. A request therefore issues a number of statements bounded by the shape of its
//! query, not by how many rows it returns.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use cardstream_store::entities::{authorizations, cardholders, cards, transactions};
use cardstream_store::{
    Accounts, ActivityFilter, CardCurrency, Cursor, KeyedSpend, Page, SeriesBucket, SpendKey,
    SpendPoint, SpendTotals, Store,
};

use super::errors::ApiError;

/// Loads rows by key in one statement per batch.
pub struct StoreLoader {
    store: Store,
}

pub type LoadError = Arc<ApiError>;

fn load_err(err: cardstream_store::Error) -> LoadError {
    Arc::new(ApiError::from(err))
}

/// The per-request loader, added to each request's data. `window` is how long it gathers keys
/// before it sends a batch: long enough for every sibling in a list to ask, short against the
/// request's latency.
pub fn loader(store: Store, window: std::time::Duration) -> DataLoader<StoreLoader> {
    DataLoader::new(StoreLoader { store }, tokio::spawn).delay(window)
}

pub fn load_error(err: LoadError) -> ApiError {
    match Arc::try_unwrap(err) {
        Ok(err) => err,
        Err(shared) => ApiError::Internal(shared.to_string()),
    }
}

/// Keys that differ only in their card: one statement answers a group of them.
fn groups<K, G: Hash + Eq>(keys: &[K], group: impl Fn(&K) -> G) -> HashMap<G, Vec<&K>> {
    let mut out: HashMap<G, Vec<&K>> = HashMap::new();
    for key in keys {
        out.entry(group(key)).or_default().push(key);
    }
    out
}

/// Cards by id.
impl Loader<String> for StoreLoader {
    type Value = cards::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, cards::Model>, LoadError> {
        let rows = self.store.cards_by_ids(keys).await.map_err(load_err)?;
        Ok(rows.into_iter().map(|c| (c.id.clone(), c)).collect())
    }
}

/// A whole table's count, for `totalCount`: however many connections of a request ask (a
/// query can alias one a thousand times), each table is counted once per batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CountOf {
    Cards(Accounts),
    Cardholders(Accounts),
    Users,
}

impl Loader<CountOf> for StoreLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[CountOf]) -> Result<HashMap<CountOf, u64>, LoadError> {
        let mut out = HashMap::new();
        for key in keys {
            let count = match key {
                CountOf::Cards(accounts) => self.store.count_cards(accounts).await,
                CountOf::Cardholders(accounts) => self.store.count_cardholders(accounts).await,
                CountOf::Users => self.store.count_users().await,
            };
            out.insert(key.clone(), count.map_err(load_err)?);
        }
        Ok(out)
    }
}

/// Cardholders by id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardholderId(pub String);

impl Loader<CardholderId> for StoreLoader {
    type Value = cardholders::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CardholderId],
    ) -> Result<HashMap<CardholderId, cardholders::Model>, LoadError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .store
            .cardholders_by_ids(&ids)
            .await
            .map_err(load_err)?;
        Ok(rows
            .into_iter()
            .map(|h| (CardholderId(h.id.clone()), h))
            .collect())
    }
}

/// The cards of a cardholder, oldest first.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardsOf(pub String);

impl Loader<CardsOf> for StoreLoader {
    type Value = Vec<cards::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CardsOf],
    ) -> Result<HashMap<CardsOf, Vec<cards::Model>>, LoadError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self.store.cards_of(&ids).await.map_err(load_err)?;
        let mut out: HashMap<CardsOf, Vec<cards::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for card in rows {
            out.entry(CardsOf(card.cardholder_id.clone()))
                .or_default()
                .push(card);
        }
        Ok(out)
    }
}

/// The transactions of an authorization.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransactionsOf(pub String);

impl Loader<TransactionsOf> for StoreLoader {
    type Value = Vec<transactions::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[TransactionsOf],
    ) -> Result<HashMap<TransactionsOf, Vec<transactions::Model>>, LoadError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self.store.transactions_of(&ids).await.map_err(load_err)?;
        let mut out: HashMap<TransactionsOf, Vec<transactions::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in rows {
            if let Some(auth) = &row.authorization_id {
                out.entry(TransactionsOf(auth.clone()))
                    .or_default()
                    .push(row);
            }
        }
        Ok(out)
    }
}

/// A page of a card's activity: newest first, after a cursor, at most `limit` rows.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ActivityOf {
    pub card: String,
    pub filter: ActivityFilter,
    pub page: Page<Cursor>,
}

impl Loader<ActivityOf> for StoreLoader {
    type Value = Vec<authorizations::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ActivityOf],
    ) -> Result<HashMap<ActivityOf, Vec<authorizations::Model>>, LoadError> {
        let mut out = HashMap::new();
        for ((filter, page), group) in groups(keys, |k| (k.filter.clone(), k.page.clone())) {
            let cards: Vec<String> = group.iter().map(|k| k.card.clone()).collect();
            let rows = self
                .store
                .activity_of_cards(&cards, &filter, &page)
                .await
                .map_err(load_err)?;
            let mut by_card: HashMap<String, Vec<authorizations::Model>> = HashMap::new();
            for row in rows {
                by_card.entry(row.card_id.clone()).or_default().push(row);
            }
            for key in group {
                out.insert(
                    (*key).clone(),
                    by_card.get(&key.card).cloned().unwrap_or_default(),
                );
            }
        }
        Ok(out)
    }
}

/// A card's spend totals in a currency over days `[from, to)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TotalsOf {
    pub card: CardCurrency,
    pub from_day: Option<i32>,
    pub to_day: Option<i32>,
}

impl Loader<TotalsOf> for StoreLoader {
    type Value = SpendTotals;
    type Error = LoadError;

    async fn load(&self, keys: &[TotalsOf]) -> Result<HashMap<TotalsOf, SpendTotals>, LoadError> {
        let mut out = HashMap::new();
        for ((from, to), group) in groups(keys, |k| (k.from_day, k.to_day)) {
            let cards: Vec<CardCurrency> = group.iter().map(|k| k.card.clone()).collect();
            let rows: HashMap<CardCurrency, SpendTotals> = self
                .store
                .spend_totals(&cards, from, to)
                .await
                .map_err(load_err)?
                .into_iter()
                .collect();
            for key in group {
                out.insert(
                    (*key).clone(),
                    rows.get(&key.card).cloned().unwrap_or_default(),
                );
            }
        }
        Ok(out)
    }
}

/// A card's spend by category or merchant, largest first.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyedOf {
    pub card: CardCurrency,
    pub key: SpendKey,
    /// Unix seconds, end exclusive.
    pub range: (Option<i64>, Option<i64>),
    pub limit: u64,
}

impl Loader<KeyedOf> for StoreLoader {
    type Value = Vec<KeyedSpend>;
    type Error = LoadError;

    async fn load(&self, keys: &[KeyedOf]) -> Result<HashMap<KeyedOf, Vec<KeyedSpend>>, LoadError> {
        per_card(
            keys,
            |k| (k.key, k.range, k.limit),
            |k| &k.card,
            |(key, range, limit), cards| async move {
                self.store.spend_by(key, &cards, range, limit).await
            },
        )
        .await
    }
}

/// A card's spend per bucket over days `[from, to)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SeriesOf {
    pub card: CardCurrency,
    pub from_day: Option<i32>,
    pub to_day: Option<i32>,
    pub bucket: SeriesBucket,
}

impl Loader<SeriesOf> for StoreLoader {
    type Value = Vec<SpendPoint>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[SeriesOf],
    ) -> Result<HashMap<SeriesOf, Vec<SpendPoint>>, LoadError> {
        per_card(
            keys,
            |k| (k.from_day, k.to_day, k.bucket),
            |k| &k.card,
            |(from, to, bucket), cards| async move {
                self.store.spend_series(&cards, from, to, bucket).await
            },
        )
        .await
    }
}

/// Answers keys that differ only in their card: one `fetch` per group of keys that share the
/// rest, whose rows (tagged with their card) are handed back to each key.
async fn per_card<K, G, R, Fut>(
    keys: &[K],
    group: impl Fn(&K) -> G,
    card: impl Fn(&K) -> &CardCurrency,
    fetch: impl Fn(G, Vec<CardCurrency>) -> Fut,
) -> Result<HashMap<K, Vec<R>>, LoadError>
where
    K: Clone + Eq + Hash,
    G: Hash + Eq,
    R: Clone,
    Fut: std::future::Future<Output = Result<Vec<(CardCurrency, R)>, cardstream_store::Error>>,
{
    let mut out = HashMap::new();
    for (shared, group) in groups(keys, group) {
        let cards: Vec<CardCurrency> = group.iter().map(|k| card(k).clone()).collect();
        let mut by_card: HashMap<CardCurrency, Vec<R>> = HashMap::new();
        for (card, row) in fetch(shared, cards).await.map_err(load_err)? {
            by_card.entry(card).or_default().push(row);
        }
        for key in group {
            let rows = by_card.get(card(key)).cloned().unwrap_or_default();
            out.insert(key.clone(), rows);
        }
    }
    Ok(out)
}
