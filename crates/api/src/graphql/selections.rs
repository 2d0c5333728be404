//! Caps on how many fields a request selects and how deep it nests, checked right after
//! parsing. async-graphql's validation (which computes complexity) compares fields pairwise, so
//! a request of hundreds of aliases costs tens of milliseconds before its complexity can refuse
//! it; counting selections first refuses such a request in microseconds, before any of that runs.
//! The depth is measured here too, leaving out introspection (`__schema`, `__type`): a schema
//! explorer's standard introspection query nests type references deeper than any data query
//! needs, and introspection reads nothing from the database.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Most fields (aliases, fragments' fields included, each fragment counted once) a request
/// may select. The dashboard's largest query selects about 60.
pub const MAX_SELECTIONS: usize = 300;

#[derive(Debug, Clone, Copy)]
pub struct SelectionLimit {
    /// Deepest nesting of fields accepted (introspection aside).
    pub max_depth: usize,
}

impl ExtensionFactory for SelectionLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

/// The depth of a selection set: fields on its longest path. Fragment depths are memoised (a
/// fragment spread many times is measured once); a fragment cycle counts as nothing here and is
/// refused by validation.
fn depth<'a>(
    set: &'a SelectionSet,
    document: &'a ExecutableDocument,
    memo: &mut HashMap<&'a str, usize>,
    open: &mut Vec<&'a str>,
) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                if name == "__schema" || name == "__type" {
                    0
                } else {
                    1 + depth(&field.node.selection_set.node, document, memo, open)
                }
            }
            Selection::InlineFragment(fragment) => {
                depth(&fragment.node.selection_set.node, document, memo, open)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if let Some(known) = memo.get(name) {
                    return *known;
                }
                if open.contains(&name) {
                    return 0;
                }
                let Some((key, fragment)) = document
                    .fragments
                    .get_key_value(&spread.node.fragment_name.node)
                else {
                    return 0;
                };
                open.push(key.as_str());
                let measured = depth(&fragment.node.selection_set.node, document, memo, open);
                open.pop();
                memo.insert(key.as_str(), measured);
                measured
            }
        })
        .max()
        .unwrap_or(0)
}

fn deepest(document: &ExecutableDocument) -> usize {
    let mut memo = HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, op)| {
            depth(
                &op.node.selection_set.node,
                document,
                &mut memo,
                &mut Vec::new(),
            )
        })
        .max()
        .unwrap_or(0)
}

fn refusal(message: String, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
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
            return Err(refusal(
                format!(
                    "Query is too complex: it selects {selected} fields, and a request may select at most {MAX_SELECTIONS}"
                ),
                "QUERY_TOO_COMPLEX",
            ));
        }
        let nested = deepest(&document);
        if nested > self.max_depth {
            return Err(refusal(
                format!(
                    "Query is nested too deep: {nested} levels of fields, and at most {} are allowed",
                    self.max_depth
                ),
                "QUERY_TOO_DEEP",
            ));
        }
        Ok(document)
    }
}
