use std::collections::BTreeSet;

use cardstream_store::{Role, User};

/// The authenticated user behind a request, with what they may see, as of now: read with the
/// session from the database (through [`super::Sessions`]' cache, which a change empties).
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) user: User,
    /// The cardholders a cardholder user is linked to; empty for admins, who see all.
    pub(crate) cardholders: BTreeSet<String>,
    /// The session the request came with.
    pub(crate) session_id: String,
}

impl Viewer {
    pub(crate) fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Whether the viewer may see things of this cardholder.
    pub(crate) fn sees_cardholder(&self, cardholder_id: &str) -> bool {
        self.is_admin() || self.cardholders.contains(cardholder_id)
    }
}
