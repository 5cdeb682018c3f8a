//! SQLite: Key Vault vaults (names are global; deleting one cascades into its secrets and
//! the role assignments on it).

use keyless_store::{StoreError, UpsertOutcome, VaultRecord};
use sqlx::Row;

use super::rbac::delete_assignments_at_or_below;
use super::rows::*;
use super::{SqliteStore, conflict_or};
use crate::error::Result;

pub(super) async fn upsert_vault(
    db: &SqliteStore,
    v: &VaultRecord,
) -> Result<(VaultRecord, UpsertOutcome)> {
    let mut tx = db.writer.begin().await?;
    let group =
        sqlx::query("SELECT name FROM resource_groups WHERE subscription_id = ? AND name = ?")
            .bind(&v.subscription_id)
            .bind(&v.resource_group)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(group) = group else {
        return Err(
            StoreError::ParentNotFound(format!("resource group '{}'", v.resource_group)).into(),
        );
    };
    let group_name: String = group.try_get("name")?;
    let existing = sqlx::query("SELECT subscription_id, resource_group FROM vaults WHERE name = ?")
        .bind(&v.name)
        .fetch_optional(&mut *tx)
        .await?;
    let tags = json_text(&v.tags)?;
    let outcome = match existing {
        Some(row) => {
            let sub: String = row.try_get("subscription_id")?;
            let rg: String = row.try_get("resource_group")?;
            if sub != v.subscription_id || !rg.eq_ignore_ascii_case(&group_name) {
                return Err(StoreError::Conflict(format!(
                    "the vault name '{}' is already in use",
                    v.name
                ))
                .into());
            }
            sqlx::query("UPDATE vaults SET location = ?, tags = ? WHERE name = ?")
                .bind(&v.location)
                .bind(&tags)
                .bind(&v.name)
                .execute(&mut *tx)
                .await?;
            UpsertOutcome::Updated
        }
        None => {
            sqlx::query(
                "INSERT INTO vaults (name, subscription_id, resource_group, tenant_id, location, tags, soft_delete_days, purge_protection, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .map_err(|e| conflict_or(e, "the vault name is already in use"))?;
            UpsertOutcome::Created
        }
    };
    let row = sqlx::query("SELECT * FROM vaults WHERE name = ?")
        .bind(&v.name)
        .fetch_one(&mut *tx)
        .await?;
    let stored = vault_from_row(&row)?;
    tx.commit().await?;
    Ok((stored, outcome))
}

pub(super) async fn get_vault(db: &SqliteStore, name: &str) -> Result<Option<VaultRecord>> {
    sqlx::query("SELECT * FROM vaults WHERE name = ?")
        .bind(name)
        .fetch_optional(&db.reader)
        .await?
        .as_ref()
        .map(vault_from_row)
        .transpose()
}

pub(super) async fn all_vaults(db: &SqliteStore) -> Result<Vec<VaultRecord>> {
    let rows = sqlx::query("SELECT * FROM vaults ORDER BY name")
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(vault_from_row).collect()
}

pub(super) async fn delete_vault(db: &SqliteStore, name: &str) -> Result<bool> {
    let mut tx = db.writer.begin().await?;
    let Some(row) = sqlx::query("SELECT * FROM vaults WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(false);
    };
    let v = vault_from_row(&row)?;
    let scope = keyless_store::scope::vault(&v.subscription_id, &v.resource_group, &v.name);
    delete_assignments_at_or_below(&mut tx, &scope).await?;
    sqlx::query("DELETE FROM vaults WHERE name = ?")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
