//! The audit log, for the platform's admins: every admin action with who, when and what
//! changed (the store writes each in the transaction that makes the change).

use async_graphql::{Context, ID, Json, SimpleObject};
use cardstream_store::{AuditEntry, AuditFilter};

use super::context::{platform_admin, store};
use super::errors::{ApiError, ApiResult};
use super::scalars::DateTime;

/// Most entries one query lists.
pub const MAX_AUDIT: i32 = 200;

/// One admin action.
#[derive(SimpleObject)]
#[graphql(name = "AuditEntry")]
pub struct AuditEntryObject {
    pub id: ID,
    pub at: DateTime,
    /// The signed-in user's email, or `cli:<os user>` for a command run on a shell.
    pub actor: String,
    /// e.g. `policy.updated`, `user.role_changed`, `dead_letters.redrive_requested`.
    pub action: String,
    /// What it was done to: a user's email, the policy's version, dead letter ids.
    pub subject: String,
    /// What changed: `from` and `to` where there is a before; never a secret.
    pub details: Json<serde_json::Value>,
}

impl From<AuditEntry> for AuditEntryObject {
    fn from(e: AuditEntry) -> Self {
        AuditEntryObject {
            id: ID(e.id.to_string()),
            at: DateTime(e.at),
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            details: Json(e.details),
        }
    }
}

/// Entries newest first: of `action` and `actor` only when given, older than `before` (an
/// entry's id: the previous page's last) when given; the `first` (at most [`MAX_AUDIT`]).
pub async fn audit_log(
    ctx: &Context<'_>,
    action: Option<String>,
    actor: Option<String>,
    before: Option<ID>,
    first: i32,
) -> ApiResult<Vec<AuditEntryObject>> {
    platform_admin(ctx).await?;
    if !(1..=MAX_AUDIT).contains(&first) {
        return Err(ApiError::BadUserInput(format!(
            "first must be between 1 and {MAX_AUDIT}"
        )));
    }
    let before = before
        .map(|id| {
            id.parse::<i64>().map_err(|_| {
                ApiError::BadUserInput(format!("{:?} is not an entry's id", id.as_str()))
            })
        })
        .transpose()?;
    let filter = AuditFilter {
        action,
        actor,
        before,
        limit: first.unsigned_abs(),
    };
    let entries = store(ctx).audit_log(&filter).await?;
    Ok(entries.into_iter().map(AuditEntryObject::from).collect())
}
