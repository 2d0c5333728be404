//! Sign-in sessions, and the edits of a user that end them.
//!
//! Every change that could make an open session wrong (logout, a new password, a disabled,
//! deleted or demoted user, other cardholders) ends the user's sessions and sends
//! `NOTIFY cardstream_sessions` in the same transaction, so each API replica forgets what it
//! cached about them as soon as the change is committed, and never before.

use std::time::Duration;

use sqlx::{Postgres, Transaction};

use serde_json::json;

use crate::accounts::{Role, User};
use crate::audit::audit_in;
use crate::{Error, Store};

/// The channel an ended session or an edited user is announced on, with `{"user": <id>}`.
pub const SESSIONS_CHANNEL: &str = "cardstream_sessions";

/// Why sessions ended, kept in `sessions.ended_reason` for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    PasswordChanged,
    PasswordReset,
    Disabled,
    RoleChanged,
    CardholdersChanged,
    AccountsChanged,
}

impl EndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::PasswordChanged => "password_changed",
            EndReason::PasswordReset => "password_reset",
            EndReason::Disabled => "user_disabled",
            EndReason::RoleChanged => "role_changed",
            EndReason::CardholdersChanged => "cardholders_changed",
            EndReason::AccountsChanged => "accounts_changed",
        }
    }
}

/// An open session and its user.
#[derive(Debug, Clone)]
pub struct OpenSession {
    pub user: User,
    /// The cardholders the user may see.
    pub cardholders: Vec<String>,
    /// The Connect accounts the user is limited to; empty: every account.
    pub accounts: Vec<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// 128 random bits as hex, from the operating system's generator.
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::TryRngCore;
    let mut buffer = vec![0u8; bytes];
    // The OS generator failing is not something to continue past with a weaker id.
    #[allow(clippy::expect_used)]
    rand::rngs::OsRng
        .try_fill_bytes(&mut buffer)
        .expect("the operating system's random generator failed");
    hex::encode(buffer)
}

type UserRow = (i64, String, String, String, bool, i64);
/// A user's row, the session's expiry, the user's cardholders and accounts.
type SessionRow = (
    i64,
    String,
    String,
    String,
    bool,
    i64,
    i64,
    Vec<String>,
    Vec<String>,
);

pub(crate) fn user_from_row((id, email, password_hash, role, disabled, created): UserRow) -> User {
    User {
        id,
        email,
        role: Role::parse(&role),
        password_hash,
        disabled,
        created,
    }
}

/// Links `user_id` to each of `values` in `table` (`user_cardholders` or `user_accounts`,
/// whose value column is `column`); repeats are ignored.
pub(crate) async fn insert_user_links(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    column: &str,
    user_id: i64,
    values: &[String],
) -> Result<(), Error> {
    sqlx::query(&format!(
        "INSERT INTO {table} (user_id, {column})
         SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING"
    ))
    .bind(user_id)
    .bind(values)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends every open session of `user_id` and announces the change, inside `tx`.
pub(crate) async fn end_sessions_in(
    tx: &mut Transaction<'_, Postgres>,
    user_id: i64,
    reason: EndReason,
) -> Result<u64, Error> {
    let ended = sqlx::query(
        "UPDATE sessions SET ended_at = now(), ended_reason = $2
         WHERE user_id = $1 AND ended_at IS NULL",
    )
    .bind(user_id)
    .bind(reason.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    announce_in(tx, user_id).await?;
    Ok(ended)
}

/// What [`SESSIONS_CHANNEL`] carries: the user whose sessions ended or whose account changed.
/// The store sends it and the API's listener reads it, both through this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionNotice {
    pub user: i64,
}

impl SessionNotice {
    /// The NOTIFY payload: `{"user": <id>}`.
    pub fn to_payload(&self) -> String {
        // A struct of one integer always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_payload(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

/// `NOTIFY cardstream_sessions` for `user_id`; delivered when `tx` commits.
pub(crate) async fn announce_in(
    tx: &mut Transaction<'_, Postgres>,
    user_id: i64,
) -> Result<(), Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(SESSIONS_CHANNEL)
        .bind(SessionNotice { user: user_id }.to_payload())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Opens a session for `user_id` lasting `ttl`; returns its id and expiry (unix seconds).
    /// Sessions that ended or expired a week ago are deleted on the way.
    pub async fn open_session(&self, user_id: i64, ttl: Duration) -> Result<(String, i64), Error> {
        let id = random_hex(16);
        let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.tally(2);
        sqlx::query(
            "DELETE FROM sessions WHERE coalesce(ended_at, expires_at) < now() - interval '7 days'",
        )
        .execute(self.pool())
        .await?;
        let expires: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (id, user_id, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             RETURNING extract(epoch FROM expires_at)::bigint",
        )
        .bind(&id)
        .bind(user_id)
        .bind(seconds as f64)
        .fetch_one(self.pool())
        .await?;
        Ok((id, expires))
    }

    /// The user of an open, unexpired session, when that user exists and is enabled.
    pub async fn session(&self, session_id: &str) -> Result<Option<OpenSession>, Error> {
        self.tally(1);
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.password_hash, u.role, u.disabled, u.created,
                    extract(epoch FROM s.expires_at)::bigint,
                    ARRAY(SELECT cardholder_id FROM user_cardholders uc
                          WHERE uc.user_id = u.id ORDER BY cardholder_id),
                    ARRAY(SELECT account FROM user_accounts ua
                          WHERE ua.user_id = u.id ORDER BY account)
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > now()
               AND NOT u.disabled",
        )
        .bind(session_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(
            |(id, email, hash, role, disabled, created, expires_at, cardholders, accounts)| {
                OpenSession {
                    user: user_from_row((id, email, hash, role, disabled, created)),
                    cardholders,
                    accounts,
                    expires_at,
                }
            },
        ))
    }

    /// Ends one session (logout, by its user: the audit log's actor). Returns whether it was
    /// open.
    pub async fn end_session(&self, session_id: &str, reason: EndReason) -> Result<bool, Error> {
        self.tally(4);
        let mut tx = self.pool().begin().await?;
        let user: Option<(i64, String)> = sqlx::query_as(
            "UPDATE sessions s SET ended_at = now(), ended_reason = $2 FROM users u
             WHERE s.id = $1 AND s.ended_at IS NULL AND u.id = s.user_id
             RETURNING s.user_id, u.email",
        )
        .bind(session_id)
        .bind(reason.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((user, email)) = &user {
            announce_in(&mut tx, *user).await?;
            let details = json!({"reason": reason.as_str()});
            audit_in(&mut tx, email, "session.ended", email, details).await?;
        }
        tx.commit().await?;
        Ok(user.is_some())
    }

    /// Sets a new password hash, `by` its user, and ends every session of the user.
    pub async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        by: &str,
    ) -> Result<(), Error> {
        self.tally(4);
        let mut tx = self.pool().begin().await?;
        let email: Option<String> =
            sqlx::query_scalar("UPDATE users SET password_hash = $2 WHERE id = $1 RETURNING email")
                .bind(user_id)
                .bind(password_hash)
                .fetch_optional(&mut *tx)
                .await?;
        let email = email.ok_or(Error::NotFound("user"))?;
        let ended = end_sessions_in(&mut tx, user_id, EndReason::PasswordChanged).await?;
        let details = json!({"sessions_ended": ended});
        audit_in(&mut tx, by, "user.password_changed", &email, details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables (ending every session) or enables a user, for `by`.
    pub async fn set_user_disabled(
        &self,
        user_id: i64,
        disabled: bool,
        by: &str,
    ) -> Result<User, Error> {
        self.tally(5);
        let mut tx = self.pool().begin().await?;
        if disabled {
            keep_an_admin(&mut tx, user_id).await?;
        }
        let user = update_user(
            &mut tx,
            "UPDATE users SET disabled = $2 WHERE id = $1
             RETURNING id, email, password_hash, role, disabled, created",
            user_id,
            disabled,
        )
        .await?;
        let ended = end_sessions_in(&mut tx, user_id, EndReason::Disabled).await?;
        let action = if disabled {
            "user.disabled"
        } else {
            "user.enabled"
        };
        let details = json!({"sessions_ended": ended});
        audit_in(&mut tx, by, action, &user.email, details).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Gives a user another role, for `by`, ending every session of theirs.
    pub async fn set_user_role(&self, user_id: i64, role: Role, by: &str) -> Result<User, Error> {
        self.tally(6);
        let mut tx = self.pool().begin().await?;
        if role != Role::Admin {
            keep_an_admin(&mut tx, user_id).await?;
        }
        let before: Option<String> =
            sqlx::query_scalar("SELECT role FROM users WHERE id = $1 FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let user = update_user(
            &mut tx,
            "UPDATE users SET role = $2 WHERE id = $1
             RETURNING id, email, password_hash, role, disabled, created",
            user_id,
            role.as_str(),
        )
        .await?;
        let ended = end_sessions_in(&mut tx, user_id, EndReason::RoleChanged).await?;
        let details = json!({"from": before, "to": role.as_str(), "sessions_ended": ended});
        audit_in(&mut tx, by, "user.role_changed", &user.email, details).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Replaces the cardholders a user may see, for `by`, ending every session of theirs.
    pub async fn set_user_cardholders(
        &self,
        user_id: i64,
        cardholders: &[String],
        by: &str,
    ) -> Result<User, Error> {
        self.replace_user_links(
            user_id,
            "user_cardholders",
            "cardholder_id",
            cardholders,
            EndReason::CardholdersChanged,
            by,
        )
        .await
    }

    /// Replaces a user's rows in `table` (their cardholders or accounts) with `values` of
    /// `column`, for `by`, under the user's row lock, ending every session of theirs.
    pub(crate) async fn replace_user_links(
        &self,
        user_id: i64,
        table: &str,
        column: &str,
        values: &[String],
        reason: EndReason,
        by: &str,
    ) -> Result<User, Error> {
        self.tally(7);
        let mut tx = self.pool().begin().await?;
        let user: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, role, disabled, created FROM users WHERE id = $1 FOR UPDATE",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let user = user.map(user_from_row).ok_or(Error::NotFound("user"))?;
        let before: Vec<String> = sqlx::query_scalar(&format!(
            "DELETE FROM {table} WHERE user_id = $1 RETURNING {column}"
        ))
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        insert_user_links(&mut tx, table, column, user_id, values).await?;
        let ended = end_sessions_in(&mut tx, user_id, reason).await?;
        let mut before = before;
        before.sort();
        let mut after = values.to_vec();
        after.sort();
        after.dedup();
        let details = json!({"from": before, "to": after, "sessions_ended": ended});
        let action = format!("user.{}", reason.as_str());
        audit_in(&mut tx, by, &action, &user.email, details).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Deletes a user, for `by`; their sessions and links go with them.
    pub async fn delete_user(&self, user_id: i64, by: &str) -> Result<(), Error> {
        self.tally(4);
        let mut tx = self.pool().begin().await?;
        keep_an_admin(&mut tx, user_id).await?;
        let deleted: Option<(String, String)> =
            sqlx::query_as("DELETE FROM users WHERE id = $1 RETURNING email, role")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let (email, role) = deleted.ok_or(Error::NotFound("user"))?;
        announce_in(&mut tx, user_id).await?;
        audit_in(&mut tx, by, "user.deleted", &email, json!({"role": role})).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn update_user<T>(
    tx: &mut Transaction<'_, Postgres>,
    sql: &'static str,
    user_id: i64,
    value: T,
) -> Result<User, Error>
where
    T: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
{
    let row: Option<UserRow> = sqlx::query_as(sql)
        .bind(user_id)
        .bind(value)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(user_from_row).ok_or(Error::NotFound("user"))
}

/// Refuses an edit that would leave no enabled admin (nobody could then manage users).
async fn keep_an_admin(tx: &mut Transaction<'_, Postgres>, user_id: i64) -> Result<(), Error> {
    // Lock the admins' rows so two admins removing each other at once cannot both pass.
    let others: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'admin' AND NOT disabled AND id <> $1 FOR UPDATE",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    let is_admin: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin')")
            .bind(user_id)
            .fetch_one(&mut **tx)
            .await?;
    if is_admin && others.is_empty() {
        return Err(Error::Conflict(
            "this is the last enabled admin; make another admin first".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SessionNotice;

    #[test]
    fn the_session_notice_is_the_user_id_and_reads_back() {
        let payload = SessionNotice { user: 42 }.to_payload();
        assert_eq!(payload, r#"{"user":42}"#);
        assert_eq!(
            SessionNotice::from_payload(&payload).ok(),
            Some(SessionNotice { user: 42 })
        );
        assert!(SessionNotice::from_payload(r#"{"user":"42"}"#).is_err());
    }
}
