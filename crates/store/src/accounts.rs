//! Dashboard accounts: users, their roles, and the cardholders a cardholder user may see.

use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use crate::audit::audit_in_orm;
use crate::entities::{user_cardholders, users};
use crate::paging::{Direction, Page};
use crate::{Error, Store};

/// An email address as far as cardstream checks one, trimmed: one `@` with something on each
/// side, no spaces or controls, at most 254 bytes (the longest SMTP allows). `None` otherwise.
/// The API and the `users` commands both check with this, so an address one refuses the other
/// does too.
pub fn parse_email(email: &str) -> Option<&str> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(email)
}

/// What a user may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, and the admin operations.
    Admin,
    /// The cardholders linked to the user, and their cards.
    Cardholder,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Cardholder => "cardholder",
        }
    }

    pub(crate) fn parse(s: &str) -> Role {
        // The column has a CHECK constraint; anything but "admin" gets the narrower role.
        if s == "admin" {
            Role::Admin
        } else {
            Role::Cardholder
        }
    }
}

/// A dashboard user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
    /// argon2id PHC string; empty while a password reset is pending (it then matches nothing).
    pub password_hash: String,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// When they joined, unix seconds.
    pub created: i64,
}

/// Without the password hash: a hash in a log is an offline guessing target.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl From<users::Model> for User {
    fn from(m: users::Model) -> Self {
        User {
            id: m.id,
            email: m.email,
            role: Role::parse(&m.role),
            password_hash: m.password_hash,
            disabled: m.disabled,
            created: m.created,
        }
    }
}

fn db(err: sea_orm::DbErr) -> Error {
    Error::Orm(err)
}

impl Store {
    /// Creates a user linked to `cardholders`, for `by`. A taken email (in any case) is
    /// [`Error::Conflict`].
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        cardholders: &[String],
        by: &str,
    ) -> Result<User, Error> {
        let email = email.trim();
        if self.user_by_email(email).await?.is_some() {
            return Err(Error::Conflict(format!("a user with email {email} exists")));
        }
        let tx = self.orm().begin().await.map_err(db)?;
        let user = users::ActiveModel {
            email: Set(email.to_owned()),
            password_hash: Set(password_hash.to_owned()),
            role: Set(role.as_str().to_owned()),
            ..Default::default()
        }
        .insert(&tx)
        .await
        .map_err(|e| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict(format!("a user with email {email} exists"))
            }
            _ => db(e),
        })?;
        for cardholder in cardholders {
            user_cardholders::ActiveModel {
                user_id: Set(user.id),
                cardholder_id: Set(cardholder.clone()),
            }
            .insert(&tx)
            .await
            .map_err(db)?;
        }
        let details = serde_json::json!({"role": role.as_str(), "cardholders": cardholders});
        audit_in_orm(&tx, by, "user.created", email, details).await?;
        tx.commit().await.map_err(db)?;
        Ok(user.into())
    }

    /// Lets `user_id` see `cardholders` too (links it has already are kept).
    pub async fn link_cardholders(
        &self,
        user_id: i64,
        cardholders: &[String],
    ) -> Result<(), Error> {
        for cardholder in cardholders {
            sqlx::query(
                "INSERT INTO user_cardholders (user_id, cardholder_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(cardholder)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// The user with this email, whatever its case.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        Ok(users::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col(users::Column::Email)))
                    .eq(email.trim().to_lowercase()),
            )
            .one(self.orm())
            .await
            .map_err(db)?
            .map(User::from))
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, Error> {
        Ok(users::Entity::find_by_id(id)
            .one(self.orm())
            .await
            .map_err(db)?
            .map(User::from))
    }

    pub async fn users(&self) -> Result<Vec<User>, Error> {
        // Every user: no LIMIT (sea-query binds a LIMIT as a signed 64-bit integer, which
        // u64::MAX does not fit).
        Ok(users::Entity::find()
            .order_by_asc(users::Column::Id)
            .all(self.orm())
            .await
            .map_err(db)?
            .into_iter()
            .map(User::from)
            .collect())
    }

    /// A page of users by id.
    pub async fn users_page(&self, page: &Page<i64>) -> Result<Vec<User>, Error> {
        let mut query = users::Entity::find();
        query = match page.direction {
            Direction::Forward => query.order_by_asc(users::Column::Id),
            Direction::Backward => query.order_by_desc(users::Column::Id),
        };
        if let Some(from) = page.from {
            query = query.filter(match page.direction {
                Direction::Forward => users::Column::Id.gt(from),
                Direction::Backward => users::Column::Id.lt(from),
            });
        }
        let rows = query.limit(page.limit).all(self.orm()).await.map_err(db)?;
        Ok(page.in_list_order(rows.into_iter().map(User::from).collect()))
    }

    /// How many users there are.
    pub async fn count_users(&self) -> Result<u64, Error> {
        users::Entity::find().count(self.orm()).await.map_err(db)
    }

    /// The cardholders `user_id` may see, for each of `user_ids`.
    pub async fn cardholders_of(&self, user_ids: &[i64]) -> Result<Vec<(i64, String)>, Error> {
        Ok(user_cardholders::Entity::find()
            .filter(user_cardholders::Column::UserId.is_in(user_ids.iter().copied()))
            .order_by_asc(user_cardholders::Column::CardholderId)
            .all(self.orm())
            .await
            .map_err(db)?
            .into_iter()
            .map(|m| (m.user_id, m.cardholder_id))
            .collect())
    }

    pub async fn link_cardholder(&self, user_id: i64, cardholder_id: &str) -> Result<(), Error> {
        user_cardholders::Entity::insert(user_cardholders::ActiveModel {
            user_id: Set(user_id),
            cardholder_id: Set(cardholder_id.to_owned()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                user_cardholders::Column::UserId,
                user_cardholders::Column::CardholderId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .do_nothing()
        .exec(self.orm())
        .await
        .map_err(db)?;
        Ok(())
    }
}
