//! sea-orm entities of the tables the API reads and the account tables it writes. The write
//! path of the aggregator does not go through them (see the crate docs).

pub mod authorization_policy;
pub mod authorizations;
pub mod cardholders;
pub mod cards;
pub mod disputes;
pub mod tokens;
pub mod transactions;
pub mod user_cardholders;
pub mod users;
