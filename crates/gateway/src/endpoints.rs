//! Which of Stripe's webhook endpoints signed an event, and whether the event belongs to it.
//!
//! A Stripe Connect platform has two endpoints, each with its own signing secrets: the account
//! endpoint gets the platform's own events, which carry no `account`; the Connect endpoint
//! gets connected accounts' events, each with `"account": "acct_…"` at the top level. An
//! event signed with one endpoint's secret but shaped like the other's is refused: a
//! connected account's event must not pass as the platform's, nor the other way round.

use cardstream_stripe::{SignatureError, Verifier, WebhookSecret};

use crate::error::WebhookError;
use crate::{EndpointSecrets, Error};

/// The endpoint whose secret signed an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The account endpoint: the platform's own events.
    Account,
    /// A Connect endpoint: connected accounts' events.
    Connect,
}

/// One verifier per endpoint that has secrets; swapped whole when a secrets file changes.
#[derive(Debug)]
pub struct Verifiers {
    account: Option<Verifier>,
    connect: Option<Verifier>,
}

impl Verifiers {
    /// At least one endpoint must have a secret.
    pub fn new(secrets: &EndpointSecrets, tolerance_secs: u64) -> Result<Self, Error> {
        let build = |secrets: &[WebhookSecret]| {
            (!secrets.is_empty())
                .then(|| Verifier::new(secrets, tolerance_secs))
                .transpose()
        };
        let verifiers = Verifiers {
            account: build(&secrets.account)?,
            connect: build(&secrets.connect)?,
        };
        if verifiers.account.is_none() && verifiers.connect.is_none() {
            return Err(Error::NoSecrets);
        }
        Ok(verifiers)
    }

    /// Verifies `payload` as [`Verifier::verify`] does, and says whose secret signed it.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        payload: &[u8],
        now: i64,
    ) -> Result<Endpoint, SignatureError> {
        if let Some(account) = &self.account {
            match account.verify(header, payload, now) {
                Ok(_) => return Ok(Endpoint::Account),
                // Not the account endpoint's: perhaps the Connect endpoint's.
                Err(SignatureError::NoMatch) if self.connect.is_some() => {}
                Err(err) => return Err(err),
            }
        }
        match &self.connect {
            Some(connect) => connect
                .verify(header, payload, now)
                .map(|_| Endpoint::Connect),
            None => Err(SignatureError::NoMatch),
        }
    }
}

/// Refuses an event that does not belong to the endpoint that signed it. `account` is the
/// event's top-level `account` as the envelope's parse read it (`null` and absent alike are
/// none, as Stripe's libraries read them; a value that is no string fails that parse).
pub(crate) fn check(endpoint: Endpoint, account: Option<&str>) -> Result<(), WebhookError> {
    match (endpoint, account) {
        (Endpoint::Account, None) => Ok(()),
        (Endpoint::Account, Some(id)) => Err(WebhookError::AccountEventWithAccount(shown(id))),
        (Endpoint::Connect, None) => Err(WebhookError::ConnectEventWithoutAccount),
        (Endpoint::Connect, Some(id)) if is_account_id(id) => Ok(()),
        (Endpoint::Connect, Some(id)) => Err(WebhookError::ConnectEventBadAccount(shown(id))),
    }
}

/// `acct_` and letters and digits, as Stripe's account ids are.
fn is_account_id(id: &str) -> bool {
    id.strip_prefix("acct_")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The value, quoted and cut short, for an error message.
fn shown(id: &str) -> String {
    const MOST: usize = 64;
    let mut cut: String = id.chars().take(MOST).collect();
    if cut.len() < id.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardstream_stripe::Event;

    /// The account of `body` as the gateway reads it, checked against `endpoint`.
    fn code(endpoint: Endpoint, body: &str) -> Option<&'static str> {
        let result = Event::parse(body.as_bytes())
            .map_err(WebhookError::from)
            .and_then(|event| check(endpoint, event.account.as_deref()));
        result.err().map(|e| e.code())
    }

    fn event(account: &str) -> String {
        format!(
            r#"{{"id":"evt_1","object":"event","type":"issuing_card.updated","created":1,{account}"data":{{"object":{{"id":"ic_1","account":"acct_nested"}}}}}}"#
        )
    }

    #[test]
    fn only_the_top_level_account_counts() {
        let platform = event("");
        assert_eq!(code(Endpoint::Account, &platform), None);
        assert_eq!(
            code(Endpoint::Connect, &platform),
            Some("connect_event_without_account")
        );
        let connected = event(r#""account":"acct_1032D82eZvKYlo2C","#);
        assert_eq!(code(Endpoint::Connect, &connected), None);
        assert_eq!(
            code(Endpoint::Account, &connected),
            Some("account_event_with_account")
        );
    }

    #[test]
    fn a_null_account_is_none_and_anything_but_an_account_id_is_refused() {
        let null = event(r#""account":null,"#);
        assert_eq!(code(Endpoint::Account, &null), None);
        assert_eq!(
            code(Endpoint::Connect, &null),
            Some("connect_event_without_account")
        );
        for account in [r#""""#, r#""acct_""#, r#""cus_1""#, r#""acct_1 ""#] {
            let body = event(&format!(r#""account":{account},"#));
            assert_eq!(
                code(Endpoint::Connect, &body),
                Some("connect_event_bad_account"),
                "{body}"
            );
            assert_eq!(
                code(Endpoint::Account, &body),
                Some("account_event_with_account"),
                "{body}"
            );
        }
        // Not a string at all: not a Stripe event.
        let number = event(r#""account":12,"#);
        assert_eq!(code(Endpoint::Account, &number), Some("not_a_stripe_event"));
    }

    #[test]
    fn an_account_key_written_with_escapes_is_still_found() {
        let body = event(r#""\u0061ccount":"acct_1","#);
        assert_eq!(code(Endpoint::Connect, &body), None);
        assert_eq!(
            code(Endpoint::Account, &body),
            Some("account_event_with_account")
        );
    }

    #[test]
    fn a_repeated_account_is_refused_rather_than_one_of_them_believed() {
        let body = event(r#""account":"acct_1","account":"acct_2","#);
        assert_eq!(code(Endpoint::Connect, &body), Some("not_a_stripe_event"));
    }

    #[test]
    fn messages_cut_long_values_short() {
        let long = format!("acct_{}", "x".repeat(10_000));
        let err = check(Endpoint::Account, Some(&long)).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn each_endpoint_verifies_with_its_own_secrets() {
        let (account, connect) = (
            WebhookSecret::new("whsec_account"),
            WebhookSecret::new("whsec_connect"),
        );
        let both = Verifiers::new(
            &EndpointSecrets {
                account: vec![account.clone()],
                connect: vec![connect.clone()],
            },
            300,
        )
        .unwrap();
        let header = |secret: &WebhookSecret| {
            cardstream_stripe::signature::header(std::slice::from_ref(secret), 1000, b"x")
        };
        let verify = |v: &Verifiers, h: &str, now| v.verify(Some(h.as_bytes()), b"x", now);
        assert_eq!(
            verify(&both, &header(&account), 1000),
            Ok(Endpoint::Account)
        );
        assert_eq!(
            verify(&both, &header(&connect), 1000),
            Ok(Endpoint::Connect)
        );
        let other = WebhookSecret::new("whsec_other");
        assert_eq!(
            verify(&both, &header(&other), 1000),
            Err(SignatureError::NoMatch)
        );
        // A Connect signature past the tolerance is late, not unknown.
        assert_eq!(
            verify(&both, &header(&connect), 2000).unwrap_err().code(),
            "timestamp_outside_tolerance"
        );
        let connect_only = Verifiers::new(
            &EndpointSecrets {
                account: vec![],
                connect: vec![connect.clone()],
            },
            300,
        )
        .unwrap();
        assert_eq!(
            verify(&connect_only, &header(&connect), 1000),
            Ok(Endpoint::Connect)
        );
        assert_eq!(
            verify(&connect_only, &header(&account), 1000),
            Err(SignatureError::NoMatch)
        );
        assert!(
            Verifiers::new(
                &EndpointSecrets {
                    account: vec![],
                    connect: vec![]
                },
                300
            )
            .is_err()
        );
    }
}
