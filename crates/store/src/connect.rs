//! Stripe Connect accounts: which accounts' rows a read covers, the accounts a user is
//! limited to, and the connected accounts there are.

use sea_orm::sea_query::SimpleExpr;
use sea_orm::{ColumnTrait, Condition};

use crate::sessions::EndReason;
use crate::{Error, Store, User};

/// Whether `account` is a Connect account id as Stripe writes them (`acct_` and letters and
/// digits); anything else is refused before it reaches a query.
pub fn is_account_id(account: &str) -> bool {
    account.len() <= 64
        && account
            .strip_prefix("acct_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Which Connect accounts' rows a read covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Accounts {
    /// Every account's, and the platform's own (an unrestricted admin).
    #[default]
    All,
    /// Only these connected accounts' (never the platform's own rows).
    Only(Vec<String>),
}

impl Accounts {
    /// Whether a row of `account` (`None`: the platform's own) is covered.
    pub fn covers(&self, account: Option<&str>) -> bool {
        match self {
            Accounts::All => true,
            Accounts::Only(only) => account.is_some_and(|a| only.iter().any(|o| o == a)),
        }
    }

    /// The condition on a table's `account` column, for sea-orm queries.
    pub(crate) fn condition(&self, column: impl ColumnTrait) -> Condition {
        match self {
            Accounts::All => Condition::all(),
            Accounts::Only(only) => {
                Condition::all().add::<SimpleExpr>(column.is_in(only.iter().cloned()))
            }
        }
    }
}

/// A connected account and how much of it cardstream holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectedAccount {
    pub id: String,
    pub cards: i64,
    pub cardholders: i64,
}

impl Store {
    /// The connected accounts that have cards or cardholders, among `accounts`, by id.
    pub async fn connected_accounts(
        &self,
        accounts: &Accounts,
    ) -> Result<Vec<ConnectedAccount>, Error> {
        let only: Option<Vec<String>> = match accounts {
            Accounts::All => None,
            Accounts::Only(only) => Some(only.clone()),
        };
        Ok(sqlx::query_as(
            "SELECT coalesce(c.account, h.account) AS id,
                    coalesce(c.n, 0) AS cards, coalesce(h.n, 0) AS cardholders
             FROM (SELECT account, count(*) AS n FROM cards
                   WHERE account IS NOT NULL GROUP BY account) c
             FULL JOIN (SELECT account, count(*) AS n FROM cardholders
                        WHERE account IS NOT NULL GROUP BY account) h ON h.account = c.account
             WHERE $1::text[] IS NULL OR coalesce(c.account, h.account) = ANY($1)
             ORDER BY 1",
        )
        .bind(only)
        .fetch_all(self.pool())
        .await?)
    }

    /// The accounts each of `user_ids` is limited to.
    pub async fn accounts_of(&self, user_ids: &[i64]) -> Result<Vec<(i64, String)>, Error> {
        Ok(sqlx::query_as(
            "SELECT user_id, account FROM user_accounts WHERE user_id = ANY($1)
             ORDER BY user_id, account",
        )
        .bind(user_ids)
        .fetch_all(self.pool())
        .await?)
    }

    /// Limits a user to `accounts` (none: every account), for `by`, ending every session of
    /// theirs so that what they see changes at once.
    pub async fn set_user_accounts(
        &self,
        user_id: i64,
        accounts: &[String],
        by: &str,
    ) -> Result<User, Error> {
        if let Some(bad) = accounts.iter().find(|a| !is_account_id(a)) {
            return Err(Error::Invalid(format!(
                "{bad:?} is not a Stripe account id (acct_…)"
            )));
        }
        self.replace_user_links(
            user_id,
            "user_accounts",
            "account",
            accounts,
            EndReason::AccountsChanged,
            by,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_checked() {
        assert!(is_account_id("acct_1Nv0FGQ9RKHgCVdK"));
        for bad in [
            "",
            "acct_",
            "acct_1 2",
            "acct_x'--",
            "cus_123",
            &format!("acct_{}", "a".repeat(60)),
        ] {
            assert!(!is_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn only_covers_its_accounts_and_never_the_platform() {
        let only = Accounts::Only(vec!["acct_a".into()]);
        assert!(only.covers(Some("acct_a")));
        assert!(!only.covers(Some("acct_b")));
        assert!(!only.covers(None));
        assert!(Accounts::All.covers(None));
    }
}
