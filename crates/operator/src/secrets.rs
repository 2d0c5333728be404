//! The Secrets a CardStream references, read on each reconcile (`get` only: the operator never
//! lists or watches Secrets). For two things: the Kafka credentials the operator itself needs to
//! create topics and measure lag, and a digest per component of the Secrets its pods read
//! environment variables from, which goes into the pod template so that a changed Secret rolls
//! the pods (the kubelet never updates environment variables). The gateway's webhook secrets
//! are a mounted file it reloads by itself, so they are not read at all.
//!
//! The digest covers each Secret's uid and resourceVersion, not its values: the annotation is
//! readable by anyone who may read Deployments, and an unkeyed hash of a weak database password
//! could be reversed offline. The price: any change to a Secret (even to a key a component does
//! not read) rolls every component that reads from it; one Secret per concern avoids that.

use std::collections::BTreeMap;

use cardstream_kafka::Credentials;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sha2::{Digest, Sha256};

use crate::{CardStream, Component, Error, SecretKeyRef};

/// The annotation on a component's pod template holding its [`Referenced::digest`].
pub const SECRETS_ANNOTATION: &str = "cardstream.dev/secrets-digest";

/// What the referenced Secrets hold, as far as the operator needs it.
#[derive(Debug, Default)]
pub struct Referenced {
    /// Per component: a digest of the versions of the Secrets its pods read from the environment.
    digests: BTreeMap<&'static str, String>,
    /// `spec.kafka.credentialsSecret`, parsed.
    pub kafka_credentials: Option<Credentials>,
}

impl Referenced {
    pub fn digest(&self, component: Component) -> Option<&str> {
        self.digests.get(component.name()).map(String::as_str)
    }
}

/// The Secret keys `component`'s pods read from the environment, with the spec field naming
/// each.
fn environment(cs: &CardStream, component: Component) -> Vec<(&'static str, &SecretKeyRef)> {
    let spec = &cs.spec;
    let mut refs = vec![("spec.databaseUrlSecret", &spec.database_url_secret)];
    if crate::objects::reads_kafka(component)
        && let Some(credentials) = &spec.kafka.credentials_secret
    {
        refs.push(("spec.kafka.credentialsSecret", credentials));
    }
    if component != Component::Api
        && let Some(keys) = &spec.record_keys_secret
    {
        refs.push(("spec.recordKeysSecret", keys));
    }
    if component == Component::Api {
        refs.push(("spec.tokenSecret", &spec.token_secret));
    }
    refs
}

/// Reads every Secret `cs` references (each once). A missing Secret or key is an error naming
/// the spec field, the Secret and the key, never a value.
pub async fn read(api: &Api<Secret>, cs: &CardStream) -> Result<Referenced, Error> {
    let mut secrets: BTreeMap<String, Secret> = BTreeMap::new();
    // The value at `reference`, and its Secret's uid and resourceVersion.
    let mut value =
        async |field: &str, reference: &SecretKeyRef| -> Result<(Vec<u8>, [String; 2]), Error> {
            if !secrets.contains_key(&reference.name) {
                let secret = api.get_opt(&reference.name).await?.ok_or_else(|| {
                    Error::Secret(format!("{field}: Secret {:?} not found", reference.name))
                })?;
                secrets.insert(reference.name.clone(), secret);
            }
            let secret = &secrets[&reference.name];
            let version = [
                secret.metadata.uid.clone().unwrap_or_default(),
                secret.metadata.resource_version.clone().unwrap_or_default(),
            ];
            let bytes = secret
                .data
                .as_ref()
                .and_then(|data| data.get(&reference.key))
                .map(|bytes| bytes.0.clone())
                .or_else(|| {
                    secret
                        .string_data
                        .as_ref()
                        .and_then(|data| data.get(&reference.key))
                        .map(|text| text.clone().into_bytes())
                })
                .ok_or_else(|| {
                    Error::Secret(format!(
                        "{field}: Secret {:?} has no key {:?}",
                        reference.name, reference.key
                    ))
                })?;
            Ok((bytes, version))
        };
    let mut referenced = Referenced::default();
    if let Some(credentials) = &cs.spec.kafka.credentials_secret {
        let field = "spec.kafka.credentialsSecret";
        let (bytes, _) = value(field, credentials).await?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Secret(format!("{field}: the value is not UTF-8")))?;
        referenced.kafka_credentials = Some(
            Credentials::parse(&text).map_err(|why| Error::Secret(format!("{field}: {why}")))?,
        );
    }
    for component in Component::ALL {
        let mut hasher = Sha256::new();
        let mut seen: Vec<&str> = Vec::new();
        for (field, reference) in environment(cs, component) {
            // Every key must exist (the pod would not start), though only versions are hashed.
            let (_, [uid, version]) = value(field, reference).await?;
            if seen.contains(&reference.name.as_str()) {
                continue;
            }
            seen.push(&reference.name);
            for part in [reference.name.as_str(), &uid, &version] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
        }
        referenced
            .digests
            .insert(component.name(), hex::encode(&hasher.finalize()[..8]));
    }
    Ok(referenced)
}
