//! The `Stripe-Signature` header parser and the verifier the gateway runs on every webhook.
//!
//! Input: `<header value>\n<payload>` (no newline: the whole input is the header and the payload
//! is empty). Checks, besides "never panics":
//! - `parse_header` and `Verifier::verify` agree: a header that does not parse never verifies;
//! - a header `signature::header` makes for the parsed timestamp and the payload parses back to
//!   that timestamp and verifies, at that instant and at the edges of the tolerance;
//! - `verify` at extreme clocks (`i64::MIN`, `i64::MAX`) returns an error or a header, never panics.
#![no_main]

use std::sync::OnceLock;

use cardstream_stripe::signature::{self, DEFAULT_TOLERANCE_SECS, SignatureError};
use cardstream_stripe::{Verifier, WebhookSecret};
use libfuzzer_sys::fuzz_target;

/// One secret from the published vectors, one like a real endpoint's (two while rolling).
fn secrets() -> &'static [WebhookSecret] {
    static SECRETS: OnceLock<Vec<WebhookSecret>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        vec![
            WebhookSecret::new("secret"),
            WebhookSecret::new("whsec_fuzz_0123456789abcdef"),
        ]
    })
}

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new(secrets(), DEFAULT_TOLERANCE_SECS).expect("two secrets"))
}

fuzz_target!(|data: &[u8]| {
    let (header, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let verifier = verifier();

    let parsed = signature::parse_header(header);
    for now in [0, i64::MIN, i64::MAX] {
        let verified = verifier.verify(Some(header), payload, now);
        match (&parsed, &verified) {
            (Err(parse_error), Err(verify_error)) => assert_eq!(parse_error, verify_error),
            (Err(parse_error), Ok(_)) => panic!("unparsable header verified: {parse_error}"),
            (Ok(_), Err(SignatureError::Malformed(what))) => {
                panic!("parsed header called malformed by verify: {what}")
            }
            (Ok(_), Err(SignatureError::Missing)) => panic!("present header called missing"),
            (Ok(_), _) => {}
        }
    }
    if let Ok(parsed) = &parsed
        && let Ok(verified) = verifier.verify(Some(header), payload, parsed.timestamp)
    {
        assert_eq!(&verified, parsed);
    }

    // Whatever timestamp the input carries, a header signed for it round-trips and verifies.
    let timestamp = match &parsed {
        Ok(parsed) => parsed.timestamp,
        Err(_) => 1_533_204_620,
    };
    let signed = signature::header(secrets(), timestamp, payload);
    let reparsed = signature::parse_header(signed.as_bytes()).expect("our own header parses");
    assert_eq!(reparsed.timestamp, timestamp);
    assert_eq!(reparsed.v1.len(), secrets().len());
    let tolerance = DEFAULT_TOLERANCE_SECS as i64;
    for now in [
        Some(timestamp),
        timestamp.checked_add(tolerance),
        timestamp.checked_sub(tolerance),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(err) = verifier.verify(Some(signed.as_bytes()), payload, now) {
            panic!("own signature at t={timestamp} rejected at now={now}: {err}");
        }
    }
    if let Some(late) = timestamp.checked_add(tolerance + 1) {
        assert!(matches!(
            verifier.verify(Some(signed.as_bytes()), payload, late),
            Err(SignatureError::OutsideTolerance { .. })
        ));
    }
    // A signature over other bytes never matches.
    let mut other = payload.to_vec();
    other.push(b'!');
    assert_eq!(
        verifier.verify(Some(signed.as_bytes()), &other, timestamp),
        Err(SignatureError::NoMatch)
    );
});
