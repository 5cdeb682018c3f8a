//! Resource groups.

use keyless_store::Change;
use std::sync::Arc;

use keyless_store::{ResourceGroupRecord, UpsertOutcome};
use serde_json::{Map, Value};

use super::group_not_found;
use crate::error::ManagementError;
use crate::ids::resource_group_id;
use crate::keyless::Keyless;
use crate::names::check_resource_group_name;
use crate::tokens::Caller;

pub(crate) fn check_location(location: Option<&str>) -> Result<String, ManagementError> {
    match location.map(str::trim) {
        Some(l)
            if !l.is_empty()
                && l.len() <= 64
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-') =>
        {
            Ok(l.to_string())
        }
        Some(l) if !l.is_empty() => Err(ManagementError::bad_request(
            "LocationNotAvailableForResourceGroup",
            format!(
                "The location '{}' is invalid: use letters, digits, spaces or '-'.",
                crate::names::printable(l)
            ),
        )),
        _ => Err(ManagementError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        )),
    }
}

pub(crate) fn check_tags(
    tags: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, ManagementError> {
    let tags = tags.unwrap_or_default();
    if tags.len() > 50 {
        return Err(ManagementError::bad_request(
            "InvalidTag",
            "At most 50 tags are allowed.",
        ));
    }
    for (k, v) in &tags {
        let ok = !k.is_empty()
            && k.len() <= 512
            && !crate::names::has_control(k)
            && v.as_str()
                .is_some_and(|s| s.len() <= 256 && !crate::names::has_control(s));
        if !ok {
            return Err(ManagementError::bad_request(
                "InvalidTag",
                format!(
                    "Tag '{}' is invalid: names are 1-512 characters and values are strings of at most 256 characters.",
                    crate::names::printable(k)
                ),
            ));
        }
    }
    Ok(tags)
}

impl Keyless {
    /// Creates or updates a resource group.
    pub async fn put_resource_group(
        &self,
        caller: &Caller,
        sub: &str,
        name: &str,
        location: Option<&str>,
        tags: Option<Map<String, Value>>,
    ) -> Result<(ResourceGroupRecord, UpsertOutcome), ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_resource_group_name(name)?;
        self.authorize(
            caller,
            &resource_group_id(&sub, name),
            "Microsoft.Resources/subscriptions/resourceGroups/write",
        )?;
        let rec = ResourceGroupRecord {
            subscription_id: sub,
            name: name.to_string(),
            location: check_location(location)?,
            tags: check_tags(tags)?,
            created_at: self.now(),
        };
        let out = self.store.upsert_resource_group(&rec).await?;
        let change = Change::ResourceGroup {
            subscription_id: out.0.subscription_id.clone(),
            name: out.0.name.clone(),
        };
        self.applied(change, out).await
    }

    /// Reads a resource group.
    pub async fn get_resource_group(
        &self,
        caller: &Caller,
        sub: &str,
        name: &str,
    ) -> Result<ResourceGroupRecord, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_resource_group_name(name)?;
        self.authorize(
            caller,
            &resource_group_id(&sub, name),
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        )?;
        self.snapshot()
            .resource_group(&sub, name)
            .map(|g| (**g).clone())
            .ok_or_else(|| group_not_found(name))
    }

    /// Lists the resource groups of a subscription.
    pub async fn list_resource_groups(
        &self,
        caller: &Caller,
        sub: &str,
    ) -> Result<Vec<ResourceGroupRecord>, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        // Served from the in-memory view: no database round trip, and still answered
        // while the database is briefly unreachable.
        let mut all: Vec<ResourceGroupRecord> = self
            .snapshot()
            .resource_groups
            .values()
            .filter(|g| g.subscription_id == sub)
            .map(|g| (**g).clone())
            .collect();
        all.sort_by_key(|g| g.name.to_ascii_lowercase());
        Ok(all
            .into_iter()
            .filter(|g| {
                self.can(
                    caller,
                    &resource_group_id(&sub, &g.name),
                    "Microsoft.Resources/subscriptions/resourceGroups/read",
                )
            })
            .collect())
    }

    /// Deletes a resource group and everything in it. `Ok(false)` when it did not exist.
    pub async fn delete_resource_group(
        &self,
        caller: &Caller,
        sub: &str,
        name: &str,
    ) -> Result<bool, ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        check_resource_group_name(name)?;
        self.authorize(
            caller,
            &resource_group_id(&sub, name),
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
        )?;
        let deleted = self.store.delete_resource_group(&sub, name).await?;
        // Rare, and it takes identities, credentials, vaults and role assignments along.
        self.applied(Change::Everything, deleted).await
    }

    /// Resolves a group the caller can see, or 404.
    /// A group from the in-memory view (read paths), or 404.
    pub(crate) fn group_in_view(
        &self,
        sub: &str,
        name: &str,
    ) -> Result<Arc<ResourceGroupRecord>, ManagementError> {
        check_resource_group_name(name)?;
        self.snapshot()
            .resource_group(sub, name)
            .cloned()
            .ok_or_else(|| group_not_found(name))
    }

    /// A group from the store (write paths: the authoritative answer).
    pub(crate) async fn existing_group(
        &self,
        sub: &str,
        name: &str,
    ) -> Result<ResourceGroupRecord, ManagementError> {
        check_resource_group_name(name)?;
        self.store
            .get_resource_group(sub, name)
            .await?
            .ok_or_else(|| group_not_found(name))
    }
}
