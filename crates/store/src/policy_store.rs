//! The authorization policy as admins edit it, stored in Postgres.
//!
//! The store keeps it as JSON and does not read it: `cardstream_policy::StoredPolicy` parses
//! and validates it, the same way for the API and the gateway.

use sea_orm::{ConnectionTrait, EntityTrait, Set, TransactionTrait};

use crate::audit::audit_in_orm;
use crate::entities::authorization_policy;
use crate::{Error, Store};

/// The saved policy as stored, and its version (which grows by one per save).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    pub version: i64,
    pub policy: serde_json::Value,
    pub updated_by: Option<String>,
}

impl Store {
    /// The policy an admin saved, if one ever was.
    pub async fn stored_policy(&self) -> Result<Option<PolicyRow>, Error> {
        Ok(authorization_policy::Entity::find_by_id(1i16)
            .one(self.orm())
            .await
            .map_err(Error::Orm)?
            .map(|m| PolicyRow {
                version: m.version,
                policy: m.policy,
                updated_by: m.updated_by,
            }))
    }

    /// Saves a new version. With `expected_version`, refuses ([`Error::Conflict`]) when the
    /// stored version is another: someone saved meanwhile. Returns the new version.
    pub async fn save_policy(
        &self,
        expected_version: Option<i64>,
        policy: serde_json::Value,
        by: &str,
    ) -> Result<i64, Error> {
        let tx = self.orm().begin().await.map_err(Error::Orm)?;
        // Serialise saves: the row may not exist yet, so lock something that does.
        tx.execute_unprepared("LOCK TABLE authorization_policy IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(Error::Orm)?;
        let current = authorization_policy::Entity::find_by_id(1i16)
            .one(&tx)
            .await
            .map_err(Error::Orm)?;
        let current_version = current.as_ref().map_or(0, |c| c.version);
        if let Some(expected) = expected_version
            && expected != current_version
        {
            return Err(Error::Conflict(format!(
                "the policy is at version {current_version}, not {expected}: reload it and edit again"
            )));
        }
        let next = current_version + 1;
        let details = serde_json::json!({
            "from": current.as_ref().map(|c| c.policy.clone()),
            "to": policy.clone(),
        });
        audit_in_orm(
            &tx,
            by,
            "policy.updated",
            &format!("version {next}"),
            details,
        )
        .await?;
        let row = authorization_policy::ActiveModel {
            id: Set(1),
            version: Set(next),
            policy: Set(policy),
            updated_by: Set(Some(by.to_owned())),
        };
        authorization_policy::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(authorization_policy::Column::Id)
                    .update_columns([
                        authorization_policy::Column::Version,
                        authorization_policy::Column::Policy,
                        authorization_policy::Column::UpdatedBy,
                    ])
                    .to_owned(),
            )
            .exec(&tx)
            .await
            .map_err(Error::Orm)?;
        tx.commit().await.map_err(Error::Orm)?;
        Ok(next)
    }
}
