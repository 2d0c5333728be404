//! Properties of signature verification over generated inputs.

#![allow(clippy::unwrap_used)]

use cardstream_stripe::signature::{self, SignatureError, parse_header};
use cardstream_stripe::{Verifier, WebhookSecret};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000;

fn secrets() -> impl Strategy<Value = Vec<WebhookSecret>> {
    prop::collection::vec("whsec_[A-Za-z0-9]{1,40}", 1..4)
        .prop_map(|v| v.into_iter().map(WebhookSecret::new).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any payload signed with any one of the configured secrets verifies.
    #[test]
    fn signed_with_any_configured_secret_verifies(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        payload in prop::collection::vec(any::<u8>(), 0..2048),
        skew in -300i64..=300,
    ) {
        let signer = pick.get(&secrets);
        let t = NOW + skew;
        let header = signature::header(std::slice::from_ref(signer), t, &payload);
        let verifier = Verifier::new(&secrets, 300).unwrap();
        prop_assert!(verifier.verify(Some(header.as_bytes()), &payload, NOW).is_ok());
    }

    /// Changing any single byte of the payload breaks the signature.
    #[test]
    fn any_payload_byte_change_fails(
        secrets in secrets(),
        payload in prop::collection::vec(any::<u8>(), 1..1024),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let header = signature::header(&secrets, NOW, &payload);
        let mut tampered = payload.clone();
        tampered[at.index(payload.len())] ^= flip;
        let verifier = Verifier::new(&secrets, 300).unwrap();
        prop_assert_eq!(
            verifier.verify(Some(header.as_bytes()), &tampered, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    /// Changing the timestamp (even to one still inside the tolerance) breaks the signature.
    #[test]
    fn any_timestamp_change_fails(
        secrets in secrets(),
        payload in prop::collection::vec(any::<u8>(), 0..512),
        delta in prop_oneof![-300i64..0, 1i64..=300],
    ) {
        let sig = signature::sign(&secrets[0], NOW, &payload);
        let forged = format!("t={},v1={sig}", NOW + delta);
        let verifier = Verifier::new(&secrets, 300).unwrap();
        prop_assert_eq!(
            verifier.verify(Some(forged.as_bytes()), &payload, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    /// Changing any single hex digit of the signature breaks it.
    #[test]
    fn any_signature_digit_change_fails(
        secrets in secrets(),
        payload in prop::collection::vec(any::<u8>(), 0..512),
        at in 0usize..64,
        replacement in prop::sample::select(b"0123456789abcdef".to_vec()),
    ) {
        let mut sig = signature::sign(&secrets[0], NOW, &payload).into_bytes();
        prop_assume!(sig[at] != replacement);
        sig[at] = replacement;
        let forged = format!("t={NOW},v1={}", String::from_utf8(sig).unwrap());
        let verifier = Verifier::new(&secrets, 300).unwrap();
        prop_assert_eq!(
            verifier.verify(Some(forged.as_bytes()), &payload, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    /// The header parser never panics, whatever bytes it is given.
    #[test]
    fn header_parser_survives_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_header(&raw);
    }

    /// ... including bytes that look almost like a header.
    #[test]
    fn header_parser_survives_header_like_noise(
        raw in r"(t|v1|v0|x)?=?[0-9a-fA-F\-+ ]{0,80}(,(t|v1|v0)=[0-9a-f\-]{0,70}){0,6},?"
    ) {
        let _ = parse_header(raw.as_bytes());
    }

    /// Verification as a whole never panics on arbitrary header and body bytes.
    #[test]
    fn verify_survives_arbitrary_input(
        header in prop::collection::vec(any::<u8>(), 0..256),
        payload in prop::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
    ) {
        let verifier = Verifier::new(&[WebhookSecret::new("whsec_x")], 300).unwrap();
        let _ = verifier.verify(Some(&header), &payload, now);
    }
}
