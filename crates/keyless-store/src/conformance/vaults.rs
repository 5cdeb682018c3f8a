//! Vaults and their secrets.

use std::sync::Arc;

use super::fixtures::*;
use crate::StoreError;
use crate::records::*;
use crate::store::{Store, UpsertOutcome};

/// `seed`, the group `vault-rg` and the vault `vault-one` in it.
async fn seed_vault(s: &dyn Store) -> Result<(), StoreError> {
    seed(s).await?;
    s.upsert_resource_group(&rg("vault-rg")).await?;
    s.upsert_vault(&vault("vault-one", "vault-rg")).await?;
    Ok(())
}

/// A vault is stored under the group's stored name; its name ignores case and is taken
/// across groups (vault names are global).
pub async fn vault_names_are_global_and_ignore_case(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("vault-rg")).await?;
    let v = vault("Vault-One", "VAULT-RG");
    let (stored, o) = s.upsert_vault(&v).await?;
    check(
        o == UpsertOutcome::Created && stored.resource_group == "vault-rg",
        "vault created under the stored group name",
    );
    let (_, o) = s
        .upsert_vault(&VaultRecord {
            name: "vault-one".into(),
            ..v.clone()
        })
        .await?;
    check(
        o == UpsertOutcome::Updated,
        "same vault updated, names ignore case",
    );
    s.upsert_resource_group(&rg("other-rg")).await?;
    let taken = s
        .upsert_vault(&VaultRecord {
            resource_group: "other-rg".into(),
            ..v.clone()
        })
        .await;
    check(
        matches!(taken, Err(StoreError::Conflict(_))),
        "vault names are global",
    );
    check(
        s.get_vault("VAULT-ONE")
            .await?
            .is_some_and(|x| x.name == "Vault-One"),
        "lookup ignores case, first casing kept",
    );
    Ok(())
}

/// Versions accumulate in order under the secret's first casing.
pub async fn secret_versions_keep_order_and_first_casing(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed_vault(&*s).await?;
    s.add_secret_version(&secret_version("vault-one", "Db-Password", "a1", 10))
        .await?;
    s.add_secret_version(&secret_version("VAULT-ONE", "db-password", "a2", 11))
        .await?;
    let sec = s
        .get_secret("vault-one", "DB-PASSWORD")
        .await?
        .unwrap_or_else(|| panic!("secret exists"));
    check(
        sec.name == "Db-Password" && sec.versions.len() == 2,
        "two versions, first casing kept",
    );
    check(
        sec.versions.last().map(|x| x.version.as_str()) == Some("a2"),
        "versions in order",
    );
    Ok(())
}

/// A secret cannot be created without its vault.
pub async fn secret_needs_its_vault(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_vault(&*s).await?;
    let orphan = s
        .add_secret_version(&secret_version("nope", "x", "a1", 1))
        .await;
    check(
        matches!(orphan, Err(StoreError::ParentNotFound(_))),
        "secret needs its vault",
    );
    Ok(())
}

/// A version's metadata is replaced; an unknown version is reported.
pub async fn secret_version_metadata_update(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_vault(&*s).await?;
    s.add_secret_version(&secret_version("vault-one", "db-password", "a1", 10))
        .await?;
    let mut upd = secret_version("vault-one", "db-password", "a1", 10);
    upd.enabled = false;
    upd.updated_at = 20;
    check(s.update_secret_version(&upd).await?, "version updated");
    check(
        s.get_secret("vault-one", "db-password")
            .await?
            .and_then(|x| x.versions.first().map(|v| (v.enabled, v.updated_at)))
            == Some((false, 20)),
        "update stored",
    );
    check(
        !s.update_secret_version(&secret_version("vault-one", "db-password", "zz", 1))
            .await?,
        "unknown version",
    );
    Ok(())
}

/// A soft-deleted name cannot be reused until it is recovered, whole.
pub async fn soft_deleted_secret_blocks_reuse_until_recovered(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed_vault(&*s).await?;
    for (version, at) in [("a1", 10), ("a2", 11)] {
        s.add_secret_version(&secret_version("vault-one", "db-password", version, at))
            .await?;
    }
    check(
        s.soft_delete_secret("vault-one", "db-password", 30, 100)
            .await?,
        "soft deleted",
    );
    check(
        !s.soft_delete_secret("vault-one", "db-password", 31, 100)
            .await?,
        "already deleted",
    );
    let reuse = s
        .add_secret_version(&secret_version("vault-one", "db-password", "a3", 32))
        .await;
    check(
        matches!(reuse, Err(StoreError::Conflict(_))),
        "a deleted name cannot be reused",
    );
    check(
        s.recover_secret("vault-one", "db-password").await?,
        "recovered",
    );
    check(
        !s.recover_secret("vault-one", "db-password").await?,
        "not deleted any more",
    );
    check(
        s.get_secret("vault-one", "db-password")
            .await?
            .is_some_and(|x| x.deleted_at.is_none() && x.versions.len() == 2),
        "recovered whole",
    );
    Ok(())
}

/// Soft-deleted secrets are purged when their purge time comes, not before.
pub async fn expired_secrets_are_purged_on_time(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_vault(&*s).await?;
    s.add_secret_version(&secret_version("vault-one", "kept", "a1", 10))
        .await?;
    s.add_secret_version(&secret_version("vault-one", "other", "b1", 40))
        .await?;
    s.soft_delete_secret("vault-one", "other", 50, 60).await?;
    check(s.purge_expired_secrets(59).await? == 0, "not yet purged");
    check(s.purge_expired_secrets(60).await? == 1, "purged on time");
    check(
        s.get_secret("vault-one", "other").await?.is_none(),
        "purged for good",
    );
    check(
        s.get_secret("vault-one", "kept").await?.is_some(),
        "live secret kept",
    );
    check(
        s.purge_secret("vault-one", "KEPT").await?,
        "purge ignores case",
    );
    check(
        !s.purge_secret("vault-one", "kept").await?,
        "second purge finds nothing",
    );
    Ok(())
}

/// Vaults and a vault's secrets are listed by name ignoring case, each secret with its
/// versions in order.
pub async fn vaults_and_secrets_are_listed_by_name(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("vault-rg")).await?;
    for name in ["zoo", "Apple", "mango"] {
        s.upsert_vault(&vault(name, "vault-rg")).await?;
    }
    let vaults: Vec<String> = s.all_vaults().await?.into_iter().map(|v| v.name).collect();
    check(vaults == ["Apple", "mango", "zoo"], "vaults by name");
    for (name, version, at) in [
        ("zeta", "z1", 1),
        ("Alpha", "a1", 2),
        ("zeta", "z2", 3),
        ("beta", "b1", 4),
        ("Alpha", "a2", 5),
    ] {
        s.add_secret_version(&secret_version("mango", name, version, at))
            .await?;
    }
    let listed: Vec<(String, Vec<String>)> = s
        .list_secrets("MANGO")
        .await?
        .into_iter()
        .map(|x| (x.name, x.versions.into_iter().map(|v| v.version).collect()))
        .collect();
    check(
        listed
            == [
                (
                    "Alpha".to_string(),
                    vec!["a1".to_string(), "a2".to_string()],
                ),
                ("beta".to_string(), vec!["b1".to_string()]),
                ("zeta".to_string(), vec!["z1".to_string(), "z2".to_string()]),
            ],
        "secrets by name, versions in order",
    );
    Ok(())
}

/// Deleting a vault deletes its secrets and the role assignments on it.
pub async fn deleting_a_vault_cascades(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_vault(&*s).await?;
    s.add_secret_version(&secret_version("vault-one", "db-password", "a1", 10))
        .await?;
    let vault_scope = format!(
        "/subscriptions/{S}/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/vault-one"
    );
    s.insert_role_assignment(&assignment("on-vault", &vault_scope, "p5"))
        .await?;
    s.insert_role_assignment(&assignment(
        "on-group",
        &format!("/subscriptions/{S}/resourceGroups/vault-rg"),
        "p5",
    ))
    .await?;
    check(s.delete_vault("VAULT-ONE").await?, "vault deleted");
    check(
        s.get_secret("vault-one", "db-password").await?.is_none(),
        "secrets go with the vault",
    );
    let left: Vec<String> = s
        .all_role_assignments()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    check(
        left == ["on-group"],
        "assignments on the vault go with it, the group's stay",
    );
    check(
        !s.delete_vault("vault-one").await?,
        "second delete finds nothing",
    );
    Ok(())
}
