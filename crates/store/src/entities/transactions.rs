use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub card_id: String,
    pub cardholder_id: Option<String>,
    pub authorization_id: Option<String>,
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    /// The amount in the merchant's currency, as Stripe reports it (signed like `amount`).
    pub merchant_amount: Option<i64>,
    pub merchant_currency: Option<String>,
    pub merchant_name: Option<String>,
    pub merchant_category: String,
    pub merchant_city: Option<String>,
    pub merchant_country: Option<String>,
    pub dispute_id: Option<String>,
    pub created: i64,
    /// The Stripe Connect account; `None` for the platform's own.
    pub account: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
