//! A stand-in for the Kubernetes API server, as kube-rs tests its own controllers: a
//! `tower-test` mock service under a real `kube::Client`. A scenario is the exact list of
//! requests the code under test must make, in order; each names its method and path, checks the
//! body, and gives the answer a real API server would.

// Each test binary uses part of it.
#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod cluster;

use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

pub(crate) type ApiHandle = Handle<Request<Body>, Response<Body>>;

type Reply = dyn FnOnce(&Value) -> (StatusCode, Value) + Send;

/// One request the code must make, and the answer it gets.
pub(crate) struct Exchange {
    method: Method,
    path: String,
    /// Checks on the request body (JSON; `Null` when empty).
    check: Box<dyn FnOnce(&Value) + Send>,
    /// The status code and JSON body of the answer, from the request body.
    reply: Box<Reply>,
}

impl Exchange {
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        Exchange {
            method,
            path: path.into(),
            check: Box::new(|_| {}),
            reply: Box::new(|body| (StatusCode::OK, body.clone())),
        }
    }

    /// A server-side apply (`PATCH` with the operator's field manager, forced): answered with
    /// the object applied, as the API server returns it.
    pub(crate) fn apply(path: impl Into<String>) -> Self {
        Exchange::new(Method::PATCH, path)
    }

    pub(crate) fn get(path: impl Into<String>) -> Self {
        Exchange::new(Method::GET, path)
    }

    pub(crate) fn check(mut self, check: impl FnOnce(&Value) + Send + 'static) -> Self {
        self.check = Box::new(check);
        self
    }

    pub(crate) fn reply(
        mut self,
        reply: impl FnOnce(&Value) -> (StatusCode, Value) + Send + 'static,
    ) -> Self {
        self.reply = Box::new(reply);
        self
    }

    /// Answers with a fixed object.
    pub(crate) fn returns(self, object: Value) -> Self {
        self.reply(move |_| (StatusCode::OK, object))
    }

    /// Answers as the API server does for an object that does not exist.
    pub(crate) fn not_found(self) -> Self {
        self.reply(|_| status(StatusCode::NOT_FOUND, "NotFound", "not found"))
    }
}

/// What a request asks of the API server's authorizer, as RBAC names it: the API group (`""`
/// for the core group), the resource (with its subresource: `cardstreams/status`), the verb
/// (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`), and
/// the namespace and object name it is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Access {
    pub(crate) group: String,
    pub(crate) resource: String,
    pub(crate) verb: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
}

impl Access {
    /// The access a request needs, from its method and URI, as the API server's request info
    /// resolver finds it: a GET of a collection is `list`, or `watch` with `?watch=true`; any
    /// PATCH (server-side apply included) is `patch`.
    pub(crate) fn of(method: &Method, uri: &http::Uri) -> Access {
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => panic!("not a resource path: {uri}"),
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
                (Some((*namespace).to_owned()), rest)
            }
            rest => (None, rest),
        };
        let (resource, name) = match rest {
            [resource] => ((*resource).to_owned(), None),
            [resource, name] => ((*resource).to_owned(), Some((*name).to_owned())),
            [resource, name, subresource] => (
                format!("{resource}/{subresource}"),
                Some((*name).to_owned()),
            ),
            _ => panic!("not a resource path: {uri}"),
        };
        let query = uri.query().unwrap_or_default();
        let watching = query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1");
        let verb = match (method.as_str(), name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if watching => "watch",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            (other, _) => panic!("no RBAC verb for {other} {uri}"),
        };
        Access {
            group: group.to_owned(),
            resource,
            verb: verb.to_owned(),
            namespace,
            name,
        }
    }
}

/// Every access the requests served so far needed, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<Access>>>);

impl Log {
    pub(crate) fn record(&self, access: Access) {
        self.0.lock().unwrap().push(access);
    }

    pub(crate) fn accesses(&self) -> Vec<Access> {
        self.0.lock().unwrap().clone()
    }
}

/// A `Status` body, as the API server sends with every error.
pub(crate) fn status(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        }),
    )
}

/// A client whose every request goes to the returned handle.
pub(crate) fn client() -> (Client, ApiHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// Serves `scenario` in order on `handle`, asserting each request; returns how many were
/// served. Panics (failing the test) on a request the scenario does not expect.
pub(crate) fn serve(
    handle: ApiHandle,
    name: &'static str,
    scenario: Vec<Exchange>,
) -> tokio::task::JoinHandle<ApiHandle> {
    serve_logged(handle, name, scenario, Log::default())
}

/// [`serve`], recording the access each request needs in `log`.
pub(crate) fn serve_logged(
    mut handle: ApiHandle,
    name: &'static str,
    scenario: Vec<Exchange>,
    log: Log,
) -> tokio::task::JoinHandle<ApiHandle> {
    tokio::spawn(async move {
        for (i, expected) in scenario.into_iter().enumerate() {
            let step = i + 1;
            let Some((request, respond)) = handle.next_request().await else {
                panic!(
                    "{name}, step {step}: the client went away before {} {}",
                    expected.method, expected.path
                );
            };
            let method = request.method().clone();
            log.record(Access::of(&method, request.uri()));
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            assert_eq!(
                (&method, path.as_str()),
                (&expected.method, expected.path.as_str()),
                "{name}, step {step}: unexpected request (query {query:?})"
            );
            if method == Method::PATCH && path.ends_with("/status") {
                let content_type = request.headers()[http::header::CONTENT_TYPE]
                    .to_str()
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(
                    content_type, "application/merge-patch+json",
                    "{name}, step {step}: status is a merge patch"
                );
            } else if method == Method::PATCH {
                assert!(
                    query.contains("fieldManager=cardstream-operator")
                        && query.contains("force=true"),
                    "{name}, step {step}: {path} is not a forced server-side apply by cardstream-operator: {query}"
                );
                let content_type = request.headers()[http::header::CONTENT_TYPE]
                    .to_str()
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(
                    content_type, "application/apply-patch+yaml",
                    "{name}, step {step}"
                );
            }
            let bytes = request
                .into_body()
                .collect_bytes()
                .await
                .expect("request body");
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("{name}, step {step}: body is not JSON: {e}"))
            };
            (expected.check)(&body);
            let (code, answer) = (expected.reply)(&body);
            respond.send_response(
                Response::builder()
                    .status(code)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                    .expect("response"),
            );
        }
        handle
    })
}

/// Asserts that no further request arrives (the code under test is done with the API server).
pub(crate) async fn assert_quiet(mut handle: ApiHandle, name: &str) {
    let next =
        tokio::time::timeout(std::time::Duration::from_millis(200), handle.next_request()).await;
    if let Ok(Some((request, _))) = next {
        panic!(
            "{name}: unexpected extra request {} {}",
            request.method(),
            request.uri()
        );
    }
}
