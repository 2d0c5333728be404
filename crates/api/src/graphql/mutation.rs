//! The mutation root: signing in and out, passwords and invitation links, and the admin's edits
//! (users in `users.rs`, the policy here). Every mutation has one shape, as Relay and GitHub's
//! API have it: `name(input: NameInput!): NamePayload!`, the input carrying an optional
//! `clientMutationId` that the payload hands back.

use std::net::IpAddr;

use async_graphql::{Context, InputObject, MergedObject, Object, ResultExt, SimpleObject};
use cardstream_policy::StoredPolicy;
use cardstream_store::{EndReason, User};

use super::context::{forget_sessions, platform_admin, store, viewer};
use super::dead_letters::DeadLetterMutation;
use super::errors::{ApiError, ApiResult};
use super::policy::{PolicyInput, PolicyObject};
use super::scalars::{DateTime, Long};
use super::users::{UserMutation, UserObject, with_links};
use crate::auth::{LoginLimiter, Passwords, Tokens};

/// The client's address, as the HTTP layer saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    AuthMutation,
    UserMutation,
    PolicyMutation,
    DeadLetterMutation,
);

/// A session just opened.
pub struct SignedIn {
    token: String,
    expires_at: DateTime,
    user: UserObject,
}

/// The payload of a mutation that signs in: the session's token.
macro_rules! session_payload {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(SimpleObject)]
        pub struct $name {
            /// Send as `Authorization: Bearer <token>` (and in `connection_init` for
            /// subscriptions).
            pub token: String,
            pub expires_at: DateTime,
            pub user: UserObject,
            pub client_mutation_id: Option<String>,
        }

        impl $name {
            fn new(session: SignedIn, client_mutation_id: Option<String>) -> Self {
                $name {
                    token: session.token,
                    expires_at: session.expires_at,
                    user: session.user,
                    client_mutation_id,
                }
            }
        }
    };
}

session_payload!(
    /// Signed in.
    LoginPayload
);
session_payload!(
    /// The new password is set; the other sessions ended.
    ChangePasswordPayload
);
session_payload!(
    /// The link's password is set; signed in.
    AcceptInvitationPayload
);

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct LogoutInput {
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub struct LogoutPayload {
    /// False when the session had already ended.
    pub ended: bool,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    /// At least 12 characters.
    pub new_password: String,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct AcceptInvitationInput {
    /// The link's secret.
    pub token: String,
    /// At least 12 characters.
    pub password: String,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct UpdatePolicyInput {
    pub policy: PolicyInput,
    /// Refuses (CONFLICT) when someone saved another version since this one.
    pub expected_version: Option<Long>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub struct UpdatePolicyPayload {
    pub policy: PolicyObject,
    pub client_mutation_id: Option<String>,
}

const MIN_PASSWORD: usize = 12;
/// Longer passwords are refused before hashing: argon2's cost grows with the input.
const MAX_PASSWORD: usize = 1024;

fn check_new_password(password: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD {
        Err(ApiError::BadUserInput(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        )))
    } else if password.len() > MAX_PASSWORD {
        Err(ApiError::BadUserInput(format!(
            "the password may have at most {MAX_PASSWORD} bytes"
        )))
    } else {
        Ok(())
    }
}

/// Opens a session for `user` and signs a token for it.
async fn sign_in(ctx: &Context<'_>, user: &User) -> ApiResult<SignedIn> {
    let tokens = ctx.data_unchecked::<Tokens>();
    let store = store(ctx);
    let (session, expires) = store.open_session(user.id, tokens.ttl()).await?;
    let token = tokens
        .issue(user.id, &session, expires)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(SignedIn {
        token,
        expires_at: DateTime(expires),
        user: with_links(ctx, user).await?,
    })
}

#[derive(Default)]
pub struct AuthMutation;

/// The longest email address (RFC 5321's path limit, less the angle brackets), in bytes.
const MAX_EMAIL: usize = 254;

#[Object]
impl AuthMutation {
    /// Signs in, opening a session. Attempts are limited per account and per client address.
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<LoginPayload> {
        let LoginInput {
            email,
            password,
            client_mutation_id,
        } = input;
        async {
            // Before any other work: the limiter's keys and argon2's input stay small.
            if email.len() > MAX_EMAIL || password.len() > MAX_PASSWORD {
                return Err(ApiError::BadUserInput(
                    "the email or password is longer than any account's".into(),
                ));
            }
            let limiter = ctx.data_unchecked::<LoginLimiter>();
            let address = ctx.data_opt::<ClientAddress>().and_then(|a| a.0);
            // Counted before the password is checked; it stays counted (as a failure) on every
            // path but success, a database error included.
            let reservation = limiter
                .reserve(&email, address)
                .map_err(|wait| ApiError::RateLimited(wait.seconds()))?;
            let store = store(ctx);
            let user = store.user_by_email(&email).await?;
            let passwords = ctx.data_unchecked::<Passwords>();
            let valid = match &user {
                Some(user) => passwords.verify(password, user.password_hash.clone()).await,
                None => passwords.decoy(password).await,
            };
            let Some(user) = user.filter(|u| valid && !u.disabled) else {
                tracing::info!("failed sign-in");
                return Err(ApiError::Unauthenticated);
            };
            limiter.succeeded(reservation);
            sign_in(ctx, &user).await
        }
        .await
        .map(|session| LoginPayload::new(session, client_mutation_id))
        .extend()
    }

    /// Ends the current session: its token is refused from now on, by every API replica.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        input: LogoutInput,
    ) -> async_graphql::Result<LogoutPayload> {
        async {
            let viewer = viewer(ctx).await?;
            let ended = store(ctx)
                .end_session(&viewer.session_id, EndReason::Logout)
                .await?;
            forget_sessions(ctx, viewer.user.id);
            Ok::<_, ApiError>(LogoutPayload {
                ended,
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }

    /// Changes the viewer's password. Every session of theirs ends (other devices are signed
    /// out); the answer carries a new token for this one.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<ChangePasswordPayload> {
        let ChangePasswordInput {
            current_password,
            new_password,
            client_mutation_id,
        } = input;
        async {
            let viewer = viewer(ctx).await?;
            check_new_password(&new_password)?;
            let passwords = ctx.data_unchecked::<Passwords>();
            if current_password.len() > MAX_PASSWORD
                || !passwords
                    .verify(current_password, viewer.user.password_hash.clone())
                    .await
            {
                return Err(ApiError::BadUserInput(
                    "the current password is not right".into(),
                ));
            }
            let hash = passwords
                .hash(new_password)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let store = store(ctx);
            store
                .change_password(viewer.user.id, &hash, &viewer.user.email)
                .await?;
            forget_sessions(ctx, viewer.user.id);
            let user = store
                .user(viewer.user.id)
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            tracing::info!(user = user.id, "password changed; sessions ended");
            sign_in(ctx, &user).await
        }
        .await
        .map(|session| ChangePasswordPayload::new(session, client_mutation_id))
        .extend()
    }

    /// Uses an invitation or reset link: sets the password (at least 12 characters) and signs
    /// in. NOT_FOUND when the link is unknown, used, revoked or expired.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> async_graphql::Result<AcceptInvitationPayload> {
        let AcceptInvitationInput {
            token,
            password,
            client_mutation_id,
        } = input;
        async {
            if token.len() > 128 {
                return Err(ApiError::NotFound("invitation"));
            }
            check_new_password(&password)?;
            let store = store(ctx);
            // A cheap check first, so a wrong link costs no hashing.
            if store.pending_invitation(&token).await?.is_none() {
                return Err(ApiError::NotFound("invitation"));
            }
            let hash = ctx
                .data_unchecked::<Passwords>()
                .hash(password)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let user = store.accept_invitation(&token, &hash).await?;
            tracing::info!(user = user.id, "invitation accepted");
            if user.disabled {
                return Err(ApiError::Forbidden);
            }
            sign_in(ctx, &user).await
        }
        .await
        .map(|session| AcceptInvitationPayload::new(session, client_mutation_id))
        .extend()
    }
}

/// The admin's policy edits.
#[derive(Default)]
pub struct PolicyMutation;

#[Object]
impl PolicyMutation {
    /// Admin: replaces the authorization policy. With `expectedVersion`, refuses (CONFLICT)
    /// when someone saved another version meanwhile. The gateway applies it within seconds.
    async fn update_policy(
        &self,
        ctx: &Context<'_>,
        input: UpdatePolicyInput,
    ) -> async_graphql::Result<UpdatePolicyPayload> {
        let UpdatePolicyInput {
            policy,
            expected_version,
            client_mutation_id,
        } = input;
        async {
            let viewer = platform_admin(ctx).await?;
            let parsed = policy.to_policy()?;
            let json =
                StoredPolicy::encode(&parsed).map_err(|e| ApiError::Internal(e.to_string()))?;
            let version = store(ctx)
                .save_policy(expected_version.map(|v| v.0), json, &viewer.user.email)
                .await?;
            tracing::info!(version, by = %viewer.user.email, "authorization policy saved");
            Ok::<_, ApiError>(UpdatePolicyPayload {
                policy: PolicyObject::new(version, &parsed, Some(viewer.user.email.clone())),
                client_mutation_id,
            })
        }
        .await
        .extend()
    }
}
