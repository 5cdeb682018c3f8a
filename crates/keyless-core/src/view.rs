//! The in-memory view: everything the token hot path and authorisation read, built
//! from the store and swapped atomically after every write. Readers never lock and
//! never touch the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use keyless_store::{
    FederatedCredentialRecord, IdentityRecord, RoleAssignmentRecord, ServicePrincipalRecord, Store,
    StoreError, SubscriptionRecord,
};

use crate::rbac::Grant;

/// One immutable snapshot.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Tenant ids.
    pub tenants: HashSet<String>,
    /// Subscriptions by id.
    pub subscriptions: HashMap<String, SubscriptionRecord>,
    /// Service principals by client id.
    pub service_principals: HashMap<String, ServicePrincipalRecord>,
    /// Identities by client id.
    pub identities_by_client: HashMap<String, Arc<IdentityRecord>>,
    /// Federated credentials by identity principal id.
    pub credentials: HashMap<String, Vec<FederatedCredentialRecord>>,
    /// Role grants by principal id.
    pub grants: HashMap<String, Vec<Grant>>,
    /// Every role assignment.
    pub assignments: Vec<RoleAssignmentRecord>,
    /// Static-JWKS issuers by (tenant, issuer).
    pub static_issuers: HashMap<(String, String), Arc<crate::federation::issuer_cache::IssuerKeys>>,
    /// Static-JWKS registrations.
    pub trusted_issuers: Vec<keyless_store::TrustedIssuerRecord>,
    /// Vaults by lowercase name (data-plane routing and authorisation).
    pub vaults: HashMap<String, Arc<keyless_store::VaultRecord>>,
    /// Resource groups by (subscription, lowercase name).
    pub resource_groups: HashMap<(String, String), Arc<keyless_store::ResourceGroupRecord>>,
    /// Claims-matching expressions, compiled once per load, by source.
    pub expressions: HashMap<String, Arc<crate::expression::Expression>>,
    /// Identities by (subscription, lowercase group, lowercase name).
    pub identities_by_name: HashMap<(String, String, String), Arc<IdentityRecord>>,
}

impl Snapshot {
    /// Loads a snapshot from the store.
    pub async fn load(store: &dyn Store) -> Result<Snapshot, StoreError> {
        let mut s = Snapshot {
            tenants: store
                .list_tenants()
                .await?
                .into_iter()
                .map(|t| t.id)
                .collect(),
            subscriptions: store
                .list_subscriptions()
                .await?
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect(),
            service_principals: store
                .all_service_principals()
                .await?
                .into_iter()
                .map(|sp| (sp.client_id.clone(), sp))
                .collect(),
            identities_by_client: store
                .all_identities()
                .await?
                .into_iter()
                .map(|i| (i.client_id.clone(), Arc::new(i)))
                .collect(),
            ..Snapshot::default()
        };
        for fc in store.all_federated_credentials().await? {
            if let Some(src) = &fc.expression
                && !s.expressions.contains_key(src)
            {
                match crate::expression::Expression::parse(src) {
                    Ok(e) => {
                        s.expressions.insert(src.clone(), Arc::new(e));
                    }
                    Err(e) => {
                        tracing::error!(credential = %fc.name, error = %e, "stored expression does not compile")
                    }
                }
            }
            s.credentials
                .entry(fc.identity_principal_id.clone())
                .or_default()
                .push(fc);
        }
        s.assignments = store.all_role_assignments().await?;
        s.trusted_issuers = store.all_trusted_issuers().await?;
        for sub in s.subscriptions.keys() {
            for g in store.list_resource_groups(sub).await? {
                s.resource_groups.insert(
                    (g.subscription_id.clone(), g.name.to_ascii_lowercase()),
                    Arc::new(g),
                );
            }
        }
        s.identities_by_name = s
            .identities_by_client
            .values()
            .map(|i| {
                let key = (
                    i.subscription_id.clone(),
                    i.resource_group.to_ascii_lowercase(),
                    i.name.to_ascii_lowercase(),
                );
                (key, i.clone())
            })
            .collect();
        s.vaults = store
            .all_vaults()
            .await?
            .into_iter()
            .map(|v| (v.name.to_ascii_lowercase(), Arc::new(v)))
            .collect();
        for t in &s.trusted_issuers {
            match keyless_jose::JwkSet::parse(t.jwks.as_bytes(), 100) {
                Ok(set) => {
                    let keys =
                        crate::federation::issuer_cache::IssuerKeys::from_static(&t.issuer, &set);
                    s.static_issuers
                        .insert((t.tenant_id.clone(), t.issuer.clone()), Arc::new(keys));
                }
                Err(e) => {
                    tracing::error!(issuer = %t.issuer, error = %e, "stored static JWKS is invalid")
                }
            }
        }
        for a in &s.assignments {
            let role_id = a
                .role_definition_id
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            s.grants
                .entry(a.principal_id.clone())
                .or_default()
                .push(Grant {
                    scope: a.scope.clone(),
                    role_id,
                });
        }
        Ok(s)
    }

    /// The tenant a subscription belongs to.
    pub fn subscription_tenant(&self, subscription: &str) -> Option<&str> {
        self.subscriptions
            .get(&subscription.to_ascii_lowercase())
            .map(|s| s.tenant_id.as_str())
    }

    /// A resource group (name compared case-insensitively).
    pub fn resource_group(
        &self,
        subscription: &str,
        name: &str,
    ) -> Option<&Arc<keyless_store::ResourceGroupRecord>> {
        self.resource_groups
            .get(&(subscription.to_string(), name.to_ascii_lowercase()))
    }

    /// An identity by group and name (case-insensitive).
    pub fn identity(
        &self,
        subscription: &str,
        group: &str,
        name: &str,
    ) -> Option<&Arc<IdentityRecord>> {
        self.identities_by_name.get(&(
            subscription.to_string(),
            group.to_ascii_lowercase(),
            name.to_ascii_lowercase(),
        ))
    }

    /// Grants held by a principal.
    pub fn grants_of(&self, principal: &str) -> &[Grant] {
        self.grants.get(principal).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The swappable view.
#[derive(Debug)]
pub struct View {
    current: ArcSwap<Snapshot>,
    // Serialises reloads so an older load never replaces a newer one.
    reload: tokio::sync::Mutex<()>,
}

impl View {
    /// A view over an initial snapshot.
    pub fn new(initial: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// The current snapshot (cheap; lock-free).
    pub fn get(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Rebuilds the snapshot from the store.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let _guard = self.reload.lock().await;
        let fresh = Snapshot::load(store).await?;
        self.current.store(Arc::new(fresh));
        Ok(())
    }
}
