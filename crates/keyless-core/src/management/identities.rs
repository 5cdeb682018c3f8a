//! User-assigned managed identities.

use keyless_store::Change;
use keyless_store::{IdentityRecord, UpsertOutcome};
use serde_json::{Map, Value};

use super::groups::{check_location, check_tags};
use crate::error::ManagementError;
use crate::ids::{identity_id, resource_group_id};
use crate::keyless::{Keyless, new_guid};
use crate::names::{check_identity_name, printable};
use crate::tokens::Caller;

const READ: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/read";
const WRITE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/write";
const DELETE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/delete";

pub(crate) fn identity_not_found(rg: &str, name: &str) -> ManagementError {
    ManagementError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/{}' under resource group '{}' was not found.",
            printable(name),
            printable(rg)
        ),
    )
}

impl Keyless {
    /// An identity from the in-memory view (read paths), or 404 for it or its group.
    pub(crate) fn identity_in_view(
        &self,
        sub: &str,
        rg: &str,
        name: &str,
    ) -> Result<std::sync::Arc<IdentityRecord>, ManagementError> {
        self.group_in_view(sub, rg)?;
        self.snapshot()
            .identity(sub, rg, name)
            .cloned()
            .ok_or_else(|| identity_not_found(rg, name))
    }

    /// Creates an identity (server-generated client and principal ids) or updates its
    /// location and tags.
    pub async fn put_identity(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        name: &str,
        location: Option<&str>,
        tags: Option<Map<String, Value>>,
    ) -> Result<(IdentityRecord, UpsertOutcome), ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_identity_name(name)?;
        self.authorize(caller, &identity_id(&sub, rg, name), WRITE)?;
        let group = self.existing_group(&sub, rg).await?;
        let internal = |_| {
            ManagementError::new(
                crate::error::ErrorKind::Internal,
                "InternalServerError",
                "random generator failed",
            )
        };
        let rec = IdentityRecord {
            subscription_id: sub,
            resource_group: group.name,
            name: name.to_string(),
            location: check_location(location)?,
            tags: check_tags(tags)?,
            tenant_id: caller.tenant_id.clone(),
            principal_id: new_guid().map_err(internal)?,
            client_id: new_guid().map_err(internal)?,
            created_at: self.now(),
        };
        let out = self.store.upsert_identity(&rec).await?;
        let change = Change::Identity {
            subscription_id: out.0.subscription_id.clone(),
            resource_group: out.0.resource_group.clone(),
            name: out.0.name.clone(),
        };
        self.applied(change, out).await
    }

    /// Reads an identity.
    pub async fn get_identity(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        name: &str,
    ) -> Result<IdentityRecord, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_identity_name(name)?;
        self.authorize(caller, &identity_id(&sub, rg, name), READ)?;
        Ok((*self.identity_in_view(&sub, rg, name)?).clone())
    }

    /// Lists identities of a subscription or of one group.
    pub async fn list_identities(
        &self,
        caller: &Caller,
        sub: &str,
        rg: Option<&str>,
    ) -> Result<Vec<IdentityRecord>, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        if let Some(rg) = rg {
            // Authorization before existence: a caller without rights learns nothing
            // about which groups exist.
            self.authorize(caller, &resource_group_id(&sub, rg), READ)?;
            self.group_in_view(&sub, rg)?;
        }
        let mut all: Vec<IdentityRecord> = self
            .snapshot()
            .identities_by_name
            .values()
            .filter(|i| {
                i.subscription_id == sub
                    && rg.is_none_or(|g| i.resource_group.eq_ignore_ascii_case(g))
            })
            .map(|i| (**i).clone())
            .collect();
        all.sort_by_key(|i| {
            (
                i.resource_group.to_ascii_lowercase(),
                i.name.to_ascii_lowercase(),
            )
        });
        Ok(all
            .into_iter()
            .filter(|i| self.can(caller, &identity_id(&sub, &i.resource_group, &i.name), READ))
            .collect())
    }

    /// Deletes an identity with its credentials and role assignments.
    pub async fn delete_identity(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        name: &str,
    ) -> Result<bool, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_identity_name(name)?;
        self.authorize(caller, &identity_id(&sub, rg, name), DELETE)?;
        self.existing_group(&sub, rg).await?;
        let deleted = self.store.delete_identity(&sub, rg, name).await?;
        let change = Change::Identity {
            subscription_id: sub,
            resource_group: rg.to_string(),
            name: name.to_string(),
        };
        self.applied(change, deleted).await
    }
}
