//! A cap on how many fields a request selects, checked right after parsing. async-graphql's
//! validation (which computes depth and complexity) compares fields pairwise, so a request of
//! hundreds of aliases costs tens of milliseconds before its complexity can refuse it; counting
//! selections first refuses such a request in microseconds, before any of that runs.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Most fields (aliases, fragments' fields included, each fragment counted once) a request
/// may select. The dashboard's largest query selects about 60.
pub const MAX_SELECTIONS: usize = 300;

#[derive(Debug, Clone, Copy, Default)]
pub struct SelectionLimit;

impl ExtensionFactory for SelectionLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SelectionLimit)
    }
}

fn count(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => 1 + count(&field.node.selection_set.node),
            Selection::InlineFragment(fragment) => count(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 1,
        })
        .sum()
}

fn selections(document: &ExecutableDocument) -> usize {
    document
        .operations
        .iter()
        .map(|(_, op)| count(&op.node.selection_set.node))
        .chain(
            document
                .fragments
                .values()
                .map(|f| count(&f.node.selection_set.node)),
        )
        .sum()
}

#[async_graphql::async_trait::async_trait]
impl Extension for SelectionLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let selected = selections(&document);
        if selected > MAX_SELECTIONS {
            let mut error = ServerError::new(
                format!(
                    "Query is too complex: it selects {selected} fields, and a request may select at most {MAX_SELECTIONS}"
                ),
                None,
            );
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "QUERY_TOO_COMPLEX");
            return Err(error);
        }
        Ok(document)
    }
}
