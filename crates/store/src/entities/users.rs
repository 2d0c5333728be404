use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `admin` or `cardholder`.
    pub role: String,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// When they joined, unix seconds.
    pub created: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
