//! The conformance suite every [`Store`] implementation must pass, so SQLite and
//! PostgreSQL are held to exactly the same behaviour.
//!
//! Each public `async fn` here checks one behaviour against a fresh, empty store and
//! fails (panics, or returns the store's error) when the store does not behave.
//! Backends do not call them one by one: [`conformance_tests!`](crate::conformance_tests)
//! expands to one `#[tokio::test]` per behaviour, so a failure names the behaviour and
//! does not hide the others. A new behaviour is a new `pub async fn` here *and* a new
//! name in the macro's list.
#![allow(clippy::panic, clippy::indexing_slicing)] // test code: a failed check panics

mod credentials;
mod fixtures;
mod identities;
mod keys;
mod rbac;
mod scopes;
mod signins;
mod vaults;

pub use credentials::*;
pub use identities::*;
pub use keys::*;
pub use rbac::*;
pub use scopes::*;
pub use signins::*;
pub use vaults::*;

/// Expands to one `#[tokio::test]` per conformance behaviour (the functions of
/// [`conformance`](crate::conformance)),
/// each running against a store of its own.
///
/// `$make` is an expression, evaluated inside each (async) test, that yields
/// `Option<(Arc<dyn Store>, guard)>`: the store, and whatever must outlive it (a
/// temporary directory, a test database); `None` skips the test. It may use `.await` and
/// `?` (the tests return `Result<(), Box<dyn Error>>`). The calling crate needs `tokio`
/// with the `macros` and `rt` features. Invoke it inside a module of its own so the test
/// names read `conformance::<behaviour>`:
///
/// ```ignore
/// mod conformance {
///     keyless_store::conformance_tests!(super::fresh_store().await?);
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            tenants_and_subscriptions_are_listed
            service_principal_secret_is_replaced
            service_principals_are_listed_in_creation_order
            meta_first_write_wins
            resource_group_names_ignore_case
            identity_needs_its_group
            identity_upsert_keeps_ids_and_group_casing
            resource_groups_and_identities_are_listed_by_name
            every_identity_is_listed_in_creation_order
            a_large_table_loads_whole_and_in_order
            credential_issuer_and_subject_are_unique_per_identity
            credential_update_by_name_ignores_case
            credential_limit_is_enforced
            credential_needs_its_identity
            credential_delete_ignores_case
            credentials_are_listed_by_name
            every_credential_is_listed_by_identity_then_name
            concurrent_credential_writers_lose_nothing
            credential_limit_holds_under_races
            role_assignment_rules_are_unique
            role_assignment_delete_returns_the_row_once
            role_assignments_are_listed_in_creation_order
            role_assignments_of_one_principal
            deleting_a_group_cascades
            deleting_rg1_leaves_rg10_assignments
            deleting_an_identity_removes_assignments_on_it
            deleting_a_vault_removes_assignments_on_it
            scope_cascade_ignores_case_and_empty_segments
            signing_key_retirement_and_expiry
            trusted_issuer_registration
            trusted_issuers_are_listed_by_tenant_and_name
            signin_log_filters
            signin_batch_with_nul_is_kept_whole
            signin_retention_deletes_old_rows
            signin_cap_keeps_the_newest
            signin_count_round_trips
            vault_names_are_global_and_ignore_case
            secret_versions_keep_order_and_first_casing
            secret_needs_its_vault
            secret_version_metadata_update
            soft_deleted_secret_blocks_reuse_until_recovered
            expired_secrets_are_purged_on_time
            vaults_and_secrets_are_listed_by_name
            deleting_a_vault_cascades
        );
    };
    (@each $make:expr; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {
                let ::std::option::Option::Some((store, _guard)) = $make else {
                    return ::std::result::Result::Ok(());
                };
                $crate::conformance::$name(store).await?;
                ::std::result::Result::Ok(())
            }
        )*
    };
}
