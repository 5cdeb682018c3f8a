//! The in-memory view: everything the token hot path and authorisation read, built
//! from the store and swapped atomically after every write. Readers never lock and
//! never touch the database.
//!
//! A write does not rebuild the view: it applies one [`Change`] (see [`View::apply`]),
//! which reads just the changed key back from the store and swaps in a copy of the
//! snapshot that shares everything else with the previous one (the large maps are
//! [`ShardedMap`]s: copying one costs a pointer, changing a key copies one shard). The
//! design note is `docs/design/incremental-view.md`.

mod refresh;
mod sharded;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use keyless_store::{
    Change, FederatedCredentialRecord, IdentityRecord, RoleAssignmentRecord,
    ServicePrincipalRecord, Store, StoreError, SubscriptionRecord,
};

pub use sharded::{SHARDS, ShardedMap};

use crate::rbac::Grant;

/// Compiled claims-matching expressions by source.
pub type Expressions = ShardedMap<String, Arc<crate::expression::Expression>>;

/// The role assignments naming one principal, and the grants they make.
#[derive(Debug, Clone, Default)]
pub struct PrincipalRoles {
    /// The assignments, oldest first.
    pub assignments: Vec<Arc<RoleAssignmentRecord>>,
    /// What they grant, in the same order.
    pub grants: Vec<Grant>,
}

impl PrincipalRoles {
    fn new(assignments: Vec<Arc<RoleAssignmentRecord>>) -> Self {
        let grants = assignments
            .iter()
            .map(|a| Grant {
                scope: a.scope.clone(),
                role_id: a
                    .role_definition_id
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect();
        Self {
            assignments,
            grants,
        }
    }
}

/// One immutable snapshot. Cloning one is cheap (reference counts); the small, rarely
/// written parts are shared whole, the large ones shard by shard.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Tenant ids.
    pub tenants: Arc<HashSet<String>>,
    /// Subscriptions by id.
    pub subscriptions: Arc<HashMap<String, SubscriptionRecord>>,
    /// Service principals by client id.
    pub service_principals: Arc<HashMap<String, ServicePrincipalRecord>>,
    /// Identities by client id. (Keys of the large maps are `Arc<str>`: copying a
    /// shard to change one entry then copies no string.)
    pub identities_by_client: ShardedMap<Arc<str>, Arc<IdentityRecord>>,
    /// Federated credentials by identity principal id (ordered by name).
    pub credentials: ShardedMap<Arc<str>, Arc<Vec<FederatedCredentialRecord>>>,
    /// Role assignments and grants by principal id.
    pub roles: ShardedMap<String, Arc<PrincipalRoles>>,
    /// Every role assignment, by (lowercase) name.
    pub assignments: ShardedMap<String, Arc<RoleAssignmentRecord>>,
    /// Static-JWKS issuers by (tenant, issuer).
    pub static_issuers:
        Arc<HashMap<(String, String), Arc<crate::federation::issuer_cache::IssuerKeys>>>,
    /// Static-JWKS registrations.
    pub trusted_issuers: Arc<Vec<keyless_store::TrustedIssuerRecord>>,
    /// Vaults by lowercase name (data-plane routing and authorisation).
    pub vaults: ShardedMap<String, Arc<keyless_store::VaultRecord>>,
    /// Resource groups by (subscription, lowercase name).
    pub resource_groups: ShardedMap<(String, String), Arc<keyless_store::ResourceGroupRecord>>,
    /// Claims-matching expressions by source, compiled when loaded or first used; an
    /// expression goes with the last credential using it (full reloads are rare now, so
    /// the map must not only grow between them).
    pub expressions: Expressions,
    /// How many credentials use each expression in [`Snapshot::expressions`].
    pub expression_uses: ShardedMap<String, usize>,
    /// Identities by [`identity_key`] (subscription, lowercase group, lowercase name).
    pub identities_by_name: ShardedMap<Arc<str>, Arc<IdentityRecord>>,
}

/// The key of [`Snapshot::identities_by_name`]: `subscription/group/name`, group and
/// name lowercase (none of the three contains a `/`).
pub fn identity_key(subscription: &str, group: &str, name: &str) -> String {
    format!(
        "{subscription}/{}/{}",
        group.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    )
}

fn name_key(i: &IdentityRecord) -> Arc<str> {
    identity_key(&i.subscription_id, &i.resource_group, &i.name).into()
}

/// Counts one more credential using expression `src`, compiling it on its first use (a
/// stored expression that does not compile is logged and left out: its credential then
/// matches nothing).
fn use_expression(
    compiled: &mut Expressions,
    uses: &mut ShardedMap<String, usize>,
    src: &str,
    credential: &str,
) {
    let n = uses.get(src).copied().unwrap_or(0);
    uses.insert(src.to_string(), n + 1);
    if n > 0 {
        return;
    }
    match crate::expression::Expression::parse(src) {
        Ok(e) => {
            compiled.insert(src.to_string(), Arc::new(e));
        }
        Err(e) => {
            tracing::error!(credential = %credential, error = %e, "stored expression does not compile")
        }
    }
}

/// Counts one credential fewer using expression `src`; the last one drops it.
fn release_expression(compiled: &mut Expressions, uses: &mut ShardedMap<String, usize>, src: &str) {
    match uses.get(src).copied() {
        Some(n) if n > 1 => {
            uses.insert(src.to_string(), n - 1);
        }
        _ => {
            uses.remove(src);
            compiled.remove(src);
        }
    }
}

/// Everything a [`Snapshot`] is built from, as the store returned it.
struct Rows {
    tenants: Vec<keyless_store::TenantRecord>,
    subscriptions: Vec<SubscriptionRecord>,
    service_principals: Vec<ServicePrincipalRecord>,
    identities: Vec<IdentityRecord>,
    credentials: Vec<FederatedCredentialRecord>,
    role_assignments: Vec<RoleAssignmentRecord>,
    trusted_issuers: Vec<keyless_store::TrustedIssuerRecord>,
    resource_groups: Vec<keyless_store::ResourceGroupRecord>,
    vaults: Vec<keyless_store::VaultRecord>,
}

impl Rows {
    async fn fetch(store: &dyn Store) -> Result<Rows, StoreError> {
        let tenants = store.list_tenants().await?;
        let subscriptions = store.list_subscriptions().await?;
        let service_principals = store.all_service_principals().await?;
        let identities = store.all_identities().await?;
        let credentials = store.all_federated_credentials().await?;
        let role_assignments = store.all_role_assignments().await?;
        let trusted_issuers = store.all_trusted_issuers().await?;
        let mut resource_groups = Vec::new();
        for sub in &subscriptions {
            resource_groups.extend(store.list_resource_groups(&sub.id).await?);
        }
        let vaults = store.all_vaults().await?;
        Ok(Rows {
            tenants,
            subscriptions,
            service_principals,
            identities,
            credentials,
            role_assignments,
            trusted_issuers,
            resource_groups,
            vaults,
        })
    }

    fn build(self) -> Snapshot {
        let tenants = self.tenants.into_iter().map(|t| t.id).collect();
        let subscriptions: HashMap<String, SubscriptionRecord> = self
            .subscriptions
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let service_principals = self
            .service_principals
            .into_iter()
            .map(|sp| (sp.client_id.clone(), sp))
            .collect();
        let identities: Vec<Arc<IdentityRecord>> =
            self.identities.into_iter().map(Arc::new).collect();
        let identities_by_client = identities
            .iter()
            .map(|i| (Arc::from(i.client_id.as_str()), i.clone()))
            .collect();
        let identities_by_name = identities
            .iter()
            .map(|i| (name_key(i), i.clone()))
            .collect();
        drop(identities);

        let mut expressions = Expressions::default();
        let mut expression_uses = ShardedMap::default();
        let mut by_identity: HashMap<String, Vec<FederatedCredentialRecord>> = HashMap::new();
        for fc in self.credentials {
            if let Some(src) = &fc.expression {
                use_expression(&mut expressions, &mut expression_uses, src, &fc.name);
            }
            by_identity
                .entry(fc.identity_principal_id.clone())
                .or_default()
                .push(fc);
        }
        let credentials = by_identity
            .into_iter()
            .map(|(k, v)| (Arc::from(k), Arc::new(v)))
            .collect();

        let mut by_principal: HashMap<String, Vec<Arc<RoleAssignmentRecord>>> = HashMap::new();
        let mut assignments = Vec::new();
        for a in self.role_assignments {
            let a = Arc::new(a);
            by_principal
                .entry(a.principal_id.clone())
                .or_default()
                .push(a.clone());
            assignments.push((a.name.to_ascii_lowercase(), a));
        }
        let roles = by_principal
            .into_iter()
            .map(|(k, v)| (k, Arc::new(PrincipalRoles::new(v))))
            .collect();

        let mut static_issuers = HashMap::new();
        for t in &self.trusted_issuers {
            match keyless_jose::JwkSet::parse(t.jwks.as_bytes(), 100) {
                Ok(set) => {
                    let keys =
                        crate::federation::issuer_cache::IssuerKeys::from_static(&t.issuer, &set);
                    static_issuers.insert((t.tenant_id.clone(), t.issuer.clone()), Arc::new(keys));
                }
                Err(e) => {
                    tracing::error!(issuer = %t.issuer, error = %e, "stored static JWKS is invalid")
                }
            }
        }
        let resource_groups = self
            .resource_groups
            .into_iter()
            .map(|g| {
                (
                    (g.subscription_id.clone(), g.name.to_ascii_lowercase()),
                    Arc::new(g),
                )
            })
            .collect();
        let vaults = self
            .vaults
            .into_iter()
            .map(|v| (v.name.to_ascii_lowercase(), Arc::new(v)))
            .collect();
        Snapshot {
            tenants: Arc::new(tenants),
            subscriptions: Arc::new(subscriptions),
            service_principals: Arc::new(service_principals),
            identities_by_client,
            credentials,
            roles,
            assignments: assignments.into_iter().collect(),
            static_issuers: Arc::new(static_issuers),
            trusted_issuers: Arc::new(self.trusted_issuers),
            vaults,
            resource_groups,
            expressions,
            expression_uses,
            identities_by_name,
        }
    }
}

impl Snapshot {
    /// Loads a snapshot from the store: one query per table (resource groups: one per
    /// subscription), then the maps built on a blocking thread.
    pub async fn load(store: &dyn Store) -> Result<Snapshot, StoreError> {
        let rows = Rows::fetch(store).await?;
        // Building the maps of a large tenant is a long stretch of CPU with nothing to
        // await (a few hundred milliseconds at 100,000 identities): on a blocking thread,
        // the async workers keep serving exchanges and applying the change feed
        // meanwhile.
        tokio::task::spawn_blocking(move || rows.build())
            .await
            .map_err(|e| StoreError::Database(keyless_store::DatabaseError::new(e)))
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
        self.identities_by_name
            .get(identity_key(subscription, group, name).as_str())
    }

    /// Grants held by a principal.
    pub fn grants_of(&self, principal: &str) -> &[Grant] {
        self.roles
            .get(principal)
            .map(|r| r.grants.as_slice())
            .unwrap_or(&[])
    }

    /// A role assignment by name (case-insensitive).
    pub fn assignment(&self, name: &str) -> Option<&Arc<RoleAssignmentRecord>> {
        self.assignments.get(&name.to_ascii_lowercase())
    }
}

/// Rounds of catching up, without the lock, with the changes applied while a full
/// reload loaded, before the last one under it (bounded: writes may never pause).
const CATCH_UP_ROUNDS: usize = 4;

/// Applies `changes` (each key once) to `snapshot`, read again from the store.
async fn refresh_all(
    snapshot: &mut Snapshot,
    store: &dyn Store,
    changes: Vec<Change>,
) -> Result<(), StoreError> {
    let changes: HashSet<Change> = changes.into_iter().collect();
    for change in &changes {
        snapshot.refresh(store, change).await?;
    }
    Ok(())
}

/// The swappable view.
#[derive(Debug)]
pub struct View {
    current: ArcSwap<Snapshot>,
    // Serialises changes to `current`, so two writers never both start from the same
    // snapshot and one of them lose its change. While a full reload is loading, the
    // changes applied meanwhile are recorded here (`Some`), to be applied again on top of
    // the fresh load before it is swapped in.
    changes: tokio::sync::Mutex<Option<Vec<Change>>>,
    // Serialises full reloads.
    reload: tokio::sync::Mutex<()>,
    // Full reloads and applied changes so far (reported in `/metrics`).
    reloads: AtomicU64,
    applied: AtomicU64,
}

impl View {
    /// A view over an initial snapshot.
    pub fn new(initial: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
            changes: tokio::sync::Mutex::new(None),
            reload: tokio::sync::Mutex::new(()),
            reloads: AtomicU64::new(0),
            applied: AtomicU64::new(0),
        }
    }

    /// Full reloads so far.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Changes applied by key so far.
    pub fn changes_applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// The current snapshot (cheap; lock-free).
    pub fn get(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Rebuilds the snapshot from the store.
    ///
    /// The load itself holds no lock writers wait on: changes applied while it runs are
    /// recorded and applied again (read again from the store) on top of the fresh load
    /// before it replaces the current snapshot, so a reload never undoes a change that
    /// committed while it was loading, and a large reload does not stall writes.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        self.reload_with(store, Snapshot::load(store)).await
    }

    /// [`View::reload`] with the load given as a (not yet started) future, so a test
    /// can hold it between reading and swapping.
    pub async fn reload_with(
        &self,
        store: &dyn Store,
        load: impl std::future::Future<Output = Result<Snapshot, StoreError>>,
    ) -> Result<(), StoreError> {
        let _one_at_a_time = self.reload.lock().await;
        *self.changes.lock().await = Some(Vec::new());
        let mut fresh = match load.await {
            Ok(fresh) => fresh,
            Err(e) => {
                *self.changes.lock().await = None;
                return Err(e);
            }
        };
        // Catch up with the changes applied meanwhile. Reading them back takes a query
        // each, so the first rounds run without the lock (changes keep being applied
        // to the current snapshot, and recorded for the next round); only the last
        // round, with what is left, holds it up to the swap.
        let mut changes = self.changes.lock().await;
        for _ in 0..CATCH_UP_ROUNDS {
            let missed = changes.replace(Vec::new()).unwrap_or_default();
            if missed.is_empty() {
                break;
            }
            drop(changes);
            let refreshed = refresh_all(&mut fresh, store, missed).await;
            changes = self.changes.lock().await;
            if let Err(e) = refreshed {
                *changes = None;
                return Err(e);
            }
        }
        let missed = changes.take().unwrap_or_default();
        refresh_all(&mut fresh, store, missed).await?;
        let previous = self.current.swap(Arc::new(fresh));
        // Freeing a large snapshot (when this held its last reference) is CPU work too.
        drop(tokio::task::spawn_blocking(move || drop(previous)));
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Applies one committed change: reads the changed key back from the store and
    /// swaps in a snapshot that differs from the current one in that key only.
    /// [`Change::Everything`] reloads the whole view; [`Change::Secrets`] and
    /// [`Change::SigningKeys`] are not part of it and change nothing here.
    pub async fn apply(&self, store: &dyn Store, change: &Change) -> Result<(), StoreError> {
        if *change == Change::Everything {
            return self.reload(store).await;
        }
        if matches!(change, Change::Secrets | Change::SigningKeys) {
            return Ok(());
        }
        let mut changes = self.changes.lock().await;
        let mut next = Snapshot::clone(&self.current.load());
        next.refresh(store, change).await?;
        self.current.store(Arc::new(next));
        self.applied.fetch_add(1, Ordering::Relaxed);
        if let Some(recorded) = changes.as_mut() {
            recorded.push(change.clone());
        }
        Ok(())
    }
}
