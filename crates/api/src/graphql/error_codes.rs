//! Gives every error a `code` extension, including those async-graphql raises itself before any
//! resolver runs (parse errors, validation, depth and complexity limits).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Response, Value};

#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

fn code_for(message: &str) -> &'static str {
    if message.contains("nested too deep") {
        "QUERY_TOO_DEEP"
    } else if message.contains("too complex") {
        "QUERY_TOO_COMPLEX"
    } else if message.contains("introspection") || message.contains("Introspection") {
        "INTROSPECTION_DISABLED"
    } else if message.starts_with(" --> ")
        || message.contains("expected ") && message.contains("-->")
    {
        "GRAPHQL_PARSE_FAILED"
    } else {
        "GRAPHQL_VALIDATION_FAILED"
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", Value::String(code_for(&error.message).to_owned()));
            }
        }
        response
    }
}
