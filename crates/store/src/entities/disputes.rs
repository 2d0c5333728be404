use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "disputes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub transaction_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub created: i64,
    /// The Stripe Connect account; `None` for the platform's own.
    pub account: Option<String>,
    /// Why a lost dispute was lost, as Stripe says it.
    pub loss_reason: Option<String>,
    /// When Stripe first said it returned the disputed amount to the Issuing balance
    /// (`issuing_dispute.funds_reinstated`), Unix seconds.
    pub funds_reinstated_at: Option<i64>,
    /// When Stripe first said it took funds back over the dispute
    /// (`issuing_dispute.funds_rescinded`).
    pub funds_rescinded_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
