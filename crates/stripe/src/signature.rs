//! Stripe webhook signatures.
//!
//! Header: `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`. The signed bytes are
//! `"{t}.{raw body}"`, HMAC-SHA256 keyed with the whole `whsec_…` string. Any matching `v1`
//! passes (Stripe sends one per active secret while a secret is being rolled); every other
//! scheme is ignored. Verification works on the raw body bytes, before any parsing.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The default tolerance Stripe's libraries use for the timestamp, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Why a signature was rejected. [`SignatureError::code`] is the stable machine-readable form,
/// used in HTTP error bodies and as a metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("no v1 signature matches any configured webhook secret")]
    NoMatch,
    #[error(
        "the signature timestamp is {age_secs} s from now, outside the {tolerance_secs} s tolerance"
    )]
    OutsideTolerance { age_secs: i64, tolerance_secs: u64 },
}

impl SignatureError {
    /// Every [`SignatureError::code`], so that a metric can export each from the start.
    pub const CODES: [&'static str; 4] = [
        "signature_missing",
        "signature_malformed",
        "signature_mismatch",
        "timestamp_outside_tolerance",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::NoMatch => "signature_mismatch",
            SignatureError::OutsideTolerance { .. } => "timestamp_outside_tolerance",
        }
    }
}

/// A parsed `Stripe-Signature` header. Only the parts that matter are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// Every `v1` value that is well-formed hex of the right length. Malformed `v1` values
    /// cannot match anything, so they are dropped rather than failing the whole header.
    pub v1: Vec<[u8; 32]>,
}

/// Parses a header value. Never panics, whatever the bytes.
pub fn parse_header(raw: &[u8]) -> Result<SignatureHeader, SignatureError> {
    let text = std::str::from_utf8(raw).map_err(|_| SignatureError::Malformed("not UTF-8"))?;
    let mut timestamp = None;
    let mut v1 = Vec::new();
    let mut saw_v1 = false;
    for item in text.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one timestamp"));
                }
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("timestamp is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => {
                saw_v1 = true;
                let mut digest = [0u8; 32];
                if hex::decode_to_slice(value, &mut digest).is_ok() {
                    v1.push(digest);
                }
            }
            // v0 and any future scheme are deliberately ignored.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no timestamp"))?;
    if !saw_v1 {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// A webhook endpoint secret. Its `Debug` never shows the value, and its memory is zeroed
/// when it is dropped.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        WebhookSecret(SecretString::from(secret.into()))
    }

    /// The secret itself: for signing and verifying, never for logging.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Verifies webhook signatures against one or more active secrets.
#[derive(Clone)]
pub struct Verifier {
    /// One keyed HMAC state per secret, cloned per verification so the key schedule is paid
    /// once at start-up instead of on every request.
    keys: Vec<HmacSha256>,
    tolerance_secs: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.keys.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl Verifier {
    /// `secrets` must not be empty: a gateway with no secret would reject everything.
    pub fn new(secrets: &[WebhookSecret], tolerance_secs: u64) -> Result<Self, crate::Error> {
        if secrets.is_empty() {
            return Err(crate::Error::NoSecrets);
        }
        let keys = secrets.iter().map(|s| keyed(s.expose())).collect();
        Ok(Verifier {
            keys,
            tolerance_secs,
        })
    }

    /// Verifies `payload` against the header value, at time `now` (unix seconds).
    ///
    /// The signature is checked before the timestamp so that a caller without a secret
    /// learns nothing beyond "no match".
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        payload: &[u8],
        now: i64,
    ) -> Result<SignatureHeader, SignatureError> {
        let header = parse_header(header.ok_or(SignatureError::Missing)?)?;
        let mut matched = subtle::Choice::from(0);
        for key in &self.keys {
            let expected = digest_with(key.clone(), header.timestamp, payload);
            for candidate in &header.v1 {
                // Constant-time per comparison, and no early exit across candidates.
                matched |= expected.ct_eq(candidate);
            }
        }
        if !bool::from(matched) {
            return Err(SignatureError::NoMatch);
        }
        let age_secs = now.saturating_sub(header.timestamp);
        if age_secs.unsigned_abs() > self.tolerance_secs {
            return Err(SignatureError::OutsideTolerance {
                age_secs,
                tolerance_secs: self.tolerance_secs,
            });
        }
        Ok(header)
    }
}

fn keyed(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

fn digest_with(mut mac: HmacSha256, timestamp: i64, payload: &[u8]) -> [u8; 32] {
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// The `v1` signature of `payload` at `timestamp`, as lowercase hex.
pub fn sign(secret: &WebhookSecret, timestamp: i64, payload: &[u8]) -> String {
    hex::encode(digest_with(keyed(secret.expose()), timestamp, payload))
}

/// A complete `Stripe-Signature` header value with one `v1` per secret, as Stripe sends
/// while secrets are being rolled.
pub fn header(secrets: &[WebhookSecret], timestamp: i64, payload: &[u8]) -> String {
    let mut out = format!("t={timestamp}");
    for secret in secrets {
        out.push_str(",v1=");
        out.push_str(&sign(secret, timestamp, payload));
    }
    out
}

/// Raw HMAC-SHA256 of `message` under `secret`, hex. Exposed for the published test vectors.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_code_is_listed() {
        let errors = [
            SignatureError::Missing,
            SignatureError::Malformed("x"),
            SignatureError::NoMatch,
            SignatureError::OutsideTolerance {
                age_secs: 999,
                tolerance_secs: 300,
            },
        ];
        for error in errors {
            assert!(SignatureError::CODES.contains(&error.code()), "{error:?}");
        }
    }

    use super::*;

    fn verifier(secrets: &[&str]) -> Verifier {
        let secrets: Vec<_> = secrets.iter().map(|s| WebhookSecret::new(*s)).collect();
        Verifier::new(&secrets, DEFAULT_TOLERANCE_SECS).unwrap()
    }

    #[test]
    fn header_parser_ignores_other_schemes_and_bad_v1() {
        let parsed = parse_header(b"t=12,v0=zz,v1=nothex,v1=00000000000000000000000000000000000000000000000000000000000000ff,x=1").unwrap();
        assert_eq!(parsed.timestamp, 12);
        assert_eq!(parsed.v1.len(), 1);
        assert_eq!(parsed.v1[0][31], 0xff);
    }

    #[test]
    fn header_parser_names_what_is_wrong() {
        assert_eq!(
            parse_header(b"v1=aa"),
            Err(SignatureError::Malformed("no timestamp"))
        );
        assert_eq!(
            parse_header(b"t=1"),
            Err(SignatureError::Malformed("no v1 signature"))
        );
        assert_eq!(
            parse_header(b"t=1,t=2,v1=aa"),
            Err(SignatureError::Malformed("more than one timestamp"))
        );
        assert_eq!(
            parse_header(b"t=abc,v1=aa"),
            Err(SignatureError::Malformed("timestamp is not an integer"))
        );
        assert_eq!(
            parse_header(b"t=1,\xff"),
            Err(SignatureError::Malformed("not UTF-8"))
        );
    }

    #[test]
    fn missing_header_is_its_own_error() {
        assert_eq!(
            verifier(&["whsec_a"]).verify(None, b"{}", 0),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn tolerance_applies_both_ways() {
        let secret = WebhookSecret::new("whsec_a");
        let v = verifier(&["whsec_a"]);
        let h = header(std::slice::from_ref(&secret), 1000, b"x");
        assert!(v.verify(Some(h.as_bytes()), b"x", 1300).is_ok());
        assert!(v.verify(Some(h.as_bytes()), b"x", 700).is_ok());
        assert_eq!(
            v.verify(Some(h.as_bytes()), b"x", 1301).unwrap_err().code(),
            "timestamp_outside_tolerance"
        );
        assert_eq!(
            v.verify(Some(h.as_bytes()), b"x", 699).unwrap_err().code(),
            "timestamp_outside_tolerance"
        );
    }

    #[test]
    fn a_verifier_needs_a_secret() {
        assert!(Verifier::new(&[], 300).is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let secret = WebhookSecret::new("whsec_supersecret");
        assert!(!format!("{secret:?}").contains("supersecret"));
        let v = Verifier::new(&[secret], 300).unwrap();
        assert!(!format!("{v:?}").contains("supersecret"));
    }
}
