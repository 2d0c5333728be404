//! The GraphQL schema.

// async-graphql needs the schema's types public (they appear in `ApiSchema`); their modules
// are private, so most are not reachable from outside, which is fine. They are plumbing
// between the store and the wire, with nothing to gain from Debug.
#![allow(unreachable_pub, missing_debug_implementations)]

mod activity;
mod audit;
mod checks;
mod connection;
mod context;
mod dead_letters;
mod error_codes;
mod errors;
mod events;
mod health;
mod loaders;
mod metrics;
mod mutation;
mod objects;
mod policy;
mod program;
mod query;
mod scalars;
mod selections;
mod shared;
mod statuses;
mod subscription;
mod summary;
mod users;

use async_graphql::Schema;

pub use activity::{ActivityFilterInput, StatusFilter, activity_filter};
pub use context::{Authentication, Limits};
pub use loaders::loader;
pub use metrics::OperationMetrics;
pub use mutation::{ClientAddress, Mutation};
pub use program::ProgramReads;
pub use query::Query;
pub use scalars::{Date, DateTime, Long};
pub use subscription::Subscription;
pub use users::InvitationTtl;

/// The schema type.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// How deep and how costly a query may be.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub depth: usize,
    pub complexity: usize,
    pub max_page_size: i32,
}

/// The schema, without its runtime data (for the SDL export).
pub fn schema_builder(
    limits: QueryLimits,
) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    // Depth is limited by SelectionLimit (before validation, introspection aside), not by
    // async-graphql's limit_depth, which would refuse a schema explorer's introspection.
    Schema::build(Query, Mutation::default(), Subscription)
        .limit_complexity(limits.complexity)
        .extension(error_codes::ErrorCodes)
        .extension(selections::SelectionLimit {
            max_depth: limits.depth,
        })
        .data(Limits {
            max_page_size: limits.max_page_size,
        })
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema_builder(QueryLimits {
        depth: 0,
        complexity: 0,
        max_page_size: 0,
    })
    .finish()
    .sdl()
}
