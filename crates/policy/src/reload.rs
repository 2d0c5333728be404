use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use cardstream_stripe::Currency;
use tokio_util::sync::CancellationToken;

use crate::policy::FailMode;
use crate::watch::watch_file;
use crate::{Error, Policy};

/// Where the policy comes from: a TOML file, and/or individual settings that override the
/// file's fields (handy in a container without a mounted file).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// TOML file with the authorization policy. Re-read when it changes (edit a mounted
    /// ConfigMap and the gateway follows without a restart).
    #[arg(long = "policy-file", env = "CARDSTREAM_POLICY_FILE")]
    pub file: Option<PathBuf>,

    /// Currencies that may be authorized, comma-separated; replaces the file's
    /// `allowed_currencies`. Empty policy = any currency.
    #[arg(
        long = "policy-allowed-currencies",
        env = "CARDSTREAM_POLICY_ALLOWED_CURRENCIES",
        value_delimiter = ','
    )]
    pub allowed_currencies: Option<Vec<Currency>>,

    /// Largest single authorization per currency in minor units, as `usd=500000,jpy=500000`;
    /// replaces the file's `max_amount`.
    #[arg(
        long = "policy-max-amount",
        env = "CARDSTREAM_POLICY_MAX_AMOUNT",
        value_delimiter = ',',
        value_parser = parse_max_amount
    )]
    pub max_amount: Option<Vec<(Currency, i64)>>,

    /// Most a card may spend per UTC day, per currency, as `usd=100000,jpy=100000`; replaces
    /// the file's `daily_limit`. Needs the database (CARDSTREAM_DATABASE_URL).
    #[arg(
        long = "policy-daily-limit",
        env = "CARDSTREAM_POLICY_DAILY_LIMIT",
        value_delimiter = ',',
        value_parser = parse_max_amount
    )]
    pub daily_limit: Option<Vec<(Currency, i64)>>,

    /// Most a card may spend per UTC calendar month, per currency; replaces the file's
    /// `monthly_limit`.
    #[arg(
        long = "policy-monthly-limit",
        env = "CARDSTREAM_POLICY_MONTHLY_LIMIT",
        value_delimiter = ',',
        value_parser = parse_max_amount
    )]
    pub monthly_limit: Option<Vec<(Currency, i64)>>,

    /// Decision when a spend limit applies but the card's spend is unknown or stale; replaces
    /// the file's `on_spend_unknown`.
    #[arg(
        long = "policy-on-spend-unknown",
        env = "CARDSTREAM_POLICY_ON_SPEND_UNKNOWN",
        value_enum
    )]
    pub on_spend_unknown: Option<FailMode>,

    /// Approve what the daily/monthly limit has left of a request whose amount Stripe lets
    /// cardstream choose, instead of declining it; replaces the file's `partial_approval`.
    #[arg(
        long = "policy-partial-approval",
        env = "CARDSTREAM_POLICY_PARTIAL_APPROVAL"
    )]
    pub partial_approval: Option<bool>,

    /// Merchant categories always declined, comma-separated; replaces the file's
    /// `blocked_categories`.
    #[arg(
        long = "policy-blocked-categories",
        env = "CARDSTREAM_POLICY_BLOCKED_CATEGORIES",
        value_delimiter = ','
    )]
    pub blocked_categories: Option<Vec<String>>,

    /// Card ids to treat as inactive, comma-separated; replaces the file's `inactive_cards`.
    #[arg(
        long = "policy-inactive-cards",
        env = "CARDSTREAM_POLICY_INACTIVE_CARDS",
        value_delimiter = ','
    )]
    pub inactive_cards: Option<Vec<String>>,

    /// Cardholder ids to treat as inactive, comma-separated; replaces the file's
    /// `inactive_cardholders`.
    #[arg(
        long = "policy-inactive-cardholders",
        env = "CARDSTREAM_POLICY_INACTIVE_CARDHOLDERS",
        value_delimiter = ','
    )]
    pub inactive_cardholders: Option<Vec<String>>,

    /// How often the policy file is checked for changes.
    #[arg(
        long = "policy-reload-interval",
        env = "CARDSTREAM_POLICY_RELOAD_INTERVAL",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub reload_interval: Duration,
}

fn parse_max_amount(raw: &str) -> Result<(Currency, i64), String> {
    let (currency, amount) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected currency=amount, got {raw:?}"))?;
    let currency = currency
        .trim()
        .parse::<Currency>()
        .map_err(|e| e.to_string())?;
    let amount = amount
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("{amount:?} is not an amount in minor units"))?;
    Ok((currency, amount))
}

impl PolicyArgs {
    /// The file's policy (or the empty one) with the overrides applied, validated.
    pub fn resolve(&self) -> Result<Policy, Error> {
        let mut policy = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                // An empty file is what a rewrite looks like halfway (truncated, not yet
                // written), and the empty policy approves everything: never take it as meant.
                if text
                    .lines()
                    .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
                {
                    return Err(Error::Parse {
                        path: path.clone(),
                        message: "the file sets nothing; an empty policy would approve every authorization, so it is refused (to approve everything on purpose, set a field, e.g. on_spend_unknown = \"approve\")".into(),
                    });
                }
                Policy::from_toml(&text).map_err(|message| Error::Parse {
                    path: path.clone(),
                    message,
                })?
            }
            None => Policy::default(),
        };
        if let Some(v) = &self.allowed_currencies {
            policy.allowed_currencies = v.iter().copied().collect();
        }
        if let Some(v) = &self.max_amount {
            policy.max_amount = v.iter().copied().collect();
        }
        if let Some(v) = &self.daily_limit {
            policy.daily_limit = v.iter().copied().collect();
        }
        if let Some(v) = &self.monthly_limit {
            policy.monthly_limit = v.iter().copied().collect();
        }
        if let Some(mode) = self.on_spend_unknown {
            policy.on_spend_unknown = mode;
        }
        if let Some(partial) = self.partial_approval {
            policy.partial_approval = partial;
        }
        if let Some(v) = &self.blocked_categories {
            policy.blocked_categories = v.iter().map(|s| s.trim().to_owned()).collect();
        }
        if let Some(v) = &self.inactive_cards {
            policy.inactive_cards = v.iter().map(|s| s.trim().to_owned()).collect();
        }
        if let Some(v) = &self.inactive_cardholders {
            policy.inactive_cardholders = v.iter().map(|s| s.trim().to_owned()).collect();
        }
        policy.validate()?;
        Ok(policy)
    }
}

/// The policy in force, swapped atomically: a decision reads it without locking, and a reload
/// never leaves a half-updated policy visible.
///
/// Two sources: the configured policy (file and environment) and the one an admin saved in the
/// database. The saved one, when there is one, is in force.
#[derive(Clone, Debug)]
pub struct PolicyStore {
    current: Arc<ArcSwap<Policy>>,
    layers: Arc<std::sync::Mutex<Layers>>,
}

#[derive(Debug)]
struct Layers {
    configured: Arc<Policy>,
    saved: Option<(i64, Arc<Policy>)>,
}

impl PolicyStore {
    pub fn new(policy: Policy) -> Self {
        let policy = Arc::new(policy);
        PolicyStore {
            current: Arc::new(ArcSwap::new(policy.clone())),
            layers: Arc::new(std::sync::Mutex::new(Layers {
                configured: policy,
                saved: None,
            })),
        }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Replaces the configured policy (in force unless an admin saved one).
    pub fn replace(&self, policy: Policy) {
        if let Ok(mut layers) = self.layers.lock() {
            layers.configured = Arc::new(policy);
            self.publish(&layers);
        }
    }

    /// Sets (or, with `None`, clears) the policy an admin saved, with its version.
    pub fn set_saved(&self, saved: Option<(i64, Policy)>) {
        if let Ok(mut layers) = self.layers.lock() {
            layers.saved = saved.map(|(version, policy)| (version, Arc::new(policy)));
            self.publish(&layers);
        }
    }

    /// The version of the saved policy in force, if any.
    pub fn saved_version(&self) -> Option<i64> {
        self.layers
            .lock()
            .ok()
            .and_then(|l| l.saved.as_ref().map(|(v, _)| *v))
    }

    fn publish(&self, layers: &Layers) {
        let effective = layers
            .saved
            .as_ref()
            .map_or_else(|| layers.configured.clone(), |(_, p)| p.clone());
        self.current.store(effective);
    }

    /// Re-reads the policy file every `reload_interval` and swaps in a changed policy. An
    /// invalid edit is reported through `on_reload` and logged; the last good policy stays.
    pub fn watch(
        &self,
        args: PolicyArgs,
        shutdown: CancellationToken,
        on_reload: impl Fn(Result<(), &Error>) + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let path = args.file.clone()?;
        let store = self.clone();
        let every = args.reload_interval;
        Some(watch_file(
            path.clone(),
            every,
            shutdown,
            move || match args.resolve() {
                Ok(policy) => {
                    store.replace(policy);
                    tracing::info!(path = %path.display(), "configured authorization policy reloaded");
                    if store.saved_version().is_some() {
                        tracing::info!(
                            "an admin-saved policy is in force; the file applies again if it is removed"
                        );
                    }
                    on_reload(Ok(()));
                }
                Err(err) => {
                    tracing::warn!(%err, "the edited policy is invalid; keeping the previous one");
                    on_reload(Err(&err));
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_policy_wins_over_the_configured_one_until_cleared() {
        let store = PolicyStore::new(Policy::from_toml("allowed_currencies = [\"usd\"]").unwrap());
        let saved = Policy::from_toml("allowed_currencies = [\"eur\"]").unwrap();
        store.set_saved(Some((3, saved)));
        assert_eq!(store.saved_version(), Some(3));
        assert!(store.current().allowed_currencies.contains(&Currency::EUR));
        store.replace(Policy::from_toml("allowed_currencies = [\"jpy\"]").unwrap());
        assert!(
            store.current().allowed_currencies.contains(&Currency::EUR),
            "the saved one stays in force"
        );
        store.set_saved(None);
        assert!(store.current().allowed_currencies.contains(&Currency::JPY));
    }

    #[test]
    fn overrides_replace_file_fields() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut file,
            b"allowed_currencies = [\"usd\"]\nblocked_categories = [\"betting_casino_gambling\"]\n",
        )
        .unwrap();
        let args = PolicyArgs {
            file: Some(file.path().to_owned()),
            allowed_currencies: Some(vec![Currency::EUR]),
            max_amount: Some(vec![parse_max_amount("jpy=5000").unwrap()]),
            ..PolicyArgs::default()
        };
        let policy = args.resolve().unwrap();
        assert_eq!(policy.allowed_currencies.len(), 1);
        assert!(policy.allowed_currencies.contains(&Currency::EUR));
        assert_eq!(policy.max_amount[&Currency::JPY], 5000);
        assert!(
            policy
                .blocked_categories
                .contains("betting_casino_gambling")
        );
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        assert!(
            parse_max_amount("usd")
                .unwrap_err()
                .contains("currency=amount")
        );
        assert!(parse_max_amount("usd=ten").unwrap_err().contains("ten"));
        let args = PolicyArgs {
            file: Some("/nonexistent/policy.toml".into()),
            ..PolicyArgs::default()
        };
        assert!(
            args.resolve()
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/policy.toml")
        );
        let args = PolicyArgs {
            blocked_categories: Some(vec!["casinos".into()]),
            ..PolicyArgs::default()
        };
        assert!(args.resolve().unwrap_err().to_string().contains("casinos"));
    }

    /// Replaces the file at `path` as a ConfigMap update does: the whole new file is written
    /// beside it, then renamed over it, so a reader sees the old file or the new one, never a
    /// half-written one (an in-place write would race the reloader's reads).
    fn replace_atomically(path: &std::path::Path, contents: &str) {
        let dir = path.parent().unwrap();
        let mut staged = tempfile::NamedTempFile::new_in(dir).unwrap();
        std::io::Write::write_all(&mut staged, contents.as_bytes()).unwrap();
        staged.persist(path).unwrap();
    }

    #[tokio::test]
    async fn an_edited_file_is_picked_up_and_a_broken_edit_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        replace_atomically(&path, "allowed_currencies = [\"usd\"]\n");
        let args = PolicyArgs {
            file: Some(path.clone()),
            reload_interval: Duration::from_millis(20),
            ..PolicyArgs::default()
        };
        let store = PolicyStore::new(args.resolve().unwrap());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let task = store
            .watch(args, shutdown.clone(), move |r| {
                let _ = tx.send(r.is_ok());
            })
            .unwrap();

        replace_atomically(&path, "allowed_currencies = [\"jpy\"]\n");
        assert!(rx.recv().await.unwrap());
        assert!(store.current().allowed_currencies.contains(&Currency::JPY));

        replace_atomically(&path, "allowed_currencies = [\"yen!\"]\n");
        assert!(!rx.recv().await.unwrap());
        assert!(store.current().allowed_currencies.contains(&Currency::JPY));

        // Emptied (what an in-place rewrite looks like halfway, truncated and not yet
        // written, should it hold still that long): refused, the last good policy stays.
        replace_atomically(&path, "");
        assert!(!rx.recv().await.unwrap());
        assert!(store.current().allowed_currencies.contains(&Currency::JPY));

        shutdown.cancel();
        task.await.unwrap();
    }
}
