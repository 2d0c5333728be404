//! Request counts and latency per GraphQL operation. Labels are the operation type and its
//! first root field (bounded by the schema), never client-chosen operation names.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Response, ServerResult, Variables};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// `cardstream_api_graphql_requests_total{type, field, outcome}` and
/// `cardstream_api_graphql_request_duration_seconds{type, field}`.
#[derive(Clone, Debug)]
pub struct OperationMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl OperationMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("cardstream_api_graphql_requests_total", "GraphQL operations by type, first root field and outcome (ok, error, invalid)."),
            &["type", "field", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("cardstream_api_graphql_request_duration_seconds", "Time to answer a GraphQL operation, by type and first root field.")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            &["type", "field"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(OperationMetrics { requests, duration })
    }
}

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Recorder { metrics: self.clone(), labels: Mutex::new(None) })
    }
}

struct Recorder {
    metrics: OperationMetrics,
    labels: Mutex<Option<(&'static str, String)>>,
}

fn describe(document: &ExecutableDocument) -> Option<(&'static str, String)> {
    let (_, operation) = document.operations.iter().next()?;
    let kind = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let field = operation.node.selection_set.node.items.iter().find_map(|item| match &item.node {
        Selection::Field(field) => Some(field.node.name.node.to_string()),
        _ => None,
    })?;
    Some((kind, field))
}

#[async_graphql::async_trait::async_trait]
impl Extension for Recorder {
    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Ok(mut labels) = self.labels.lock() {
            *labels = describe(&document);
        }
        Ok(document)
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let labels = self.labels.lock().ok().and_then(|l| l.clone());
        // An unknown root field fails validation; label it "invalid" so clients cannot grow the
        // label set.
        let (kind, field, outcome) = match (&labels, response.errors.is_empty()) {
            (Some((kind, field)), true) => (*kind, field.as_str(), "ok"),
            (Some((kind, field)), false) if response.data != async_graphql::Value::Null => (*kind, field.as_str(), "error"),
            _ => ("unknown", "invalid", "invalid"),
        };
        self.metrics.requests.with_label_values(&[kind, field, outcome]).inc();
        self.metrics.duration.with_label_values(&[kind, field]).observe(started.elapsed().as_secs_f64());
        response
    }
}
