//! Vaults as management resources.

use keyless_store::Change;
use keyless_store::{UpsertOutcome, VaultRecord};
use serde_json::{Map, Value};

use crate::error::ManagementError;
use crate::keyless::Keyless;
use crate::names::printable;
use crate::tokens::Caller;

const READ: &str = "Microsoft.KeyVault/vaults/read";
const WRITE: &str = "Microsoft.KeyVault/vaults/write";
const DELETE: &str = "Microsoft.KeyVault/vaults/delete";

/// Vault names: 3–24 characters, letters, digits and single hyphens, starting with a
/// letter and ending with a letter or digit (they become DNS labels).
pub fn check_vault_name(name: &str) -> Result<(), ManagementError> {
    let ok = (3..=24).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(ManagementError::bad_request(
            "VaultNameNotValid",
            format!(
                "The vault name '{}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.",
                printable(name)
            ),
        ))
    }
}

/// A vault PUT's settable fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VaultInput {
    /// Region.
    pub location: Option<String>,
    /// Tags.
    pub tags: Option<Map<String, Value>>,
    /// Soft-delete retention (7-90 days; default 90).
    pub soft_delete_days: Option<i64>,
}

/// The resource id of a vault.
pub fn vault_id(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}")
}

pub(crate) fn vault_not_found(rg: &str, name: &str) -> ManagementError {
    ManagementError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.KeyVault/vaults/{}' under resource group '{}' was not found.",
            printable(name),
            printable(rg)
        ),
    )
}

impl Keyless {
    /// Creates or updates a vault (RBAC permission model, soft delete on).
    pub async fn put_vault(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        name: &str,
        input: VaultInput,
    ) -> Result<(VaultRecord, UpsertOutcome), ManagementError> {
        let VaultInput {
            location,
            tags,
            soft_delete_days,
        } = input;
        let location = location.as_deref();
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_vault_name(name)?;
        self.authorize(caller, &vault_id(&sub, rg, name), WRITE)?;
        let group = self.existing_group(&sub, rg).await?;
        let days = soft_delete_days.unwrap_or(90);
        if !(7..=90).contains(&days) {
            return Err(ManagementError::bad_request(
                "BadRequest",
                "softDeleteRetentionInDays must be between 7 and 90.",
            ));
        }
        let rec = VaultRecord {
            name: name.to_string(),
            subscription_id: sub,
            resource_group: group.name,
            tenant_id: caller.tenant_id.clone(),
            location: crate::management::check_location(location)?,
            tags: crate::management::check_tags(tags)?,
            soft_delete_days: days,
            purge_protection: false,
            created_at: self.now(),
        };
        let out = self.store.upsert_vault(&rec).await.map_err(|e| match e {
            keyless_store::StoreError::Conflict(_) => ManagementError::conflict(
                "VaultAlreadyExists",
                format!("The vault name '{name}' is already in use. Vault names are global; choose another."),
            ),
            other => other.into(),
        })?;
        let change = Change::Vault {
            name: out.0.name.clone(),
        };
        self.applied(change, out).await
    }

    /// Reads a vault of a group.
    pub async fn get_vault(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        name: &str,
    ) -> Result<VaultRecord, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_vault_name(name)?;
        self.authorize(caller, &vault_id(&sub, rg, name), READ)?;
        self.group_in_view(&sub, rg)?;
        match self.vault_by_name(name) {
            Some(v) if v.subscription_id == sub && v.resource_group.eq_ignore_ascii_case(rg) => {
                Ok((*v).clone())
            }
            _ => Err(vault_not_found(rg, name)),
        }
    }

    /// Lists vaults of a subscription or a group.
    pub async fn list_vaults(
        &self,
        caller: &Caller,
        sub: &str,
        rg: Option<&str>,
    ) -> Result<Vec<VaultRecord>, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        let mut all: Vec<VaultRecord> = self
            .snapshot()
            .vaults
            .values()
            .filter(|v| {
                v.subscription_id == sub
                    && rg.is_none_or(|g| v.resource_group.eq_ignore_ascii_case(g))
            })
            .filter(|v| self.can(caller, &vault_id(&sub, &v.resource_group, &v.name), READ))
            .map(|v| (**v).clone())
            .collect();
        all.sort_by_key(|v| v.name.to_ascii_lowercase());
        if let Some(rg) = rg {
            // Authorization before existence: a caller who may not read the group and
            // sees none of its vaults gets 403 whether or not the group exists; only
            // one who may read it learns that it does not.
            let group_scope = crate::ids::resource_group_id(&sub, rg);
            if all.is_empty() {
                self.authorize(caller, &group_scope, READ)?;
            }
            self.group_in_view(&sub, rg)?;
        }
        Ok(all)
    }

    /// Deletes a vault with its secrets and the role assignments on it.
    pub async fn delete_vault(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        name: &str,
    ) -> Result<bool, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_vault_name(name)?;
        self.authorize(caller, &vault_id(&sub, rg, name), DELETE)?;
        self.existing_group(&sub, rg).await?;
        match self.store.get_vault(name).await? {
            Some(v) if v.subscription_id == sub && v.resource_group.eq_ignore_ascii_case(rg) => {
                let deleted = self.store.delete_vault(name).await?;
                // Takes its secrets and the role assignments on it along.
                self.applied(Change::Everything, deleted).await
            }
            _ => Ok(false),
        }
    }
}
