use sea_orm::entity::prelude::*;

/// A wallet token: a card added to Apple Pay, Google Pay or Samsung Pay.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub card_id: String,
    /// `requested`, `active`, `suspended`, `deleted`.
    pub status: String,
    pub wallet_provider: Option<String>,
    /// `network_data.device.type`: phone, watch, other.
    pub device_type: Option<String>,
    pub network: Option<String>,
    pub last4: Option<String>,
    pub device_fingerprint: Option<String>,
    pub network_updated_at: Option<i64>,
    /// As Stripe sent it.
    pub network_data: Option<Json>,
    pub created: i64,
    pub version_created: i64,
    pub version_rank: i16,
    pub version_event_id: String,
    /// The Stripe Connect account; `None` for the platform's own.
    pub account: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
