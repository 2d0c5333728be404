use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token says: the user, their session, and when it stops being valid. The token is
/// only honoured while its session is open in Postgres, so it can be ended before `exp`; the
/// role and the cardholders a user may see are read with the session, never from the token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Claims {
    /// The user id.
    sub: String,
    /// The session id.
    sid: String,
    /// Expiry, unix seconds.
    exp: u64,
    /// Issued at, unix seconds.
    iat: u64,
}

/// A verified token: whose it is, which session, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user_id: i64,
    pub(crate) session_id: String,
    /// Unix seconds.
    pub(crate) expires_at: i64,
}

impl Credentials {
    /// Whether the token's own expiry has passed.
    pub(crate) fn expired(&self) -> bool {
        u64::try_from(self.expires_at).map_or(true, |exp| exp <= now())
    }
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

pub(crate) fn now_seconds() -> i64 {
    i64::try_from(now()).unwrap_or(i64::MAX)
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

    /// How long a session (and so its token) lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user_id`'s session `session_id`, valid until `expires_at` (unix seconds).
    pub fn issue(
        &self,
        user_id: i64,
        session_id: &str,
        expires_at: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_owned(),
            iat: now(),
            exp: u64::try_from(expires_at).unwrap_or(0),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// What a valid, unexpired token signed with our secret says. Whether its session is still
    /// open is for [`super::Sessions`] to say.
    pub(crate) fn verify(&self, token: &str) -> Option<Credentials> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        Some(Credentials {
            user_id: claims.sub.parse().ok()?,
            session_id: claims.sid,
            expires_at: i64::try_from(claims.exp).ok()?,
        })
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
        let exp = now_seconds() + 60;
        let token = tokens.issue(42, "s1", exp).unwrap();
        let verified = tokens.verify(&token).unwrap();
        assert_eq!((verified.user_id, verified.session_id.as_str()), (42, "s1"));
        assert!(!verified.expired());
        let other = Tokens::new(
            b"another secret of thirty-two bytes!!!!",
            Duration::from_secs(60),
        );
        assert_eq!(other.verify(&token), None);
        let mut tampered = token.clone();
        tampered.pop();
        assert_eq!(tokens.verify(&tampered), None);
        assert_eq!(tokens.verify("garbage"), None);
        let token = tokens.issue(42, "s1", now_seconds() - 1).unwrap();
        assert_eq!(tokens.verify(&token), None);
    }

    #[test]
    fn the_none_algorithm_is_refused() {
        let tokens = Tokens::new(
            b"a secret of at least thirty-two bytes!!",
            Duration::from_secs(60),
        );
        // {"alg":"none"} . {"sub":"1","sid":"s","exp":9999999999,"iat":0} . (no signature)
        let forged =
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwic2lkIjoicyIsImV4cCI6OTk5OTk5OTk5OSwiaWF0IjowfQ.";
        assert_eq!(tokens.verify(forged), None);
    }
}
