//! A deadline on every store call. A call hung on a half-dead TCP connection (a
//! database behind a dropped NAT entry, a stalled replica) would otherwise hold its
//! request, and everything queued behind it, until the kernel gives up minutes later.
//! Past the deadline the call fails as [`StoreError::Database`], which the domain
//! already treats as "unavailable": 503 with `Retry-After` for writes, the last known
//! state for reads that have one.
//!
//! A write cut off by its deadline is rolled back if it had not committed yet (the
//! backends run each method in one transaction, dropped with the future); if the
//! commit had already reached the database, the change stands although the caller got
//! 503 — so retrying the request must be safe, which ARM's PUT/DELETE are.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{DatabaseError, StoreError};
use crate::store::Store;

/// Why a call failed: it outlived its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer {method} within {after:?}")]
pub struct DeadlineExceeded {
    /// The store method.
    pub method: &'static str,
    /// The deadline.
    pub after: Duration,
}

/// Deadlines for store calls.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Every call of the request path and of the background writers.
    pub call: Duration,
    /// Housekeeping deletes that may touch many rows (retention, purges).
    pub housekeeping: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            call: Duration::from_secs(10),
            housekeeping: Duration::from_secs(120),
        }
    }
}

/// A [`Store`] whose every call has a deadline.
pub struct WithDeadline {
    inner: Arc<dyn Store>,
    deadlines: Deadlines,
}

impl std::fmt::Debug for WithDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithDeadline")
            .field("deadlines", &self.deadlines)
            .finish_non_exhaustive()
    }
}

/// Methods that may legitimately take long: bulk deletes by housekeeping.
const HOUSEKEEPING: &[&str] = &[
    "delete_signins_before",
    "trim_signins",
    "purge_expired_secrets",
    "delete_signing_keys_retired_before",
];

impl WithDeadline {
    /// `inner` with `deadlines` on every call.
    pub fn new(inner: Arc<dyn Store>, deadlines: Deadlines) -> Self {
        Self { inner, deadlines }
    }

    async fn run<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        within(self.deadlines, method, call).await
    }
}

/// `call` of store method `method`, failed as unavailable if it outlives its deadline.
async fn within<T>(
    deadlines: Deadlines,
    method: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let after = if HOUSEKEEPING.contains(&method) {
        deadlines.housekeeping
    } else {
        deadlines.call
    };
    match tokio::time::timeout(after, call).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(method, ?after, "store call passed its deadline");
            Err(StoreError::Database(DatabaseError::new(DeadlineExceeded {
                method,
                after,
            })))
        }
    }
}

macro_rules! with_deadline {
    ($($name:ident ($($arg:ident : $argty:ty),*) -> $ret:ty;)*) => {
        #[async_trait::async_trait]
        impl Store for WithDeadline {
            $(
                async fn $name(&self, $($arg: $argty),*) -> Result<$ret, StoreError> {
                    self.run(stringify!($name), self.inner.$name($($arg),*)).await
                }
            )*

            async fn change_feed(
                &self,
            ) -> Result<Option<tokio::sync::mpsc::Receiver<crate::Change>>, StoreError> {
                self.run("change_feed", self.inner.change_feed()).await
            }

            async fn ping(&self) -> Result<(), StoreError> {
                self.run("ping", self.inner.ping()).await
            }

            async fn may_have_missed_changes(&self) -> Result<bool, StoreError> {
                self.run("may_have_missed_changes", self.inner.may_have_missed_changes()).await
            }
        }
    };
}

// One line per trait method: a method added to the trait and not here fails to compile.
with_deadline! {
    meta_get(key: &str) -> Option<String>;
    meta_put_if_absent(key: &str, value: &str) -> String;
    insert_tenant(t: &crate::TenantRecord) -> ();
    list_tenants() -> Vec<crate::TenantRecord>;
    insert_subscription(s: &crate::SubscriptionRecord) -> ();
    list_subscriptions() -> Vec<crate::SubscriptionRecord>;
    upsert_resource_group(rg: &crate::ResourceGroupRecord) -> (crate::ResourceGroupRecord, crate::UpsertOutcome);
    get_resource_group(subscription_id: &str, name: &str) -> Option<crate::ResourceGroupRecord>;
    list_resource_groups(subscription_id: &str) -> Vec<crate::ResourceGroupRecord>;
    delete_resource_group(subscription_id: &str, name: &str) -> bool;
    upsert_identity(identity: &crate::IdentityRecord) -> (crate::IdentityRecord, crate::UpsertOutcome);
    get_identity(subscription_id: &str, resource_group: &str, name: &str) -> Option<crate::IdentityRecord>;
    list_identities(subscription_id: &str, resource_group: Option<&str>) -> Vec<crate::IdentityRecord>;
    all_identities() -> Vec<crate::IdentityRecord>;
    delete_identity(subscription_id: &str, resource_group: &str, name: &str) -> bool;
    upsert_federated_credential(fc: &crate::FederatedCredentialRecord, max_per_identity: Option<u32>) -> (crate::FederatedCredentialRecord, crate::UpsertOutcome);
    get_federated_credential(identity_principal_id: &str, name: &str) -> Option<crate::FederatedCredentialRecord>;
    list_federated_credentials(identity_principal_id: &str) -> Vec<crate::FederatedCredentialRecord>;
    all_federated_credentials() -> Vec<crate::FederatedCredentialRecord>;
    delete_federated_credential(identity_principal_id: &str, name: &str) -> bool;
    insert_service_principal(sp: &crate::ServicePrincipalRecord) -> ();
    set_service_principal_secret(client_id: &str, secret_hash: &str) -> bool;
    all_service_principals() -> Vec<crate::ServicePrincipalRecord>;
    insert_role_assignment(ra: &crate::RoleAssignmentRecord) -> ();
    all_role_assignments() -> Vec<crate::RoleAssignmentRecord>;
    role_assignments_of(principal_id: &str) -> Vec<crate::RoleAssignmentRecord>;
    delete_role_assignment(name: &str) -> Option<crate::RoleAssignmentRecord>;
    insert_signing_key(key: &crate::SigningKeyRecord) -> ();
    retire_signing_key(kid: &str, at: i64) -> ();
    delete_signing_keys_retired_before(before: i64) -> u64;
    all_signing_keys() -> Vec<crate::SigningKeyRecord>;
    upsert_trusted_issuer(rec: &crate::TrustedIssuerRecord) -> crate::UpsertOutcome;
    all_trusted_issuers() -> Vec<crate::TrustedIssuerRecord>;
    delete_trusted_issuer(tenant_id: &str, name: &str) -> bool;
    insert_signins(records: &[crate::SignInRecord]) -> ();
    query_signins(q: &crate::SignInQuery) -> Vec<crate::SignInRecord>;
    delete_signins_before(before: i64, limit: u32) -> u64;
    trim_signins(keep: u64, limit: u32) -> u64;
    upsert_vault(v: &crate::VaultRecord) -> (crate::VaultRecord, crate::UpsertOutcome);
    get_vault(name: &str) -> Option<crate::VaultRecord>;
    all_vaults() -> Vec<crate::VaultRecord>;
    delete_vault(name: &str) -> bool;
    add_secret_version(v: &crate::SecretVersionRecord) -> ();
    get_secret(vault: &str, name: &str) -> Option<crate::SecretRecord>;
    list_secrets(vault: &str) -> Vec<crate::SecretRecord>;
    update_secret_version(v: &crate::SecretVersionRecord) -> bool;
    soft_delete_secret(vault: &str, name: &str, at: i64, purge_at: i64) -> bool;
    recover_secret(vault: &str, name: &str) -> bool;
    purge_secret(vault: &str, name: &str) -> bool;
    purge_expired_secrets(now: i64) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_fails_at_its_deadline() {
        let d = Deadlines::default();
        let started = tokio::time::Instant::now();
        let r: Result<(), StoreError> = within(d, "get_identity", std::future::pending()).await;
        assert_eq!(started.elapsed(), Deadlines::default().call);
        match r {
            Err(StoreError::Database(e)) => assert!(e.to_string().contains("get_identity")),
            other => panic!("expected the deadline, got {other:?}"),
        }
        let started = tokio::time::Instant::now();
        let r: Result<(), StoreError> = within(d, "trim_signins", std::future::pending()).await;
        assert!(r.is_err());
        assert_eq!(started.elapsed(), Deadlines::default().housekeeping);
        // A call that answers in time is untouched.
        assert_eq!(within(d, "ping", async { Ok(7) }).await.ok(), Some(7));
    }
}
