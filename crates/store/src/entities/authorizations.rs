use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub card_id: String,
    pub cardholder_id: Option<String>,
    pub amount: i64,
    pub requested_amount: i64,
    pub currency: String,
    pub merchant_amount: Option<i64>,
    pub merchant_currency: Option<String>,
    pub approved: bool,
    pub status: String,
    pub decline_reason: Option<String>,
    pub cardstream_reason: Option<String>,
    pub merchant_name: Option<String>,
    pub merchant_category: String,
    pub merchant_category_code: Option<String>,
    pub merchant_city: Option<String>,
    pub merchant_country: Option<String>,
    pub merchant_network_id: Option<String>,
    pub authorization_method: Option<String>,
    pub wallet: Option<String>,
    /// The wallet token (`issuing.token`) the purchase was made with.
    pub token_id: Option<String>,
    pub request_history: Json,
    pub verification_data: Option<Json>,
    pub network_data: Option<Json>,
    pub created: i64,
    /// The Stripe Connect account; `None` for the platform's own.
    pub account: Option<String>,
    pub version_event_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
