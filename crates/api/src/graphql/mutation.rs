//! The mutation root: signing in, and the admin's edits.

use std::net::IpAddr;

use async_graphql::{Context, Object, ResultExt, SimpleObject};

use super::admin::{CreateUserInput, PolicyInput, PolicyObject, UserObject};
use super::context::{admin, store};
use super::errors::ApiError;
use super::scalars::{DateTime, Long};
use crate::auth::{LoginLimiter, Passwords, Tokens};

/// The client's address, as the HTTP layer saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

pub struct Mutation;

#[derive(SimpleObject)]
pub struct LoginPayload {
    /// Send as `Authorization: Bearer <token>` (and in `connection_init` for subscriptions).
    pub token: String,
    pub expires_at: DateTime,
    pub user: UserObject,
}

const MIN_PASSWORD: usize = 12;

/// The longest email address (RFC 5321's path limit, less the angle brackets), in bytes.
const MAX_EMAIL: usize = 254;

#[Object]
impl Mutation {
    /// Signs in. Failures are rate-limited per account and per client address.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<LoginPayload> {
        async {
            // Before any other work, so that nothing below grows with what a client sends.
            if email.len() > MAX_EMAIL {
                return Err(ApiError::BadUserInput(
                    "that is not an email address".into(),
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
            let Some(user) = user.filter(|_| valid) else {
                tracing::info!("failed sign-in");
                return Err(ApiError::Unauthenticated);
            };
            limiter.succeeded(reservation);
            let (token, expires) = ctx
                .data_unchecked::<Tokens>()
                .issue(user.id)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let links = store.cardholders_of(&[user.id]).await?;
            Ok::<_, ApiError>(LoginPayload {
                token,
                expires_at: DateTime(i64::try_from(expires).unwrap_or(i64::MAX)),
                user: UserObject::new(&user, links.into_iter().map(|(_, h)| h)),
            })
        }
        .await
        .extend()
    }

    /// Admin: replaces the authorization policy. With `expectedVersion`, refuses (CONFLICT)
    /// when someone saved another version meanwhile. The gateway applies it within seconds.
    async fn update_policy(
        &self,
        ctx: &Context<'_>,
        policy: PolicyInput,
        expected_version: Option<Long>,
    ) -> async_graphql::Result<PolicyObject> {
        async {
            let viewer = admin(ctx)?;
            let parsed = policy.to_policy()?;
            let json =
                serde_json::to_value(&parsed).map_err(|e| ApiError::Internal(e.to_string()))?;
            let version = store(ctx)
                .save_policy(expected_version.map(|v| v.0), json, &viewer.user.email)
                .await?;
            tracing::info!(version, by = %viewer.user.email, "authorization policy saved");
            Ok::<_, ApiError>(PolicyObject::new(
                version,
                &parsed,
                Some(viewer.user.email.clone()),
            ))
        }
        .await
        .extend()
    }

    /// Admin: creates a user.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> async_graphql::Result<UserObject> {
        async {
            admin(ctx)?;
            if input.password.chars().count() < MIN_PASSWORD {
                return Err(ApiError::BadUserInput(format!(
                    "the password needs at least {MIN_PASSWORD} characters"
                )));
            }
            if !input.email.contains('@') || input.email.len() > MAX_EMAIL {
                return Err(ApiError::BadUserInput(
                    "that is not an email address".into(),
                ));
            }
            let hash = ctx
                .data_unchecked::<Passwords>()
                .hash(input.password.clone())
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let cardholders: Vec<String> = input
                .cardholder_ids
                .iter()
                .map(|id| id.to_string())
                .collect();
            let user = store(ctx)
                .create_user(&input.email, &hash, input.role.into(), &cardholders)
                .await?;
            Ok::<_, ApiError>(UserObject::new(&user, cardholders))
        }
        .await
        .extend()
    }
}
