//! Request counts and latency per GraphQL operation. Labels are the operation type and its
//! first root field (bounded by the schema), never client-chosen operation names.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Response, ServerResult, Variables};
use async_graphql::{ServerError, ValidationResult};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// `cardstream_graphql_requests_total{type, field, outcome}` and
/// `cardstream_graphql_request_duration_seconds{type, field}`.
#[derive(Clone, Debug)]
pub struct OperationMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl OperationMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "cardstream_graphql_requests_total",
                "GraphQL operations by type, first root field and outcome (ok, error, invalid).",
            ),
            &["type", "field", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "cardstream_graphql_request_duration_seconds",
                "Time to answer a GraphQL operation, by type and first root field.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["type", "field"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(OperationMetrics { requests, duration })
    }
}

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Recorder {
            metrics: self.clone(),
            labels: Mutex::new(None),
            valid: Mutex::new(false),
        })
    }
}

struct Recorder {
    metrics: OperationMetrics,
    labels: Mutex<Option<(&'static str, String)>>,
    /// Whether the operation passed validation (so its root field is one of the schema's).
    valid: Mutex<bool>,
}

fn describe(document: &ExecutableDocument) -> Option<(&'static str, String)> {
    let (_, operation) = document.operations.iter().next()?;
    let kind = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let field = operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .find_map(|item| match &item.node {
            Selection::Field(field) => Some(field.node.name.node.to_string()),
            _ => None,
        })?;
    Some((kind, field))
}

#[async_graphql::async_trait::async_trait]
impl Extension for Recorder {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Ok(mut labels) = self.labels.lock() {
            *labels = describe(&document);
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        if let Ok(mut valid) = self.valid.lock() {
            *valid = result.is_ok();
        }
        result
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let labels = self.labels.lock().ok().and_then(|l| l.clone());
        let valid = self.valid.lock().is_ok_and(|v| *v);
        // Operations that fail to parse or validate are labelled "invalid" together, so
        // clients cannot grow the label set with made-up field names.
        let (kind, field, outcome) = match (&labels, valid, response.errors.is_empty()) {
            (Some((kind, field)), true, true) => (*kind, field.as_str(), "ok"),
            (Some((kind, field)), true, false) => (*kind, field.as_str(), "error"),
            _ => ("unknown", "invalid", "invalid"),
        };
        self.metrics
            .requests
            .with_label_values(&[kind, field, outcome])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[kind, field])
            .observe(started.elapsed().as_secs_f64());
        response
    }
}
