use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token says: the user, and when it stops being valid. The role and the cardholders a
/// user may see are read from the database on each request, so a change applies at once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Issued at, unix seconds.
    pub iat: u64,
}

/// Issues and checks HS256-signed tokens (JWT).
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    /// A token for `user_id`, and its expiry (unix seconds).
    pub fn issue(&self, user_id: i64) -> Result<(String, u64), jsonwebtoken::errors::Error> {
        let iat = now();
        let claims = Claims {
            sub: user_id.to_string(),
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims.exp))
    }

    /// The user id in a valid, unexpired token signed with our secret.
    pub fn verify(&self, token: &str) -> Option<i64> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .and_then(|data| data.claims.sub.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_secret_and_before_expiry() {
        let tokens = Tokens::new(
            b"a secret of at least thirty-two bytes!!",
            Duration::from_secs(60),
        );
        let (token, exp) = tokens.issue(42).unwrap();
        assert!(exp > now());
        assert_eq!(tokens.verify(&token), Some(42));
        let other = Tokens::new(
            b"another secret of thirty-two bytes!!!!",
            Duration::from_secs(60),
        );
        assert_eq!(other.verify(&token), None);
        let mut tampered = token.clone();
        tampered.pop();
        assert_eq!(tokens.verify(&tampered), None);
        assert_eq!(tokens.verify("garbage"), None);
        let expired = Tokens::new(b"a secret of at least thirty-two bytes!!", Duration::ZERO);
        let (token, _) = expired.issue(42).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(expired.verify(&token), None);
    }

    #[test]
    fn the_none_algorithm_is_refused() {
        let tokens = Tokens::new(
            b"a secret of at least thirty-two bytes!!",
            Duration::from_secs(60),
        );
        // {"alg":"none"} . {"sub":"1","exp":9999999999,"iat":0} . (no signature)
        let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5LCJpYXQiOjB9.";
        assert_eq!(tokens.verify(forged), None);
    }
}
