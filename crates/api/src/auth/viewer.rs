use std::collections::BTreeSet;

use cardstream_store::{Accounts, Role, User};

/// The authenticated user behind a request, with what they may see, as of now: read with the
/// session from the database (through [`super::Sessions`]' cache, which a change empties).
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) user: User,
    /// The cardholders a cardholder user is linked to; empty for admins, who see all.
    pub(crate) cardholders: BTreeSet<String>,
    /// The Connect accounts the user is limited to; empty: every account (a platform user).
    pub(crate) accounts: BTreeSet<String>,
    /// The session the request came with.
    pub(crate) session_id: String,
}

impl Viewer {
    pub(crate) fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// An admin of the whole platform: every account, and the program-wide operations (users,
    /// invitations, the authorization policy). An admin limited to accounts only reads them.
    pub(crate) fn is_platform_admin(&self) -> bool {
        self.is_admin() && self.accounts.is_empty()
    }

    /// Whether the viewer may see things of this cardholder (in an account they may see: see
    /// [`Viewer::sees_account`]).
    pub(crate) fn sees_cardholder(&self, cardholder_id: &str) -> bool {
        self.is_admin() || self.cardholders.contains(cardholder_id)
    }

    /// Whether the viewer may see rows of `account` (`None`: the platform's own).
    pub(crate) fn sees_account(&self, account: Option<&str>) -> bool {
        self.scope().covers(account)
    }

    /// The accounts whose rows the viewer may see.
    pub(crate) fn scope(&self) -> Accounts {
        if self.accounts.is_empty() {
            Accounts::All
        } else {
            Accounts::Only(self.accounts.iter().cloned().collect())
        }
    }

    /// The viewer's scope narrowed to `account` when one is asked for; an account the viewer
    /// may not see is `None` (the caller answers NOT_FOUND, as for any object not theirs).
    pub(crate) fn scope_to(&self, account: Option<&str>) -> Option<Accounts> {
        match account {
            None => Some(self.scope()),
            Some(account) => (cardstream_store::is_account_id(account)
                && self.sees_account(Some(account)))
            .then(|| Accounts::Only(vec![account.to_owned()])),
        }
    }
}
