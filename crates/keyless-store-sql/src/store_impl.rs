//! `impl Store` for a backend, written once for both: every method forwards to the
//! function of the same name in the backend's aggregate module (`tenancy`, `identities`,
//! `credentials`, `issuers`, `rbac`, `keys`, `signins`, `vaults`, `secrets`; `ping`,
//! `change_feed` and `may_have_missed_changes` in the backend's root) and turns the
//! crate's error into a [`StoreError`](keyless_store::StoreError). Keeping the trait impl to forwarding lines
//! lets each aggregate live in a module of its own, and the two backends expose the same
//! module layout.

/// Implements [`keyless_store::Store`] for `$store`; expand it in the backend's root module.
macro_rules! impl_store {
    ($store:ty) => {
        crate::store_impl::forward! {
            $store;
            tenancy::meta_get(key: &str) -> Option<String>;
            tenancy::meta_put_if_absent(key: &str, value: &str) -> String;
            tenancy::insert_tenant(t: &keyless_store::TenantRecord) -> ();
            tenancy::list_tenants() -> Vec<keyless_store::TenantRecord>;
            tenancy::insert_subscription(s: &keyless_store::SubscriptionRecord) -> ();
            tenancy::list_subscriptions() -> Vec<keyless_store::SubscriptionRecord>;
            tenancy::upsert_resource_group(rg: &keyless_store::ResourceGroupRecord) -> (keyless_store::ResourceGroupRecord, keyless_store::UpsertOutcome);
            tenancy::get_resource_group(subscription_id: &str, name: &str) -> Option<keyless_store::ResourceGroupRecord>;
            tenancy::list_resource_groups(subscription_id: &str) -> Vec<keyless_store::ResourceGroupRecord>;
            tenancy::delete_resource_group(subscription_id: &str, name: &str) -> bool;
            identities::upsert_identity(identity: &keyless_store::IdentityRecord) -> (keyless_store::IdentityRecord, keyless_store::UpsertOutcome);
            identities::get_identity(subscription_id: &str, resource_group: &str, name: &str) -> Option<keyless_store::IdentityRecord>;
            identities::list_identities(subscription_id: &str, resource_group: Option<&str>) -> Vec<keyless_store::IdentityRecord>;
            identities::all_identities() -> Vec<keyless_store::IdentityRecord>;
            identities::delete_identity(subscription_id: &str, resource_group: &str, name: &str) -> bool;
            credentials::upsert_federated_credential(fc: &keyless_store::FederatedCredentialRecord, max_per_identity: Option<u32>) -> (keyless_store::FederatedCredentialRecord, keyless_store::UpsertOutcome);
            credentials::get_federated_credential(identity_principal_id: &str, name: &str) -> Option<keyless_store::FederatedCredentialRecord>;
            credentials::list_federated_credentials(identity_principal_id: &str) -> Vec<keyless_store::FederatedCredentialRecord>;
            credentials::all_federated_credentials() -> Vec<keyless_store::FederatedCredentialRecord>;
            credentials::delete_federated_credential(identity_principal_id: &str, name: &str) -> bool;
            identities::insert_service_principal(sp: &keyless_store::ServicePrincipalRecord) -> ();
            identities::set_service_principal_secret(client_id: &str, secret_hash: &str) -> bool;
            identities::all_service_principals() -> Vec<keyless_store::ServicePrincipalRecord>;
            rbac::insert_role_assignment(ra: &keyless_store::RoleAssignmentRecord) -> ();
            rbac::all_role_assignments() -> Vec<keyless_store::RoleAssignmentRecord>;
            rbac::role_assignments_of(principal_id: &str) -> Vec<keyless_store::RoleAssignmentRecord>;
            rbac::delete_role_assignment(name: &str) -> Option<keyless_store::RoleAssignmentRecord>;
            keys::insert_signing_key(key: &keyless_store::SigningKeyRecord) -> ();
            keys::retire_signing_key(kid: &str, at: i64) -> ();
            keys::delete_signing_keys_retired_before(before: i64) -> u64;
            keys::all_signing_keys() -> Vec<keyless_store::SigningKeyRecord>;
            issuers::upsert_trusted_issuer(rec: &keyless_store::TrustedIssuerRecord) -> keyless_store::UpsertOutcome;
            issuers::all_trusted_issuers() -> Vec<keyless_store::TrustedIssuerRecord>;
            issuers::delete_trusted_issuer(tenant_id: &str, name: &str) -> bool;
            signins::insert_signins(records: &[keyless_store::SignInRecord]) -> ();
            signins::query_signins(q: &keyless_store::SignInQuery) -> Vec<keyless_store::SignInRecord>;
            signins::delete_signins_before(before: i64, limit: u32) -> u64;
            signins::trim_signins(keep: u64, limit: u32) -> u64;
            vaults::upsert_vault(v: &keyless_store::VaultRecord) -> (keyless_store::VaultRecord, keyless_store::UpsertOutcome);
            vaults::get_vault(name: &str) -> Option<keyless_store::VaultRecord>;
            vaults::all_vaults() -> Vec<keyless_store::VaultRecord>;
            vaults::delete_vault(name: &str) -> bool;
            secrets::add_secret_version(v: &keyless_store::SecretVersionRecord) -> ();
            secrets::get_secret(vault: &str, name: &str) -> Option<keyless_store::SecretRecord>;
            secrets::list_secrets(vault: &str) -> Vec<keyless_store::SecretRecord>;
            secrets::update_secret_version(v: &keyless_store::SecretVersionRecord) -> bool;
            secrets::soft_delete_secret(vault: &str, name: &str, at: i64, purge_at: i64) -> bool;
            secrets::recover_secret(vault: &str, name: &str) -> bool;
            secrets::purge_secret(vault: &str, name: &str) -> bool;
            secrets::purge_expired_secrets(now: i64) -> u64;
        }
    };
}

/// The forwarding itself: `module::method(args) -> T;` becomes
/// `async fn method(&self, args) -> Result<T, StoreError>` calling `module::method(self,
/// args)`; `change_feed`, `ping` and `may_have_missed_changes` live in the backend's root
/// module.
macro_rules! forward {
    ($store:ty; $($module:ident :: $name:ident ($($arg:ident : $argty:ty),*) -> $ret:ty;)*) => {
        #[async_trait::async_trait]
        impl keyless_store::Store for $store {
            $(
                async fn $name(&self, $($arg: $argty),*) -> Result<$ret, keyless_store::StoreError> {
                    $module::$name(self, $($arg),*).await.map_err(Into::into)
                }
            )*

            async fn change_feed(
                &self,
            ) -> Result<Option<tokio::sync::mpsc::Receiver<keyless_store::Change>>, keyless_store::StoreError> {
                change_feed(self).await.map_err(Into::into)
            }

            async fn ping(&self) -> Result<(), keyless_store::StoreError> {
                ping(self).await.map_err(Into::into)
            }

            async fn may_have_missed_changes(&self) -> Result<bool, keyless_store::StoreError> {
                may_have_missed_changes(self).await.map_err(Into::into)
            }
        }
    };
}

pub(crate) use {forward, impl_store};
