//! `impl Store` for a backend, written once for both: every method forwards to the
//! function of the same name in the backend's aggregate module (`tenancy`, `identities`,
//! `credentials`, `issuers`, `rbac`, `keys`, `signins`, `vaults`, `secrets`; `ping` and
//! `change_feed` in the backend's root) and turns the crate's error into a
//! [`StoreError`](keyless_store::StoreError). Keeping the trait impl to forwarding lines
//! lets each aggregate live in a module of its own, and the two backends expose the same
//! module layout.

/// Implements [`keyless_store::Store`] for `$store`; expand it in the backend's root module.
macro_rules! impl_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl keyless_store::Store for $store {
            async fn meta_get(
                &self,
                key: &str,
            ) -> Result<Option<String>, keyless_store::StoreError> {
                tenancy::meta_get(self, key).await.map_err(Into::into)
            }

            async fn meta_put_if_absent(
                &self,
                key: &str,
                value: &str,
            ) -> Result<String, keyless_store::StoreError> {
                tenancy::meta_put_if_absent(self, key, value)
                    .await
                    .map_err(Into::into)
            }

            async fn insert_tenant(
                &self,
                t: &keyless_store::TenantRecord,
            ) -> Result<(), keyless_store::StoreError> {
                tenancy::insert_tenant(self, t).await.map_err(Into::into)
            }

            async fn list_tenants(
                &self,
            ) -> Result<Vec<keyless_store::TenantRecord>, keyless_store::StoreError> {
                tenancy::list_tenants(self).await.map_err(Into::into)
            }

            async fn insert_subscription(
                &self,
                s: &keyless_store::SubscriptionRecord,
            ) -> Result<(), keyless_store::StoreError> {
                tenancy::insert_subscription(self, s)
                    .await
                    .map_err(Into::into)
            }

            async fn list_subscriptions(
                &self,
            ) -> Result<Vec<keyless_store::SubscriptionRecord>, keyless_store::StoreError> {
                tenancy::list_subscriptions(self).await.map_err(Into::into)
            }

            async fn upsert_resource_group(
                &self,
                rg: &keyless_store::ResourceGroupRecord,
            ) -> Result<
                (
                    keyless_store::ResourceGroupRecord,
                    keyless_store::UpsertOutcome,
                ),
                keyless_store::StoreError,
            > {
                tenancy::upsert_resource_group(self, rg)
                    .await
                    .map_err(Into::into)
            }

            async fn get_resource_group(
                &self,
                subscription_id: &str,
                name: &str,
            ) -> Result<Option<keyless_store::ResourceGroupRecord>, keyless_store::StoreError> {
                tenancy::get_resource_group(self, subscription_id, name)
                    .await
                    .map_err(Into::into)
            }

            async fn list_resource_groups(
                &self,
                subscription_id: &str,
            ) -> Result<Vec<keyless_store::ResourceGroupRecord>, keyless_store::StoreError> {
                tenancy::list_resource_groups(self, subscription_id)
                    .await
                    .map_err(Into::into)
            }

            async fn delete_resource_group(
                &self,
                subscription_id: &str,
                name: &str,
            ) -> Result<bool, keyless_store::StoreError> {
                tenancy::delete_resource_group(self, subscription_id, name)
                    .await
                    .map_err(Into::into)
            }

            async fn upsert_identity(
                &self,
                identity: &keyless_store::IdentityRecord,
            ) -> Result<
                (keyless_store::IdentityRecord, keyless_store::UpsertOutcome),
                keyless_store::StoreError,
            > {
                identities::upsert_identity(self, identity)
                    .await
                    .map_err(Into::into)
            }

            async fn get_identity(
                &self,
                subscription_id: &str,
                resource_group: &str,
                name: &str,
            ) -> Result<Option<keyless_store::IdentityRecord>, keyless_store::StoreError> {
                identities::get_identity(self, subscription_id, resource_group, name)
                    .await
                    .map_err(Into::into)
            }

            async fn list_identities(
                &self,
                subscription_id: &str,
                resource_group: Option<&str>,
            ) -> Result<Vec<keyless_store::IdentityRecord>, keyless_store::StoreError> {
                identities::list_identities(self, subscription_id, resource_group)
                    .await
                    .map_err(Into::into)
            }

            async fn all_identities(
                &self,
            ) -> Result<Vec<keyless_store::IdentityRecord>, keyless_store::StoreError> {
                identities::all_identities(self).await.map_err(Into::into)
            }

            async fn delete_identity(
                &self,
                subscription_id: &str,
                resource_group: &str,
                name: &str,
            ) -> Result<bool, keyless_store::StoreError> {
                identities::delete_identity(self, subscription_id, resource_group, name)
                    .await
                    .map_err(Into::into)
            }

            async fn upsert_federated_credential(
                &self,
                fc: &keyless_store::FederatedCredentialRecord,
                max_per_identity: Option<u32>,
            ) -> Result<
                (
                    keyless_store::FederatedCredentialRecord,
                    keyless_store::UpsertOutcome,
                ),
                keyless_store::StoreError,
            > {
                credentials::upsert_federated_credential(self, fc, max_per_identity)
                    .await
                    .map_err(Into::into)
            }

            async fn get_federated_credential(
                &self,
                identity_principal_id: &str,
                name: &str,
            ) -> Result<Option<keyless_store::FederatedCredentialRecord>, keyless_store::StoreError>
            {
                credentials::get_federated_credential(self, identity_principal_id, name)
                    .await
                    .map_err(Into::into)
            }

            async fn list_federated_credentials(
                &self,
                identity_principal_id: &str,
            ) -> Result<Vec<keyless_store::FederatedCredentialRecord>, keyless_store::StoreError>
            {
                credentials::list_federated_credentials(self, identity_principal_id)
                    .await
                    .map_err(Into::into)
            }

            async fn all_federated_credentials(
                &self,
            ) -> Result<Vec<keyless_store::FederatedCredentialRecord>, keyless_store::StoreError>
            {
                credentials::all_federated_credentials(self)
                    .await
                    .map_err(Into::into)
            }

            async fn delete_federated_credential(
                &self,
                identity_principal_id: &str,
                name: &str,
            ) -> Result<bool, keyless_store::StoreError> {
                credentials::delete_federated_credential(self, identity_principal_id, name)
                    .await
                    .map_err(Into::into)
            }

            async fn insert_service_principal(
                &self,
                sp: &keyless_store::ServicePrincipalRecord,
            ) -> Result<(), keyless_store::StoreError> {
                identities::insert_service_principal(self, sp)
                    .await
                    .map_err(Into::into)
            }

            async fn set_service_principal_secret(
                &self,
                client_id: &str,
                secret_hash: &str,
            ) -> Result<bool, keyless_store::StoreError> {
                identities::set_service_principal_secret(self, client_id, secret_hash)
                    .await
                    .map_err(Into::into)
            }

            async fn all_service_principals(
                &self,
            ) -> Result<Vec<keyless_store::ServicePrincipalRecord>, keyless_store::StoreError> {
                identities::all_service_principals(self)
                    .await
                    .map_err(Into::into)
            }

            async fn insert_role_assignment(
                &self,
                ra: &keyless_store::RoleAssignmentRecord,
            ) -> Result<(), keyless_store::StoreError> {
                rbac::insert_role_assignment(self, ra)
                    .await
                    .map_err(Into::into)
            }

            async fn all_role_assignments(
                &self,
            ) -> Result<Vec<keyless_store::RoleAssignmentRecord>, keyless_store::StoreError> {
                rbac::all_role_assignments(self).await.map_err(Into::into)
            }

            async fn delete_role_assignment(
                &self,
                name: &str,
            ) -> Result<Option<keyless_store::RoleAssignmentRecord>, keyless_store::StoreError>
            {
                rbac::delete_role_assignment(self, name)
                    .await
                    .map_err(Into::into)
            }

            async fn insert_signing_key(
                &self,
                key: &keyless_store::SigningKeyRecord,
            ) -> Result<(), keyless_store::StoreError> {
                keys::insert_signing_key(self, key)
                    .await
                    .map_err(Into::into)
            }

            async fn retire_signing_key(
                &self,
                kid: &str,
                at: i64,
            ) -> Result<(), keyless_store::StoreError> {
                keys::retire_signing_key(self, kid, at)
                    .await
                    .map_err(Into::into)
            }

            async fn delete_signing_keys_retired_before(
                &self,
                before: i64,
            ) -> Result<u64, keyless_store::StoreError> {
                keys::delete_signing_keys_retired_before(self, before)
                    .await
                    .map_err(Into::into)
            }

            async fn all_signing_keys(
                &self,
            ) -> Result<Vec<keyless_store::SigningKeyRecord>, keyless_store::StoreError> {
                keys::all_signing_keys(self).await.map_err(Into::into)
            }

            async fn upsert_trusted_issuer(
                &self,
                rec: &keyless_store::TrustedIssuerRecord,
            ) -> Result<keyless_store::UpsertOutcome, keyless_store::StoreError> {
                issuers::upsert_trusted_issuer(self, rec)
                    .await
                    .map_err(Into::into)
            }

            async fn all_trusted_issuers(
                &self,
            ) -> Result<Vec<keyless_store::TrustedIssuerRecord>, keyless_store::StoreError> {
                issuers::all_trusted_issuers(self).await.map_err(Into::into)
            }

            async fn delete_trusted_issuer(
                &self,
                tenant_id: &str,
                name: &str,
            ) -> Result<bool, keyless_store::StoreError> {
                issuers::delete_trusted_issuer(self, tenant_id, name)
                    .await
                    .map_err(Into::into)
            }

            async fn insert_signins(
                &self,
                records: &[keyless_store::SignInRecord],
            ) -> Result<(), keyless_store::StoreError> {
                signins::insert_signins(self, records)
                    .await
                    .map_err(Into::into)
            }

            async fn query_signins(
                &self,
                q: &keyless_store::SignInQuery,
            ) -> Result<Vec<keyless_store::SignInRecord>, keyless_store::StoreError> {
                signins::query_signins(self, q).await.map_err(Into::into)
            }

            async fn upsert_vault(
                &self,
                v: &keyless_store::VaultRecord,
            ) -> Result<
                (keyless_store::VaultRecord, keyless_store::UpsertOutcome),
                keyless_store::StoreError,
            > {
                vaults::upsert_vault(self, v).await.map_err(Into::into)
            }

            async fn get_vault(
                &self,
                name: &str,
            ) -> Result<Option<keyless_store::VaultRecord>, keyless_store::StoreError> {
                vaults::get_vault(self, name).await.map_err(Into::into)
            }

            async fn all_vaults(
                &self,
            ) -> Result<Vec<keyless_store::VaultRecord>, keyless_store::StoreError> {
                vaults::all_vaults(self).await.map_err(Into::into)
            }

            async fn delete_vault(&self, name: &str) -> Result<bool, keyless_store::StoreError> {
                vaults::delete_vault(self, name).await.map_err(Into::into)
            }

            async fn add_secret_version(
                &self,
                v: &keyless_store::SecretVersionRecord,
            ) -> Result<(), keyless_store::StoreError> {
                secrets::add_secret_version(self, v)
                    .await
                    .map_err(Into::into)
            }

            async fn get_secret(
                &self,
                vault: &str,
                name: &str,
            ) -> Result<Option<keyless_store::SecretRecord>, keyless_store::StoreError> {
                secrets::get_secret(self, vault, name)
                    .await
                    .map_err(Into::into)
            }

            async fn list_secrets(
                &self,
                vault: &str,
            ) -> Result<Vec<keyless_store::SecretRecord>, keyless_store::StoreError> {
                secrets::list_secrets(self, vault).await.map_err(Into::into)
            }

            async fn update_secret_version(
                &self,
                v: &keyless_store::SecretVersionRecord,
            ) -> Result<bool, keyless_store::StoreError> {
                secrets::update_secret_version(self, v)
                    .await
                    .map_err(Into::into)
            }

            async fn soft_delete_secret(
                &self,
                vault: &str,
                name: &str,
                at: i64,
                purge_at: i64,
            ) -> Result<bool, keyless_store::StoreError> {
                secrets::soft_delete_secret(self, vault, name, at, purge_at)
                    .await
                    .map_err(Into::into)
            }

            async fn recover_secret(
                &self,
                vault: &str,
                name: &str,
            ) -> Result<bool, keyless_store::StoreError> {
                secrets::recover_secret(self, vault, name)
                    .await
                    .map_err(Into::into)
            }

            async fn purge_secret(
                &self,
                vault: &str,
                name: &str,
            ) -> Result<bool, keyless_store::StoreError> {
                secrets::purge_secret(self, vault, name)
                    .await
                    .map_err(Into::into)
            }

            async fn purge_expired_secrets(
                &self,
                now: i64,
            ) -> Result<u64, keyless_store::StoreError> {
                secrets::purge_expired_secrets(self, now)
                    .await
                    .map_err(Into::into)
            }

            async fn change_feed(
                &self,
            ) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, keyless_store::StoreError> {
                change_feed(self).await.map_err(Into::into)
            }

            async fn ping(&self) -> Result<(), keyless_store::StoreError> {
                ping(self).await.map_err(Into::into)
            }
        }
    };
}

pub(crate) use impl_store;
