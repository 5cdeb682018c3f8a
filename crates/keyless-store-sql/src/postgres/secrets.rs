//! PostgreSQL: vault secrets and their versions, soft delete, recovery and purge.

use keyless_store::{SecretRecord, SecretVersionRecord, StoreError};
use sqlx::Row;

use keyless_store::Change;

use super::rows::*;
use super::{PgStore, fold, notify, write_error};
use crate::error::Result;

pub(super) async fn add_secret_version(db: &PgStore, v: &SecretVersionRecord) -> Result<()> {
    let vault_key = fold(&v.vault);
    let name_key = fold(&v.name);
    let mut tx = db.pool.begin().await?;
    // The vault's lock serialises secret writes in it: creating the secret row and
    // numbering versions (seq) cannot race.
    if sqlx::query("SELECT 1 FROM vaults WHERE name_key = $1 FOR NO KEY UPDATE")
        .bind(&vault_key)
        .fetch_optional(&mut *tx)
        .await?
        .is_none()
    {
        return Err(StoreError::ParentNotFound(format!("vault '{}'", v.vault)).into());
    }
    let state = sqlx::query(
        "SELECT deleted_at FROM secrets WHERE vault_key = $1 AND name_key = $2 FOR NO KEY UPDATE",
    )
    .bind(&vault_key)
    .bind(&name_key)
    .fetch_optional(&mut *tx)
    .await?;
    match state {
        Some(row) => {
            let deleted: Option<i64> = row.try_get("deleted_at")?;
            if deleted.is_some() {
                return Err(StoreError::Conflict(format!(
                    "Secret {} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.",
                    v.name
                )).into());
            }
        }
        None => {
            sqlx::query("INSERT INTO secrets (vault, name) VALUES ($1, $2)")
                .bind(&v.vault)
                .bind(&v.name)
                .execute(&mut *tx)
                .await
                .map_err(|e| write_error(e, "secret exists", "vault"))?;
        }
    }
    let seq: i64 = sqlx::query(
        "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM secret_versions WHERE vault_key = $1 AND name_key = $2",
    )
    .bind(&vault_key)
    .bind(&name_key)
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    sqlx::query(
        "INSERT INTO secret_versions (vault, name, version, sealed_value, content_type, tags, enabled, nbf, exp, created_at, updated_at, seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&v.vault)
    .bind(&v.name)
    .bind(&v.version)
    .bind(&v.sealed_value)
    .bind(&v.content_type)
    .bind(json_text(&v.tags)?)
    .bind(v.enabled)
    .bind(v.nbf)
    .bind(v.exp)
    .bind(v.created_at)
    .bind(v.updated_at)
    .bind(seq)
    .execute(&mut *tx)
    .await
    .map_err(|e| write_error(e, "version exists", "secret"))?;
    notify(&mut tx, &Change::Secrets).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get_secret(
    db: &PgStore,
    vault: &str,
    name: &str,
) -> Result<Option<SecretRecord>> {
    // One snapshot for the secret and its versions.
    let mut tx = db
        .pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let (vault_key, name_key) = (fold(vault), fold(name));
    let Some(row) = sqlx::query("SELECT * FROM secrets WHERE vault_key = $1 AND name_key = $2")
        .bind(&vault_key)
        .bind(&name_key)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let versions = sqlx::query(
        "SELECT * FROM secret_versions WHERE vault_key = $1 AND name_key = $2 ORDER BY seq",
    )
    .bind(&vault_key)
    .bind(&name_key)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let versions: Vec<&sqlx::postgres::PgRow> = versions.iter().collect();
    Ok(Some(secret_from_rows(&row, &versions)?))
}

pub(super) async fn list_secrets(db: &PgStore, vault: &str) -> Result<Vec<SecretRecord>> {
    let vault_key = fold(vault);
    let mut tx = db
        .pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let rows = sqlx::query("SELECT * FROM secrets WHERE vault_key = $1 ORDER BY name_key")
        .bind(&vault_key)
        .fetch_all(&mut *tx)
        .await?;
    let versions =
        sqlx::query("SELECT * FROM secret_versions WHERE vault_key = $1 ORDER BY name_key, seq")
            .bind(&vault_key)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let key: String = row.try_get("name_key")?;
        let mine: Vec<_> = versions
            .iter()
            .filter(|v| v.try_get::<String, _>("name_key").is_ok_and(|n| n == key))
            .collect();
        out.push(secret_from_rows(row, &mine)?);
    }
    Ok(out)
}

pub(super) async fn update_secret_version(db: &PgStore, v: &SecretVersionRecord) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query(
        "UPDATE secret_versions SET content_type = $1, tags = $2, enabled = $3, nbf = $4, exp = $5, updated_at = $6
         WHERE vault_key = $7 AND name_key = $8 AND version = $9",
    )
    .bind(&v.content_type)
    .bind(json_text(&v.tags)?)
    .bind(v.enabled)
    .bind(v.nbf)
    .bind(v.exp)
    .bind(v.updated_at)
    .bind(fold(&v.vault))
    .bind(fold(&v.name))
    .bind(&v.version)
    .execute(&mut *tx)
    .await?;
    let updated = done.rows_affected() > 0;
    if updated {
        notify(&mut tx, &Change::Secrets).await?;
    }
    tx.commit().await?;
    Ok(updated)
}

pub(super) async fn soft_delete_secret(
    db: &PgStore,
    vault: &str,
    name: &str,
    at: i64,
    purge_at: i64,
) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query(
        "UPDATE secrets SET deleted_at = $1, purge_at = $2
         WHERE vault_key = $3 AND name_key = $4 AND deleted_at IS NULL",
    )
    .bind(at)
    .bind(purge_at)
    .bind(fold(vault))
    .bind(fold(name))
    .execute(&mut *tx)
    .await?;
    let changed = done.rows_affected() > 0;
    if changed {
        notify(&mut tx, &Change::Secrets).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

pub(super) async fn recover_secret(db: &PgStore, vault: &str, name: &str) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query(
        "UPDATE secrets SET deleted_at = NULL, purge_at = NULL
         WHERE vault_key = $1 AND name_key = $2 AND deleted_at IS NOT NULL",
    )
    .bind(fold(vault))
    .bind(fold(name))
    .execute(&mut *tx)
    .await?;
    let changed = done.rows_affected() > 0;
    if changed {
        notify(&mut tx, &Change::Secrets).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

pub(super) async fn purge_secret(db: &PgStore, vault: &str, name: &str) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query("DELETE FROM secrets WHERE vault_key = $1 AND name_key = $2")
        .bind(fold(vault))
        .bind(fold(name))
        .execute(&mut *tx)
        .await?;
    let changed = done.rows_affected() > 0;
    if changed {
        notify(&mut tx, &Change::Secrets).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

pub(super) async fn purge_expired_secrets(db: &PgStore, now: i64) -> Result<u64> {
    let mut tx = db.pool.begin().await?;
    let n = sqlx::query("DELETE FROM secrets WHERE deleted_at IS NOT NULL AND purge_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n > 0 {
        notify(&mut tx, &Change::Secrets).await?;
    }
    tx.commit().await?;
    Ok(n)
}
