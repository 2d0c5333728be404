//! Users and how people join: admins invite, disable, delete, re-role and re-link users, and
//! hand out password-reset links. Every edit of a user ends that user's sessions (the store does
//! so in the same transaction), so what a user may do is always what the admin last decided.

use std::time::Duration;

use async_graphql::{Context, Enum, ID, InputObject, Object, ResultExt, SimpleObject};
use cardstream_store::{InvitationKind, InvitationState, User};

use super::connection::{Counted, DEFAULT_PAGE, PageArgs, Total, connection};
use super::context::{forget_sessions, platform_admin, store};
use super::errors::{ApiError, ApiResult};
use super::loaders::CountOf;
use super::policy::RoleKind;
use super::scalars::DateTime;

/// How long an invitation or reset link works (`--invitation-ttl`).
#[derive(Debug, Clone, Copy)]
pub struct InvitationTtl(pub Duration);

/// Someone who signs in to the dashboard.
#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
pub struct UserObject {
    #[graphql(skip)]
    pub key: i64,
    pub id: ID,
    pub email: String,
    pub role: RoleKind,
    /// The cardholders this user sees (empty for admins, who see all).
    pub cardholder_ids: Vec<ID>,
    /// The Stripe Connect accounts this user is limited to; empty: every account.
    pub accounts: Vec<ID>,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// When they joined.
    pub created_at: DateTime,
}

impl UserObject {
    pub fn new(user: &User, cardholders: impl IntoIterator<Item = String>) -> Self {
        UserObject {
            key: user.id,
            id: ID(user.id.to_string()),
            email: user.email.clone(),
            role: user.role.into(),
            cardholder_ids: cardholders.into_iter().map(ID).collect(),
            accounts: Vec::new(),
            disabled: user.disabled,
            created_at: DateTime(user.created),
        }
    }

    /// With the accounts the user is limited to.
    pub fn with_accounts(mut self, accounts: impl IntoIterator<Item = String>) -> Self {
        self.accounts = accounts.into_iter().map(ID).collect();
        self
    }
}

/// What accepting a link does.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "InvitationKind")]
pub enum InvitationKindValue {
    /// Creates the user.
    Invite,
    /// Sets a new password for an existing user.
    PasswordReset,
}

/// Where a link stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "InvitationState")]
pub enum InvitationStateValue {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

fn kind(kind: InvitationKind) -> InvitationKindValue {
    match kind {
        InvitationKind::Invite => InvitationKindValue::Invite,
        InvitationKind::PasswordReset => InvitationKindValue::PasswordReset,
    }
}

/// An invitation or a password reset, without its secret.
pub struct Invitation(pub cardstream_store::Invitation);

#[Object]
impl Invitation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> RoleKind {
        self.0.role.into()
    }
    async fn cardholder_ids(&self) -> Vec<ID> {
        self.0.cardholder_ids.iter().cloned().map(ID).collect()
    }
    /// The Connect accounts the invited user will see; empty: every account.
    async fn accounts(&self) -> Vec<ID> {
        self.0.accounts.iter().cloned().map(ID).collect()
    }
    async fn kind(&self) -> InvitationKindValue {
        kind(self.0.kind)
    }
    async fn state(&self) -> InvitationStateValue {
        match self.0.state {
            InvitationState::Pending => InvitationStateValue::Pending,
            InvitationState::Accepted => InvitationStateValue::Accepted,
            InvitationState::Revoked => InvitationStateValue::Revoked,
            InvitationState::Expired => InvitationStateValue::Expired,
        }
    }
    /// The admin who made it.
    async fn invited_by(&self) -> Option<&str> {
        self.0.invited_by.as_deref()
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    async fn expires_at(&self) -> DateTime {
        DateTime(self.0.expires_at)
    }
}

/// A pending link as its page shows it, to whoever holds the link.
pub struct InvitationPreview(pub cardstream_store::Invitation);

#[Object]
impl InvitationPreview {
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn kind(&self) -> InvitationKindValue {
        kind(self.0.kind)
    }
    async fn expires_at(&self) -> DateTime {
        DateTime(self.0.expires_at)
    }
}

/// A new link: the secret is shown this once (only its digest is stored).
macro_rules! link_payload {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(SimpleObject)]
        pub struct $name {
            pub invitation: Invitation,
            /// The link's secret, shown this once; the dashboard's link is
            /// `/invitation#<token>`.
            pub token: String,
            pub client_mutation_id: Option<String>,
        }
    };
}

link_payload!(
    /// The invitation and its one-time link.
    InviteUserPayload
);
link_payload!(
    /// The reset and its one-time link.
    ResetPasswordPayload
);

/// The payload of a mutation that edits a user: the user as now.
macro_rules! user_payload {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(SimpleObject)]
        pub struct $name {
            pub user: UserObject,
            pub client_mutation_id: Option<String>,
        }
    };
}

user_payload!(
    /// The user, disabled.
    DisableUserPayload
);
user_payload!(
    /// The user, enabled.
    EnableUserPayload
);
user_payload!(
    /// The user with the new role.
    SetUserRolePayload
);
user_payload!(
    /// The user with the new cardholders.
    SetUserCardholdersPayload
);
user_payload!(
    /// The user with the new accounts.
    SetUserAccountsPayload
);

/// Whom to invite.
#[derive(InputObject)]
pub struct InviteUserInput {
    pub email: String,
    pub role: RoleKind,
    /// For cardholder users: the cardholders they may see.
    #[graphql(default)]
    pub cardholder_ids: Vec<ID>,
    /// Stripe Connect: the accounts the user will see (at most 1,000 `acct_…` ids), set
    /// when the user is created; empty: every account.
    #[graphql(default)]
    pub accounts: Vec<ID>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct RevokeInvitationInput {
    pub invitation_id: ID,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub struct RevokeInvitationPayload {
    pub invitation: Invitation,
    pub client_mutation_id: Option<String>,
}

/// The input of a mutation that acts on one user.
macro_rules! user_input {
    ($name:ident) => {
        #[derive(InputObject)]
        pub struct $name {
            pub user_id: ID,
            pub client_mutation_id: Option<String>,
        }
    };
}

user_input!(ResetPasswordInput);
user_input!(DisableUserInput);
user_input!(EnableUserInput);
user_input!(DeleteUserInput);

#[derive(SimpleObject)]
pub struct DeleteUserPayload {
    pub deleted_user_id: ID,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct SetUserRoleInput {
    pub user_id: ID,
    pub role: RoleKind,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct SetUserCardholdersInput {
    pub user_id: ID,
    /// Replaces the list (at most 1,000).
    pub cardholder_ids: Vec<ID>,
    pub client_mutation_id: Option<String>,
}

/// Whom to limit to which Stripe Connect accounts.
#[derive(InputObject)]
pub struct SetUserAccountsInput {
    pub user_id: ID,
    /// Replaces the list (at most 1,000 `acct_…` ids); empty: every account.
    pub accounts: Vec<ID>,
    pub client_mutation_id: Option<String>,
}

/// An email address as far as we check one (see [`cardstream_store::parse_email`]).
pub fn check_email(email: &str) -> ApiResult<&str> {
    cardstream_store::parse_email(email)
        .ok_or_else(|| ApiError::BadUserInput("that is not an email address".into()))
}

fn user_id(id: &ID) -> ApiResult<i64> {
    id.parse().map_err(|_| ApiError::NotFound("user"))
}

fn cardholders(ids: &[ID]) -> ApiResult<Vec<String>> {
    if ids.len() > 1000 {
        return Err(ApiError::BadUserInput(
            "at most 1000 cardholders per user".into(),
        ));
    }
    Ok(ids.iter().map(|id| id.trim().to_owned()).collect())
}

/// A page of users with their cardholders, by id: two statements whatever the page size.
pub async fn users_page(ctx: &Context<'_>, args: PageArgs) -> ApiResult<Counted<i64, UserObject>> {
    platform_admin(ctx).await?;
    let page = args.page::<i64>(ctx, DEFAULT_PAGE)?;
    let store = store(ctx);
    let users = store.users_page(&page.clone().widened(1)).await?;
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let links = store.cardholders_of(&ids).await?;
    let accounts = store.accounts_of(&ids).await?;
    let of = |user: i64, links: &[(i64, String)]| -> Vec<String> {
        links
            .iter()
            .filter(|(id, _)| *id == user)
            .map(|(_, h)| h.clone())
            .collect()
    };
    let users: Vec<UserObject> = users
        .iter()
        .map(|u| UserObject::new(u, of(u.id, &links)).with_accounts(of(u.id, &accounts)))
        .collect();
    Ok(connection(
        &page,
        users,
        Total::All(CountOf::Users),
        |u| u.key,
        |u| u,
    ))
}

/// The user with their cardholders and accounts.
pub(crate) async fn with_links(ctx: &Context<'_>, user: &User) -> ApiResult<UserObject> {
    let store = store(ctx);
    let links = store.cardholders_of(&[user.id]).await?;
    let accounts = store.accounts_of(&[user.id]).await?;
    Ok(UserObject::new(user, links.into_iter().map(|(_, h)| h))
        .with_accounts(accounts.into_iter().map(|(_, a)| a)))
}

fn ttl(ctx: &Context<'_>) -> Duration {
    ctx.data_opt::<InvitationTtl>()
        .map_or(Duration::from_secs(72 * 3600), |t| t.0)
}

/// The admin's user management.
#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Admin: invites someone. Returns the one-time link's secret; inviting the same email
    /// again revokes the earlier link. An email that already has a user is CONFLICT.
    async fn invite_user(
        &self,
        ctx: &Context<'_>,
        input: InviteUserInput,
    ) -> async_graphql::Result<InviteUserPayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            let email = check_email(&input.email)?;
            let holders = cardholders(&input.cardholder_ids)?;
            let accounts = accounts(&input.accounts)?;
            let (invitation, token) = store(ctx)
                .invite(
                    email,
                    input.role.into(),
                    &holders,
                    &accounts,
                    &viewer.user.email,
                    ttl(ctx),
                )
                .await?;
            tracing::info!(invitation = invitation.id, by = %viewer.user.email, "user invited");
            Ok::<_, ApiError>(InviteUserPayload {
                invitation: Invitation(invitation),
                token,
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }

    /// Admin: revokes a pending invitation or reset link.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: RevokeInvitationInput,
    ) -> async_graphql::Result<RevokeInvitationPayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            let id: i64 = input
                .invitation_id
                .parse()
                .map_err(|_| ApiError::NotFound("invitation"))?;
            let invitation = store(ctx).revoke_invitation(id, &viewer.user.email).await?;
            Ok::<_, ApiError>(RevokeInvitationPayload {
                invitation: Invitation(invitation),
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }

    /// Admin: the user's password stops working and their sessions end; returns a one-time
    /// link with which they set a new one.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        input: ResetPasswordInput,
    ) -> async_graphql::Result<ResetPasswordPayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            let user = user_id(&input.user_id)?;
            let (invitation, token) = store(ctx)
                .reset_password(user, &viewer.user.email, ttl(ctx))
                .await?;
            forget_sessions(ctx, user);
            tracing::info!(user, by = %viewer.user.email, "password reset");
            Ok::<_, ApiError>(ResetPasswordPayload {
                invitation: Invitation(invitation),
                token,
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }

    /// Admin: a disabled user cannot sign in, and their sessions end at once.
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        input: DisableUserInput,
    ) -> async_graphql::Result<DisableUserPayload> {
        let user = set_disabled(ctx, &input.user_id, true).await.extend()?;
        Ok(DisableUserPayload {
            user,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Admin: lets a disabled user sign in again.
    async fn enable_user(
        &self,
        ctx: &Context<'_>,
        input: EnableUserInput,
    ) -> async_graphql::Result<EnableUserPayload> {
        let user = set_disabled(ctx, &input.user_id, false).await.extend()?;
        Ok(EnableUserPayload {
            user,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Admin: deletes a user (their sessions end with them).
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        input: DeleteUserInput,
    ) -> async_graphql::Result<DeleteUserPayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            let user = user_id(&input.user_id)?;
            store(ctx).delete_user(user, &viewer.user.email).await?;
            forget_sessions(ctx, user);
            tracing::info!(user, by = %viewer.user.email, "user deleted");
            Ok::<_, ApiError>(DeleteUserPayload {
                deleted_user_id: input.user_id,
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }

    /// Admin: gives a user another role; their sessions end, so they sign in again as it.
    async fn set_user_role(
        &self,
        ctx: &Context<'_>,
        input: SetUserRoleInput,
    ) -> async_graphql::Result<SetUserRolePayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            let user = store(ctx)
                .set_user_role(
                    user_id(&input.user_id)?,
                    input.role.into(),
                    &viewer.user.email,
                )
                .await?;
            forget_sessions(ctx, user.id);
            tracing::info!(user = user.id, by = %viewer.user.email, "user role changed");
            Ok::<_, ApiError>(SetUserRolePayload {
                user: with_links(ctx, &user).await?,
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }

    /// Platform admin: limits a user to Stripe Connect accounts (none: every account, which
    /// makes an admin a platform admin); their sessions end.
    async fn set_user_accounts(
        &self,
        ctx: &Context<'_>,
        input: SetUserAccountsInput,
    ) -> async_graphql::Result<SetUserAccountsPayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            let accounts = accounts(&input.accounts)?;
            let user = store(ctx)
                .set_user_accounts(user_id(&input.user_id)?, &accounts, &viewer.user.email)
                .await?;
            forget_sessions(ctx, user.id);
            tracing::info!(user = user.id, accounts = ?accounts, by = %viewer.user.email, "user accounts changed");
            Ok::<_, ApiError>(SetUserAccountsPayload {
                user: with_links(ctx, &user).await?,
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }

    /// Admin: replaces the cardholders a user may see; their sessions end.
    async fn set_user_cardholders(
        &self,
        ctx: &Context<'_>,
        input: SetUserCardholdersInput,
    ) -> async_graphql::Result<SetUserCardholdersPayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            let holders = cardholders(&input.cardholder_ids)?;
            let user = store(ctx)
                .set_user_cardholders(user_id(&input.user_id)?, &holders, &viewer.user.email)
                .await?;
            forget_sessions(ctx, user.id);
            tracing::info!(user = user.id, by = %viewer.user.email, "user cardholders changed");
            Ok::<_, ApiError>(SetUserCardholdersPayload {
                user: with_links(ctx, &user).await?,
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }
}

/// Account ids checked before any work: `acct_` ids, at most 1,000, without repeats.
fn accounts(ids: &[ID]) -> ApiResult<Vec<String>> {
    if ids.len() > 1000 {
        return Err(ApiError::BadUserInput(
            "at most 1000 accounts per user".into(),
        ));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.trim();
        if !cardstream_store::is_account_id(id) {
            return Err(ApiError::BadUserInput(format!(
                "{id:?} is not a Stripe account id (acct_…)"
            )));
        }
        out.push(id.to_owned());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

async fn set_disabled(ctx: &Context<'_>, id: &ID, disabled: bool) -> ApiResult<UserObject> {
    let viewer = platform_admin(ctx).await?;
    let user = store(ctx)
        .set_user_disabled(user_id(id)?, disabled, &viewer.user.email)
        .await?;
    forget_sessions(ctx, user.id);
    tracing::info!(user = user.id, disabled, by = %viewer.user.email, "user access changed");
    with_links(ctx, &user).await
}

#[cfg(test)]
mod tests {
    use super::check_email;

    #[test]
    fn emails_are_checked_before_any_work() {
        assert!(check_email("a@example.com").is_ok());
        assert!(check_email(&format!("{}@example.com", "a".repeat(250))).is_err());
        for bad in ["", "a", "@example.com", "a@", "a b@example.com", "a@b@c"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
