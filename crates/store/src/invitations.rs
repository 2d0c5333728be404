//! Invitations and password resets: one-time links an admin hands out.
//!
//! The link carries 256 random bits; only their SHA-256 digest is stored, so a reader of the
//! database (or a backup) cannot use a pending link. A link works once, until it expires or is
//! revoked; inviting the same email again, or resetting the same user again, revokes the
//! earlier link.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::accounts::{Role, User};
use crate::paging::{Direction, Page};
use serde_json::json;

use crate::audit::audit_in;
use crate::sessions::{EndReason, end_sessions_in, insert_user_links, random_hex, user_from_row};
use crate::{Error, Store};

/// What accepting a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationKind {
    /// Creates the user with the invited role, cardholders and accounts.
    Invite,
    /// Sets a new password for an existing user.
    PasswordReset,
}

impl InvitationKind {
    fn as_str(self) -> &'static str {
        match self {
            InvitationKind::Invite => "invite",
            InvitationKind::PasswordReset => "password_reset",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "password_reset" {
            InvitationKind::PasswordReset
        } else {
            InvitationKind::Invite
        }
    }
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation or password reset, without its secret.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: i64,
    pub kind: InvitationKind,
    pub email: String,
    pub role: Role,
    pub cardholder_ids: Vec<String>,
    /// The Connect accounts the user will be limited to; empty: every account.
    pub accounts: Vec<String>,
    pub invited_by: Option<String>,
    /// The user a password reset is for; none for an invitation.
    pub user_id: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub state: InvitationState,
}

type Row = (
    i64,
    String,
    String,
    String,
    Vec<String>,
    Vec<String>,
    Option<String>,
    i64,
    i64,
    String,
    Option<i64>,
);

const COLUMNS: &str = "id, kind, email, role, cardholder_ids, accounts, invited_by,
    extract(epoch FROM created_at)::bigint, extract(epoch FROM expires_at)::bigint,
    CASE WHEN accepted_at IS NOT NULL THEN 'accepted'
         WHEN revoked_at IS NOT NULL THEN 'revoked'
         WHEN expires_at <= now() THEN 'expired'
         ELSE 'pending' END,
    user_id";

fn from_row(row: Row) -> Invitation {
    let (
        id,
        kind,
        email,
        role,
        cardholder_ids,
        accounts,
        invited_by,
        created_at,
        expires_at,
        state,
        user_id,
    ) = row;
    Invitation {
        id,
        kind: InvitationKind::parse(&kind),
        email,
        role: Role::parse(&role),
        cardholder_ids,
        accounts,
        invited_by,
        user_id,
        created_at,
        expires_at,
        state: match state.as_str() {
            "accepted" => InvitationState::Accepted,
            "revoked" => InvitationState::Revoked,
            "expired" => InvitationState::Expired,
            _ => InvitationState::Pending,
        },
    }
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new invitation (`user` is the user a reset is for).
#[derive(Debug)]
struct NewLink<'a> {
    kind: InvitationKind,
    email: &'a str,
    role: Role,
    cardholders: &'a [String],
    accounts: &'a [String],
    user: Option<i64>,
    invited_by: &'a str,
    ttl: Duration,
}

impl Store {
    /// Invites `email`; returns the invitation and the secret for its link (shown once).
    /// The user will see only `cardholders` (a cardholder user) and only `accounts` (if any).
    /// An existing user with that email is [`Error::Conflict`]; an open invitation for it is
    /// revoked.
    pub async fn invite(
        &self,
        email: &str,
        role: Role,
        cardholders: &[String],
        accounts: &[String],
        invited_by: &str,
        ttl: Duration,
    ) -> Result<(Invitation, String), Error> {
        let email = email.trim();
        if self.user_by_email(email).await?.is_some() {
            return Err(Error::Conflict(format!("a user with email {email} exists")));
        }
        self.create_link(NewLink {
            kind: InvitationKind::Invite,
            email,
            role,
            cardholders,
            accounts,
            user: None,
            invited_by,
            ttl,
        })
        .await
    }

    /// Starts a password reset: the user's password stops working, their sessions end, and a
    /// one-time link lets them set a new one.
    pub async fn reset_password(
        &self,
        user_id: i64,
        invited_by: &str,
        ttl: Duration,
    ) -> Result<(Invitation, String), Error> {
        let user = self.user(user_id).await?.ok_or(Error::NotFound("user"))?;
        self.create_link(NewLink {
            kind: InvitationKind::PasswordReset,
            email: &user.email,
            role: user.role,
            cardholders: &[],
            accounts: &[],
            user: Some(user.id),
            invited_by,
            ttl,
        })
        .await
    }

    async fn create_link(&self, link: NewLink<'_>) -> Result<(Invitation, String), Error> {
        let token = random_hex(32);
        let seconds = link.ttl.as_secs_f64();
        self.tally(4);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE invitations SET revoked_at = now()
             WHERE lower(email) = lower($1) AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(link.email)
        .execute(&mut *tx)
        .await?;
        let details = if let Some(user) = link.user {
            // An empty hash matches no password until the link is used.
            sqlx::query("UPDATE users SET password_hash = '' WHERE id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            let ended = end_sessions_in(&mut tx, user, EndReason::PasswordReset).await?;
            json!({"sessions_ended": ended})
        } else {
            json!({"role": link.role.as_str(), "cardholders": link.cardholders,
                   "accounts": link.accounts, "expires_in_seconds": link.ttl.as_secs()})
        };
        let action = match link.kind {
            InvitationKind::Invite => "user.invited",
            InvitationKind::PasswordReset => "user.password_reset",
        };
        audit_in(&mut tx, link.invited_by, action, link.email, details).await?;
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO invitations
               (token_sha256, kind, email, role, cardholder_ids, accounts, user_id, invited_by,
                expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
             RETURNING {COLUMNS}"
        ))
        .bind(digest(&token))
        .bind(link.kind.as_str())
        .bind(link.email)
        .bind(link.role.as_str())
        .bind(link.cardholders)
        .bind(link.accounts)
        .bind(link.user)
        .bind(link.invited_by)
        .bind(seconds)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((from_row(row), token))
    }

    /// The pending invitation behind a link's secret.
    pub async fn pending_invitation(&self, token: &str) -> Result<Option<Invitation>, Error> {
        self.tally(1);
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invitations WHERE token_sha256 = $1
               AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
        ))
        .bind(digest(token))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(from_row))
    }

    /// Uses a link: creates the invited user, or sets the reset user's password. A link that
    /// is unknown, used, revoked or expired is [`Error::NotFound`].
    pub async fn accept_invitation(&self, token: &str, password_hash: &str) -> Result<User, Error> {
        self.tally(5);
        let mut tx = self.pool().begin().await?;
        // FOR UPDATE: two tabs accepting the same link at once cannot both succeed.
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invitations WHERE token_sha256 = $1
               AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
             FOR UPDATE"
        ))
        .bind(digest(token))
        .fetch_optional(&mut *tx)
        .await?;
        let invitation = from_row(row.ok_or(Error::NotFound("invitation"))?);
        let user = match (invitation.kind, invitation.user_id) {
            (InvitationKind::PasswordReset, Some(user_id)) => {
                let row: Option<(i64, String, String, String, bool, i64)> = sqlx::query_as(
                    "UPDATE users SET password_hash = $2 WHERE id = $1
                     RETURNING id, email, password_hash, role, disabled, created",
                )
                .bind(user_id)
                .bind(password_hash)
                .fetch_optional(&mut *tx)
                .await?;
                row.map(user_from_row)
                    .ok_or(Error::NotFound("invitation"))?
            }
            _ => {
                let row: (i64, String, String, String, bool, i64) = sqlx::query_as(
                    "INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3)
                     RETURNING id, email, password_hash, role, disabled, created",
                )
                .bind(&invitation.email)
                .bind(password_hash)
                .bind(invitation.role.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_unique_violation() => {
                        Error::Conflict(format!("a user with email {} exists", invitation.email))
                    }
                    _ => Error::Database(e),
                })?;
                let user = row.0;
                insert_user_links(
                    &mut tx,
                    "user_cardholders",
                    "cardholder_id",
                    user,
                    &invitation.cardholder_ids,
                )
                .await?;
                insert_user_links(
                    &mut tx,
                    "user_accounts",
                    "account",
                    user,
                    &invitation.accounts,
                )
                .await?;
                user_from_row(row)
            }
        };
        sqlx::query("UPDATE invitations SET accepted_at = now() WHERE id = $1")
            .bind(invitation.id)
            .execute(&mut *tx)
            .await?;
        // The invited person acts here, on their own behalf.
        let details =
            json!({"kind": invitation.kind.as_str(), "invited_by": invitation.invited_by});
        audit_in(
            &mut tx,
            &user.email,
            "invitation.accepted",
            &user.email,
            details,
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Revokes a pending link, for `by`; returns it as it now stands.
    pub async fn revoke_invitation(&self, id: i64, by: &str) -> Result<Invitation, Error> {
        self.tally(2);
        let mut tx = self.pool().begin().await?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE invitations SET revoked_at = coalesce(revoked_at, now())
             WHERE id = $1 AND accepted_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let invitation = row
            .map(from_row)
            .ok_or(Error::NotFound("pending invitation"))?;
        let details = json!({"invitation": invitation.id, "kind": invitation.kind.as_str()});
        audit_in(
            &mut tx,
            by,
            "invitation.revoked",
            &invitation.email,
            details,
        )
        .await?;
        tx.commit().await?;
        Ok(invitation)
    }

    /// A page of invitations and resets, newest first.
    pub async fn invitations(&self, page: &Page<i64>) -> Result<Vec<Invitation>, Error> {
        self.tally(1);
        // Newest (highest id) first; a backward page reads the other way and is reversed.
        let (seek, order) = match page.direction {
            Direction::Forward => ("id < $1", "DESC"),
            Direction::Backward => ("id > $1", "ASC"),
        };
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invitations WHERE ($1::bigint IS NULL OR {seek})
             ORDER BY id {order} LIMIT $2"
        ))
        .bind(page.from)
        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        Ok(page.in_list_order(rows.into_iter().map(from_row).collect()))
    }
}
