//! A stand-in API server that keeps objects as the real one does, for flows whose requests are
//! not known in advance (a controller's lists and watches): a GET answers what is stored (404
//! otherwise), a list every object of the collection, and a watch is held open, never
//! answered; a server-side apply stores the object (201 when it created it), a merge patch
//! merges, a POST creates (409 when the object exists), a PUT replaces (409 on a stale
//! resourceVersion). Every request is recorded in a [`Log`] as the accesses the real API
//! server would authorize for it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::SendResponse;

use super::{Access, ApiHandle, Log, status};

/// The objects, by path (`/apis/apps/v1/namespaces/ns/deployments/name`).
#[derive(Clone, Default)]
pub(crate) struct Cluster {
    objects: Arc<Mutex<BTreeMap<String, Value>>>,
    version: Arc<Mutex<u64>>,
    pub(crate) log: Log,
}

impl Cluster {
    /// Stores `object` at `path` as if created earlier (not logged).
    pub(crate) fn put(&self, path: &str, object: Value) {
        let object = self.stamped(object, None);
        self.objects.lock().unwrap().insert(path.to_owned(), object);
    }

    pub(crate) fn get(&self, path: &str) -> Option<Value> {
        self.objects.lock().unwrap().get(path).cloned()
    }

    /// Changes the object at `path` in place, as another controller would (not logged).
    pub(crate) fn edit(&self, path: &str, edit: impl FnOnce(&mut Value)) {
        let mut objects = self.objects.lock().unwrap();
        edit(objects.get_mut(path).unwrap_or_else(|| panic!("no {path}")));
    }

    /// Answers every request `handle` receives until the client goes away.
    pub(crate) fn serve(&self, mut handle: ApiHandle) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            // Watches stay open here, unanswered, for as long as the test runs.
            let mut watches: Vec<SendResponse<Response<Body>>> = Vec::new();
            while let Some((request, respond)) = handle.next_request().await {
                let method = request.method().clone();
                let uri = request.uri().clone();
                let apply = request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|t| t.as_bytes() == b"application/apply-patch+yaml");
                let access = Access::of(&method, &uri);
                let bytes = request.into_body().collect_bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if access.verb == "watch" {
                    cluster.log.record(access);
                    watches.push(respond);
                    continue;
                }
                let (code, answer) = cluster.answer(&method, uri.path(), access, apply, &body);
                respond.send_response(
                    Response::builder()
                        .status(code)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                );
            }
        })
    }

    fn answer(
        &self,
        method: &Method,
        path: &str,
        access: Access,
        apply: bool,
        body: &Value,
    ) -> (StatusCode, Value) {
        let subresource = access.resource.contains('/');
        // The object a request is about: the path without its subresource, or for a POST to
        // a collection, the collection and the body's name.
        let object_path = match (method, &access.name) {
            (&Method::POST, None) => {
                format!("{path}/{}", body["metadata"]["name"].as_str().unwrap())
            }
            _ if subresource => path.rsplit_once('/').unwrap().0.to_owned(),
            _ => path.to_owned(),
        };
        let stored = self.get(&object_path);
        self.log.record(access.clone());
        if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            self.log_owner_checks(&access, body);
        }
        match (method, &access.verb[..]) {
            (_, "list") => {
                let prefix = format!("{path}/");
                let objects = self.objects.lock().unwrap();
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|(p, _)| p.strip_prefix(&prefix).is_some_and(|n| !n.contains('/')))
                    .map(|(_, o)| o.clone())
                    .collect();
                let version = self.version.lock().unwrap().to_string();
                (
                    StatusCode::OK,
                    json!({ "apiVersion": "v1", "kind": "List",
                            "metadata": { "resourceVersion": version }, "items": items }),
                )
            }
            (_, "get") => match stored {
                Some(object) => (StatusCode::OK, object),
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
            },
            (_, "create") if stored.is_some() => {
                status(StatusCode::CONFLICT, "AlreadyExists", "already exists")
            }
            (_, "create") => self.store(object_path, body.clone(), None, StatusCode::CREATED),
            (_, "update") => match stored {
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
                Some(old)
                    if old["metadata"]["resourceVersion"]
                        != body["metadata"]["resourceVersion"] =>
                {
                    status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "the object has been modified",
                    )
                }
                Some(old) => self.store(object_path, body.clone(), Some(&old), StatusCode::OK),
            },
            (_, "patch") if apply && !subresource => {
                // Server-side apply creates a missing object, and then the API server also
                // authorizes `create` for it.
                let code = if stored.is_none() {
                    self.log.record(Access {
                        verb: "create".to_owned(),
                        ..access
                    });
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                let mut object = body.clone();
                if let Some(old) = &stored {
                    object["status"] = old["status"].clone();
                }
                self.store(object_path, object, stored.as_ref(), code)
            }
            (_, "patch") => match stored {
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
                Some(old) => {
                    let mut object = old.clone();
                    merge(&mut object, body);
                    self.store(object_path, object, Some(&old), StatusCode::OK)
                }
            },
            (_, "delete") => match self.objects.lock().unwrap().remove(&object_path) {
                Some(object) => (StatusCode::OK, object),
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
            },
            (method, verb) => {
                panic!("the stand-in API server does not serve {method} ({verb}) {path}")
            }
        }
    }

    /// With the OwnerReferencesPermissionEnforcement admission plugin (off in upstream
    /// Kubernetes, on in OpenShift), setting `blockOwnerDeletion` on an owner reference takes
    /// `update` on the owner's `finalizers` subresource. (Its other rule, `delete` on an object
    /// whose owner references an update changes, concerns adoption, which the operator does
    /// not do; the README says what that means for orphans.)
    fn log_owner_checks(&self, access: &Access, body: &Value) {
        let owners = body["metadata"]["ownerReferences"].as_array().cloned();
        for owner in owners.unwrap_or_default() {
            if owner["blockOwnerDeletion"] != true {
                continue;
            }
            let api_version = owner["apiVersion"].as_str().unwrap();
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            // The plural of every kind this operator owns objects by (CardStream).
            let plural = format!("{}s", owner["kind"].as_str().unwrap().to_lowercase());
            self.log.record(Access {
                group: group.to_owned(),
                resource: format!("{plural}/finalizers"),
                verb: "update".to_owned(),
                namespace: access.namespace.clone(),
                name: owner["name"].as_str().map(str::to_owned),
            });
        }
    }

    fn store(
        &self,
        path: String,
        object: Value,
        old: Option<&Value>,
        code: StatusCode,
    ) -> (StatusCode, Value) {
        let object = self.stamped(object, old);
        self.objects.lock().unwrap().insert(path, object.clone());
        (code, object)
    }

    /// `object` with a new resourceVersion, and the uid it has (or a new one).
    fn stamped(&self, mut object: Value, old: Option<&Value>) -> Value {
        let mut version = self.version.lock().unwrap();
        *version += 1;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let uid = old.map_or(Value::Null, |o| o["metadata"]["uid"].clone());
        if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = match uid {
                Value::Null => json!(format!("uid-{version}")),
                uid => uid,
            };
        }
        object
    }
}

/// A JSON merge patch (RFC 7386): `patch`'s fields replace `target`'s, `null` removes one.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in fields {
        if value.is_null() {
            target.as_object_mut().unwrap().remove(key);
        } else {
            merge(&mut target[key], value);
        }
    }
}
