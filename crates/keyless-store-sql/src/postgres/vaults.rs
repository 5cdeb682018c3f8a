//! PostgreSQL: Key Vault vaults (names are global; deleting one cascades into its secrets
//! and the role assignments on it).

use keyless_store::{StoreError, UpsertOutcome, VaultRecord};
use sqlx::Row;

use super::rbac::{delete_assignments_at_or_below, lock_role_assignments};
use keyless_store::Change;

use super::rows::*;
use super::{PgStore, fold, notify, outcome, write_error};
use crate::error::Result;

pub(super) async fn upsert_vault(
    db: &PgStore,
    v: &VaultRecord,
) -> Result<(VaultRecord, UpsertOutcome)> {
    let key = fold(&v.name);
    let group_key = fold(&v.resource_group);
    let mut tx = db.pool.begin().await?;
    // The group's lock serialises upserts of the same vault in the same group (and
    // keeps the group until this commits). The same name in two groups at once is
    // a conflict whichever wins, enforced by the primary key.
    let group = sqlx::query(
        "SELECT name FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
    )
    .bind(&v.subscription_id)
    .bind(&group_key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(group) = group else {
        return Err(
            StoreError::ParentNotFound(format!("resource group '{}'", v.resource_group)).into(),
        );
    };
    let group_name: String = group.try_get("name")?;
    let in_use = || StoreError::Conflict(format!("the vault name '{}' is already in use", v.name));
    let existing = sqlx::query(
        "SELECT subscription_id, resource_group_key FROM vaults WHERE name_key = $1 FOR NO KEY UPDATE",
    )
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?;
    let tags = json_text(&v.tags)?;
    let exists = match existing {
        Some(row) => {
            let sub: String = row.try_get("subscription_id")?;
            let rg: String = row.try_get("resource_group_key")?;
            if sub != v.subscription_id || rg != group_key {
                return Err(in_use().into());
            }
            sqlx::query("UPDATE vaults SET location = $1, tags = $2 WHERE name_key = $3")
                .bind(&v.location)
                .bind(&tags)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            true
        }
        None => {
            sqlx::query(
                "INSERT INTO vaults (name, subscription_id, resource_group, tenant_id, location, tags, soft_delete_days, purge_protection, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&v.name)
            .bind(&v.subscription_id)
            .bind(&group_name)
            .bind(&v.tenant_id)
            .bind(&v.location)
            .bind(&tags)
            .bind(v.soft_delete_days)
            .bind(v.purge_protection)
            .bind(v.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match write_error(e, "", "resource group") {
                StoreError::Conflict(_) => in_use(),
                other => other,
            })?;
            false
        }
    };
    let row = sqlx::query("SELECT * FROM vaults WHERE name_key = $1")
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
    let stored = vault_from_row(&row)?;
    notify(
        &mut tx,
        &Change::Vault {
            name: stored.name.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((stored, outcome(exists)))
}

pub(super) async fn get_vault(db: &PgStore, name: &str) -> Result<Option<VaultRecord>> {
    sqlx::query("SELECT * FROM vaults WHERE name_key = $1")
        .bind(fold(name))
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(vault_from_row)
        .transpose()
}

pub(super) async fn all_vaults(db: &PgStore) -> Result<Vec<VaultRecord>> {
    let rows = sqlx::query("SELECT * FROM vaults ORDER BY name_key")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(vault_from_row).collect()
}

pub(super) async fn delete_vault(db: &PgStore, name: &str) -> Result<bool> {
    let key = fold(name);
    let mut tx = db.pool.begin().await?;
    lock_role_assignments(&mut tx).await?;
    let Some(row) = sqlx::query("SELECT * FROM vaults WHERE name_key = $1 FOR UPDATE")
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(false);
    };
    let v = vault_from_row(&row)?;
    let scope = keyless_store::scope::vault(&v.subscription_id, &v.resource_group, &v.name);
    delete_assignments_at_or_below(&mut tx, &scope).await?;
    // Secrets and their versions cascade through the foreign keys.
    sqlx::query("DELETE FROM vaults WHERE name_key = $1")
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, &Change::Everything).await?;
    tx.commit().await?;
    Ok(true)
}
