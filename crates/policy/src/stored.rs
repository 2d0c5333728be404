//! The policy an admin saved in the dashboard, as Postgres keeps it: a [`Policy`] as JSON.
//!
//! The store hands the row over as raw JSON and knows nothing of policies; the API (which
//! shows and saves it) and the gateway (which follows it) read and write it only here, so a
//! row one accepts is a row the other accepts too.

use serde::Deserialize;

use crate::{Error, Policy};

/// A saved policy, parsed and validated, with its version (which grows by one per save).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub version: i64,
    pub policy: Policy,
    /// Who saved it, if recorded.
    pub updated_by: Option<String>,
}

impl StoredPolicy {
    /// The saved row `json` of `version` as a policy, refused ([`Error::Stored`]) when it is not
    /// one or breaks a rule of [`Policy::validate`]: the gateway then keeps the policy in force
    /// rather than apply something it cannot read.
    pub fn parse(
        version: i64,
        json: &serde_json::Value,
        updated_by: Option<String>,
    ) -> Result<StoredPolicy, Error> {
        let refused = |message: String| Error::Stored { version, message };
        let policy = Policy::deserialize(json).map_err(|e| refused(e.to_string()))?;
        policy.validate().map_err(|e| match e {
            Error::Invalid(message) => refused(message),
            other => refused(other.to_string()),
        })?;
        Ok(StoredPolicy {
            version,
            policy,
            updated_by,
        })
    }

    /// What an admin is shown of the saved row: the policy as saved when it reads as one (the
    /// default when it does not even deserialize), and, when [`StoredPolicy::parse`] refuses
    /// it, why. The editor must still open on a refused row, so that the admin sees what is
    /// wrong and can save a policy over it; the gateway meanwhile keeps the one in force.
    pub fn shown(
        version: i64,
        json: &serde_json::Value,
        updated_by: Option<String>,
    ) -> (StoredPolicy, Option<String>) {
        match Self::parse(version, json, updated_by.clone()) {
            Ok(stored) => (stored, None),
            Err(refused) => {
                let policy = Policy::deserialize(json).unwrap_or_default();
                let reason = match refused {
                    Error::Stored { message, .. } => message,
                    other => other.to_string(),
                };
                let stored = StoredPolicy {
                    version,
                    policy,
                    updated_by,
                };
                (stored, Some(reason))
            }
        }
    }

    /// `policy` as the JSON to save, which [`StoredPolicy::parse`] reads back.
    pub fn encode(policy: &Policy) -> Result<serde_json::Value, Error> {
        serde_json::to_value(policy).map_err(|e| Error::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use cardstream_stripe::Currency;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_saved_policy_reads_back_as_saved() {
        let policy = Policy::from_toml(
            "allowed_currencies = [\"usd\"]\nblocked_categories = [\"bakeries\"]\n[daily_limit]\nusd = 100000\n",
        )
        .unwrap();
        let json = StoredPolicy::encode(&policy).unwrap();
        let stored = StoredPolicy::parse(4, &json, Some("admin@example.com".into())).unwrap();
        assert_eq!(stored.version, 4);
        assert_eq!(stored.policy, policy);
        assert_eq!(stored.updated_by.as_deref(), Some("admin@example.com"));
        assert_eq!(stored.policy.daily_limit[&Currency::USD], 100_000);
        // The empty policy is one an admin may save on purpose.
        assert_eq!(
            StoredPolicy::parse(1, &json!({}), None).unwrap().policy,
            Policy::default()
        );
    }

    #[test]
    fn a_refused_row_is_shown_as_saved_with_the_reason() {
        let json = json!({"blocked_categories": ["gambling"]});
        let (shown, refused) = StoredPolicy::shown(3, &json, Some("psql".into()));
        assert_eq!(shown.version, 3);
        assert!(shown.policy.blocked_categories.contains("gambling"));
        assert_eq!(
            refused.as_deref(),
            Some("blocked_categories has names that are not Stripe merchant categories: gambling")
        );
        // Not a policy at all: the default, so that the editor opens, and the reason.
        let (shown, refused) = StoredPolicy::shown(4, &json!({"daily_limit": "lots"}), None);
        assert_eq!(shown.policy, Policy::default());
        assert!(refused.is_some());
        let (_, refused) = StoredPolicy::shown(5, &json!({}), None);
        assert_eq!(refused, None);
    }

    #[test]
    fn a_bad_row_is_refused_with_its_version_and_what_is_wrong() {
        for (json, expected) in [
            // Not a Stripe category: it would block nothing.
            (
                json!({"blocked_categories": ["gambling"]}),
                "not Stripe merchant categories: gambling",
            ),
            (
                json!({"max_amount": {"usd": -1}}),
                "max_amount for usd is -1",
            ),
            (json!({"allowed_currency": ["usd"]}), "allowed_currency"),
            (json!({"allowed_currencies": ["dollars"]}), "dollars"),
            (json!(["not", "an", "object"]), "sequence"),
        ] {
            let err = StoredPolicy::parse(7, &json, None).unwrap_err().to_string();
            assert!(err.contains("version 7"), "{json}: {err}");
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
