//! The storage contract every backend implements.

use async_trait::async_trait;

use crate::StoreError;
use crate::records::*;

/// Whether an upsert created a new object or updated an existing one (ARM answers
/// 201 or 200 accordingly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// A new row was written.
    Created,
    /// An existing row was changed.
    Updated,
}

/// Durable storage. Every method is one transaction: it either happens whole or not at
/// all. Name lookups (resource groups, identities, credentials) are case-insensitive.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads a server-wide setting.
    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Writes a server-wide setting unless one exists; returns the value now stored
    /// (so concurrent bootstraps agree on one winner).
    async fn meta_put_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError>;

    /// Inserts a tenant.
    async fn insert_tenant(&self, t: &TenantRecord) -> Result<(), StoreError>;
    /// All tenants.
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;

    /// Inserts a subscription.
    async fn insert_subscription(&self, s: &SubscriptionRecord) -> Result<(), StoreError>;
    /// All subscriptions.
    async fn list_subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError>;

    /// Creates or updates (location, tags) a resource group; returns the stored row.
    async fn upsert_resource_group(
        &self,
        rg: &ResourceGroupRecord,
    ) -> Result<(ResourceGroupRecord, UpsertOutcome), StoreError>;
    /// One resource group.
    async fn get_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
    ) -> Result<Option<ResourceGroupRecord>, StoreError>;
    /// Resource groups of a subscription, by name.
    async fn list_resource_groups(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<ResourceGroupRecord>, StoreError>;
    /// Deletes a resource group with every identity, credential and vault in it, every
    /// role assignment at or below its scope and every one naming one of its
    /// identities, in one transaction. "At or below" is
    /// [`scope::contains`](crate::scope::contains): by segment, ignoring ASCII case,
    /// never a string prefix (`rg1` leaves `rg10`'s assignments). Returns false if it
    /// did not exist.
    async fn delete_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Creates an identity, or updates location and tags of an existing one with the
    /// same (subscription, group, name), keeping its ids. Fails with
    /// [`StoreError::ParentNotFound`] when the group does not exist.
    async fn upsert_identity(
        &self,
        identity: &IdentityRecord,
    ) -> Result<(IdentityRecord, UpsertOutcome), StoreError>;
    /// One identity.
    async fn get_identity(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<IdentityRecord>, StoreError>;
    /// Identities of a subscription, optionally of one group.
    async fn list_identities(
        &self,
        subscription_id: &str,
        resource_group: Option<&str>,
    ) -> Result<Vec<IdentityRecord>, StoreError>;
    /// Every identity (for the in-memory view).
    async fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError>;
    /// Deletes an identity, its credentials, the role assignments naming it and those
    /// at or below its scope ([`scope::identity`](crate::scope::identity), compared as
    /// for [`Store::delete_resource_group`]), in one transaction.
    async fn delete_identity(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Creates or replaces a federated credential. Serialised per identity: the
    /// parent check, the count limit and the issuer+subject uniqueness rule hold under
    /// concurrent writers.
    async fn upsert_federated_credential(
        &self,
        fc: &FederatedCredentialRecord,
        max_per_identity: Option<u32>,
    ) -> Result<(FederatedCredentialRecord, UpsertOutcome), StoreError>;
    /// One credential.
    async fn get_federated_credential(
        &self,
        identity_principal_id: &str,
        name: &str,
    ) -> Result<Option<FederatedCredentialRecord>, StoreError>;
    /// Credentials of one identity, by name.
    async fn list_federated_credentials(
        &self,
        identity_principal_id: &str,
    ) -> Result<Vec<FederatedCredentialRecord>, StoreError>;
    /// Every credential (for the in-memory view).
    async fn all_federated_credentials(&self)
    -> Result<Vec<FederatedCredentialRecord>, StoreError>;
    /// Deletes one credential.
    async fn delete_federated_credential(
        &self,
        identity_principal_id: &str,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Inserts a service principal.
    async fn insert_service_principal(&self, sp: &ServicePrincipalRecord)
    -> Result<(), StoreError>;
    /// Replaces a service principal's secret hash; false when it does not exist.
    async fn set_service_principal_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, StoreError>;
    /// Every service principal.
    async fn all_service_principals(&self) -> Result<Vec<ServicePrincipalRecord>, StoreError>;

    /// Creates a role assignment. The domain gives its scope in canonical form
    /// ([`scope::canonical`](crate::scope::canonical)); the store keeps it as given.
    /// [`StoreError::Conflict`] when the name is taken or the same principal already
    /// holds the same role at the same scope.
    async fn insert_role_assignment(&self, ra: &RoleAssignmentRecord) -> Result<(), StoreError>;
    /// Every role assignment.
    async fn all_role_assignments(&self) -> Result<Vec<RoleAssignmentRecord>, StoreError>;
    /// The role assignments naming one principal (for refreshing the view by change).
    async fn role_assignments_of(
        &self,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignmentRecord>, StoreError>;
    /// Deletes a role assignment by name; returns the deleted row.
    async fn delete_role_assignment(
        &self,
        name: &str,
    ) -> Result<Option<RoleAssignmentRecord>, StoreError>;

    /// Adds a signing key.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Marks a signing key as retired at `at` (it stays published); an earlier
    /// retirement time is kept, a later one is brought forward.
    async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<(), StoreError>;
    /// Removes signing keys retired before `before` (their tokens have expired).
    async fn delete_signing_keys_retired_before(&self, before: i64) -> Result<u64, StoreError>;
    /// Every signing key.
    async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Creates or replaces a static-JWKS issuer registration.
    async fn upsert_trusted_issuer(
        &self,
        rec: &TrustedIssuerRecord,
    ) -> Result<UpsertOutcome, StoreError>;
    /// Every registration.
    async fn all_trusted_issuers(&self) -> Result<Vec<TrustedIssuerRecord>, StoreError>;
    /// Deletes a registration by name.
    async fn delete_trusted_issuer(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError>;

    /// Appends sign-in records (one transaction).
    async fn insert_signins(&self, records: &[SignInRecord]) -> Result<(), StoreError>;
    /// Queries the sign-in log, newest first.
    async fn query_signins(&self, q: &SignInQuery) -> Result<Vec<SignInRecord>, StoreError>;
    /// Deletes at most `limit` sign-in rows logged before `before` (the retention),
    /// oldest first; returns how many. Callers repeat until fewer than `limit` go, so
    /// no single statement holds the database's writer for long.
    async fn delete_signins_before(&self, before: i64, limit: u32) -> Result<u64, StoreError>;
    /// Deletes at most `limit` of the oldest sign-in rows (by insertion order, all
    /// tenants) beyond the newest `keep`; returns how many were deleted.
    async fn trim_signins(&self, keep: u64, limit: u32) -> Result<u64, StoreError>;

    /// Creates a vault, or updates location and tags of the same vault in the same
    /// group. [`StoreError::Conflict`] when the name is taken elsewhere (names are
    /// global); [`StoreError::ParentNotFound`] without the group.
    async fn upsert_vault(
        &self,
        v: &VaultRecord,
    ) -> Result<(VaultRecord, UpsertOutcome), StoreError>;
    /// One vault by name (any subscription).
    async fn get_vault(&self, name: &str) -> Result<Option<VaultRecord>, StoreError>;
    /// Every vault.
    async fn all_vaults(&self) -> Result<Vec<VaultRecord>, StoreError>;
    /// Deletes a vault, its secrets and the role assignments at or below its scope
    /// ([`scope::vault`](crate::scope::vault), compared as for
    /// [`Store::delete_resource_group`]), in one transaction.
    async fn delete_vault(&self, name: &str) -> Result<bool, StoreError>;

    /// Adds a new version of a secret (creating the secret). [`StoreError::Conflict`]
    /// while the name is soft-deleted; [`StoreError::ParentNotFound`] without the vault.
    async fn add_secret_version(&self, v: &SecretVersionRecord) -> Result<(), StoreError>;
    /// A secret with all its versions, deleted or not.
    async fn get_secret(&self, vault: &str, name: &str)
    -> Result<Option<SecretRecord>, StoreError>;
    /// Every secret of a vault with its versions, by name.
    async fn list_secrets(&self, vault: &str) -> Result<Vec<SecretRecord>, StoreError>;
    /// Replaces a version's metadata (content type, tags, enabled, nbf, exp, updated).
    async fn update_secret_version(&self, v: &SecretVersionRecord) -> Result<bool, StoreError>;
    /// Marks a live secret deleted (soft delete); false when absent or already deleted.
    async fn soft_delete_secret(
        &self,
        vault: &str,
        name: &str,
        at: i64,
        purge_at: i64,
    ) -> Result<bool, StoreError>;
    /// Brings a soft-deleted secret back; false when it is not deleted.
    async fn recover_secret(&self, vault: &str, name: &str) -> Result<bool, StoreError>;
    /// Removes a secret and all its versions for good.
    async fn purge_secret(&self, vault: &str, name: &str) -> Result<bool, StoreError>;
    /// Purges every soft-deleted secret whose purge time has come; returns how many.
    async fn purge_expired_secrets(&self, now: i64) -> Result<u64, StoreError>;

    /// A feed of the changes committed by *other* processes sharing this database
    /// (replicas; a process may also see its own), so the caller can refresh its
    /// in-memory view. `None` when the backend has no other writers (SQLite: one
    /// process). [`Change::Everything`] is sent when changes may have been missed: after
    /// a lost connection is re-established, or when the receiver fell behind.
    async fn change_feed(
        &self,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<crate::Change>>, StoreError>;

    /// Whether the database answers now (a cheap round trip), for health reporting.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Asked by the periodic resync, which skips its full reload on `false`: whether a
    /// change committed by another process may not have reached this store's
    /// [`Store::change_feed`]. The answer compares what the database has counted with
    /// what the feed was told, and lags one call behind (a write still committing is not
    /// a missed one), so a missed change is reported by the second call after it. `true`
    /// also records that the caller reloads now. Always `true` without a change feed
    /// (SQLite, or a feed that is reconnecting).
    async fn may_have_missed_changes(&self) -> Result<bool, StoreError>;
}
