//! Applying one [`Change`] to a snapshot: read the changed key back from the store and
//! replace what the snapshot holds for it.
//!
//! Reading back (rather than taking the new value from the writer) makes every refresh
//! idempotent and order-independent: two writers of one key may apply their changes in
//! either order, the later read sees the later commit.

use std::collections::BTreeSet;
use std::sync::Arc;

use keyless_store::{Change, Store, StoreError};

use super::{PrincipalRoles, Snapshot, name_key, release_expression, use_expression};

impl Snapshot {
    /// Brings the key `change` names up to date with the store. Kinds the snapshot does
    /// not hold ([`Change::Secrets`], [`Change::SigningKeys`]) and
    /// [`Change::Everything`] (the caller's to handle: a full load) change nothing.
    pub async fn refresh(&mut self, store: &dyn Store, change: &Change) -> Result<(), StoreError> {
        match change {
            Change::Identity {
                subscription_id,
                resource_group,
                name,
            } => {
                self.refresh_identity(store, subscription_id, resource_group, name)
                    .await
            }
            Change::Credentials {
                identity_principal_id,
            } => {
                self.refresh_credentials(store, identity_principal_id)
                    .await?;
                // The identity's roles too: a credential write re-checks them right after
                // (the escalation rule), and must see an assignment committed before it
                // even if that assignment's own change has not been applied yet.
                self.refresh_roles(store, identity_principal_id).await
            }
            Change::RoleAssignments { principal_id } => {
                self.refresh_roles(store, principal_id).await
            }
            Change::ResourceGroup {
                subscription_id,
                name,
            } => {
                match store.get_resource_group(subscription_id, name).await? {
                    Some(g) => {
                        let key = (g.subscription_id.clone(), g.name.to_ascii_lowercase());
                        self.resource_groups.insert(key, Arc::new(g));
                    }
                    None => {
                        self.resource_groups
                            .remove(&(subscription_id.clone(), name.to_ascii_lowercase()));
                    }
                }
                Ok(())
            }
            Change::Vault { name } => {
                match store.get_vault(name).await? {
                    Some(v) => {
                        self.vaults.insert(v.name.to_ascii_lowercase(), Arc::new(v));
                    }
                    None => {
                        self.vaults.remove(&name.to_ascii_lowercase());
                    }
                }
                Ok(())
            }
            Change::Secrets | Change::SigningKeys | Change::Everything => Ok(()),
        }
    }

    async fn refresh_identity(
        &mut self,
        store: &dyn Store,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let key = super::identity_key(subscription_id, resource_group, name);
        let held = self.identities_by_name.get(key.as_str()).cloned();
        let stored = store
            .get_identity(subscription_id, resource_group, name)
            .await?;
        if let Some(old) = held
            && stored.as_ref().map(|s| &s.principal_id) != Some(&old.principal_id)
        {
            // Deleted (or deleted and created again under new ids). The store took its
            // credentials, the assignments naming it and those at or below its scope
            // along: do the same here, reading each affected principal's assignments back.
            self.identities_by_name.remove(key.as_str());
            self.identities_by_client.remove(old.client_id.as_str());
            self.refresh_credentials(store, &old.principal_id).await?;
            let scope = keyless_store::scope::identity(
                &old.subscription_id,
                &old.resource_group,
                &old.name,
            );
            let mut affected: BTreeSet<String> = self
                .assignments
                .values()
                .filter(|a| keyless_store::scope::contains(&scope, &a.scope))
                .map(|a| a.principal_id.clone())
                .collect();
            affected.insert(old.principal_id.clone());
            for principal in affected {
                self.refresh_roles(store, &principal).await?;
            }
        }
        if let Some(new) = stored {
            let new = Arc::new(new);
            self.identities_by_client
                .insert(Arc::from(new.client_id.as_str()), new.clone());
            self.identities_by_name.insert(name_key(&new), new);
        }
        Ok(())
    }

    async fn refresh_credentials(
        &mut self,
        store: &dyn Store,
        principal_id: &str,
    ) -> Result<(), StoreError> {
        let list = store.list_federated_credentials(principal_id).await?;
        // New uses first, so an expression the principal keeps is never dropped and
        // compiled again.
        for fc in &list {
            if let Some(src) = &fc.expression {
                use_expression(
                    &mut self.expressions,
                    &mut self.expression_uses,
                    src,
                    &fc.name,
                );
            }
        }
        if let Some(old) = self.credentials.get(principal_id).cloned() {
            for src in old.iter().filter_map(|fc| fc.expression.as_deref()) {
                release_expression(&mut self.expressions, &mut self.expression_uses, src);
            }
        }
        if list.is_empty() {
            self.credentials.remove(principal_id);
        } else {
            self.credentials
                .insert(Arc::from(principal_id), Arc::new(list));
        }
        Ok(())
    }

    async fn refresh_roles(
        &mut self,
        store: &dyn Store,
        principal_id: &str,
    ) -> Result<(), StoreError> {
        let fresh = store.role_assignments_of(principal_id).await?;
        if let Some(old) = self.roles.get(principal_id).cloned() {
            for a in &old.assignments {
                self.assignments.remove(&a.name.to_ascii_lowercase());
            }
        }
        if fresh.is_empty() {
            self.roles.remove(principal_id);
            return Ok(());
        }
        let fresh: Vec<_> = fresh.into_iter().map(Arc::new).collect();
        for a in &fresh {
            self.assignments
                .insert(a.name.to_ascii_lowercase(), a.clone());
        }
        self.roles.insert(
            principal_id.to_string(),
            Arc::new(PrincipalRoles::new(fresh)),
        );
        Ok(())
    }
}
