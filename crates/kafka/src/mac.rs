//! Record authentication. The gateway signs each record's payload with an internal key and
//! sends the MAC in the `cardstream-mac` header; the aggregator folds only records whose MAC
//! verifies and dead-letters the rest. Write access to the topic alone (a leaked client
//! credential, a misconfigured ACL) then cannot inject spend.
//!
//! Several keys may be active, for rotation: the first signs, every one verifies. To rotate,
//! add the new key last everywhere, then put it first, then remove the old one.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::Error;

type HmacSha256 = Hmac<Sha256>;

/// The smallest key accepted, in bytes.
pub(crate) const MIN_KEY: usize = 32;
const VERSION: &str = "v1=";

/// Where the record keys come from. Only from the environment or a file: never a flag.
#[derive(clap::Args, Clone, Default)]
pub struct RecordKeyArgs {
    /// Keys that authenticate records on the topic (at least 32 bytes each), comma-separated:
    /// the first signs, all verify. Without any, records are neither signed nor checked.
    #[arg(
        long = "record-keys",
        env = "CARDSTREAM_RECORD_KEYS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = clap::builder::StringValueParser::new().map(SecretString::from)
    )]
    pub record_keys: Vec<SecretString>,

    /// A file with record keys, one per line (e.g. a mounted Kubernetes Secret), after those
    /// of CARDSTREAM_RECORD_KEYS.
    #[arg(long = "record-keys-file", env = "CARDSTREAM_RECORD_KEYS_FILE")]
    pub record_keys_file: Option<PathBuf>,
}

impl std::fmt::Debug for RecordKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordKeyArgs")
            .field(
                "record_keys",
                &format_args!("<{} redacted>", self.record_keys.len()),
            )
            .field("record_keys_file", &self.record_keys_file)
            .finish()
    }
}

impl RecordKeyArgs {
    /// The configured keys, or `None` when there are none.
    pub fn load(&self) -> Result<Option<RecordKeys>, Error> {
        // Comma-separated, and (as a Kubernetes Secret holds them) one per line.
        let mut keys: Vec<String> = self
            .record_keys
            .iter()
            .flat_map(|k| {
                k.expose_secret()
                    .lines()
                    .map(str::trim)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|k| !k.is_empty())
            .collect();
        if let Some(path) = &self.record_keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::RecordKeys(format!("cannot read {}: {e}", path.display())))?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|k| !k.is_empty() && !k.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        if keys.is_empty() {
            return Ok(None);
        }
        RecordKeys::new(&keys).map(Some)
    }
}

/// Keyed MAC state per key, ready to clone per record.
#[derive(Clone)]
pub struct RecordKeys {
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordKeys(<{} redacted>)", self.keys.len())
    }
}

/// Why a record's MAC did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("the record has no cardstream-mac header")]
    Missing,
    #[error("the cardstream-mac header is not v1=<hex>")]
    Malformed,
    #[error("the record's MAC matches none of the record keys")]
    Mismatch,
}

impl RecordKeys {
    pub fn new(keys: &[impl AsRef<[u8]>]) -> Result<Self, Error> {
        let keys = keys
            .iter()
            .map(|key| {
                let key = key.as_ref();
                if key.len() < MIN_KEY {
                    return Err(Error::RecordKeys(format!(
                        "a record key must be at least {MIN_KEY} bytes"
                    )));
                }
                HmacSha256::new_from_slice(key).map_err(|e| Error::RecordKeys(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(Error::RecordKeys("no record key given".into()));
        }
        Ok(RecordKeys { keys })
    }

    /// The `cardstream-mac` header value for `payload`, with the first key.
    pub fn sign(&self, payload: &[u8]) -> String {
        let mut mac = self.keys[0].clone();
        mac.update(payload);
        format!("{VERSION}{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Checks a record's `cardstream-mac` header against every key, in constant time.
    pub fn verify(&self, header: Option<&[u8]>, payload: &[u8]) -> Result<(), MacError> {
        let header = header.ok_or(MacError::Missing)?;
        let expected = header
            .strip_prefix(VERSION.as_bytes())
            .and_then(|h| hex::decode(h).ok())
            .ok_or(MacError::Malformed)?;
        let matches = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(payload);
            mac.verify_slice(&expected).is_ok()
        });
        if matches {
            Ok(())
        } else {
            Err(MacError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "an old record key of thirty-two bytes or more";
    const NEW: &str = "a new record key, also at least thirty-two bytes";

    #[test]
    fn a_record_verifies_with_any_active_key_and_not_otherwise() {
        let old = RecordKeys::new(&[OLD]).unwrap();
        let rolling = RecordKeys::new(&[NEW, OLD]).unwrap();
        let new = RecordKeys::new(&[NEW]).unwrap();
        let payload = br#"{"id":"evt_1"}"#;
        let signed_old = old.sign(payload);
        assert_eq!(rolling.verify(Some(signed_old.as_bytes()), payload), Ok(()));
        assert_eq!(
            new.verify(Some(signed_old.as_bytes()), payload),
            Err(MacError::Mismatch)
        );
        let signed = rolling.sign(payload);
        assert_eq!(new.verify(Some(signed.as_bytes()), payload), Ok(()));
        assert_eq!(
            new.verify(Some(signed.as_bytes()), br#"{"id":"evt_2"}"#),
            Err(MacError::Mismatch)
        );
        assert_eq!(new.verify(None, payload), Err(MacError::Missing));
        assert_eq!(
            new.verify(Some(b"v1=zz"), payload),
            Err(MacError::Malformed)
        );
    }

    #[test]
    fn short_keys_are_refused_and_debug_shows_no_key() {
        assert!(RecordKeys::new(&["short"]).is_err());
        let keys = RecordKeys::new(&[OLD]).unwrap();
        assert!(!format!("{keys:?}").contains("record key"));
        let args = RecordKeyArgs {
            record_keys: vec![SecretString::from(OLD)],
            record_keys_file: None,
        };
        assert!(!format!("{args:?}").contains("thirty"));
    }
}
