//! SQLite: vault secrets and their versions, soft delete, recovery and purge.

use keyless_store::{SecretRecord, SecretVersionRecord, StoreError};
use sqlx::Row;

use super::rows::*;
use super::{SqliteStore, conflict_or};
use crate::error::Result;

pub(super) async fn add_secret_version(db: &SqliteStore, v: &SecretVersionRecord) -> Result<()> {
    let mut tx = db.writer.begin().await?;
    if sqlx::query("SELECT 1 FROM vaults WHERE name = ?")
        .bind(&v.vault)
        .fetch_optional(&mut *tx)
        .await?
        .is_none()
    {
        return Err(StoreError::ParentNotFound(format!("vault '{}'", v.vault)).into());
    }
    let state = sqlx::query("SELECT deleted_at FROM secrets WHERE vault = ? AND name = ?")
        .bind(&v.vault)
        .bind(&v.name)
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
            sqlx::query("INSERT INTO secrets (vault, name) VALUES (?, ?)")
                .bind(&v.vault)
                .bind(&v.name)
                .execute(&mut *tx)
                .await?;
        }
    }
    let seq: i64 = sqlx::query(
        "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM secret_versions WHERE vault = ? AND name = ?",
    )
    .bind(&v.vault)
    .bind(&v.name)
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    sqlx::query(
        "INSERT INTO secret_versions (vault, name, version, sealed_value, content_type, tags, enabled, nbf, exp, created_at, updated_at, seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .map_err(|e| conflict_or(e, "version exists"))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get_secret(
    db: &SqliteStore,
    vault: &str,
    name: &str,
) -> Result<Option<SecretRecord>> {
    let Some(row) = sqlx::query("SELECT * FROM secrets WHERE vault = ? AND name = ?")
        .bind(vault)
        .bind(name)
        .fetch_optional(&db.reader)
        .await?
    else {
        return Ok(None);
    };
    let versions =
        sqlx::query("SELECT * FROM secret_versions WHERE vault = ? AND name = ? ORDER BY seq")
            .bind(vault)
            .bind(name)
            .fetch_all(&db.reader)
            .await?;
    let versions: Vec<&sqlx::sqlite::SqliteRow> = versions.iter().collect();
    Ok(Some(secret_from_rows(&row, &versions)?))
}

pub(super) async fn list_secrets(db: &SqliteStore, vault: &str) -> Result<Vec<SecretRecord>> {
    let rows = sqlx::query("SELECT * FROM secrets WHERE vault = ? ORDER BY name")
        .bind(vault)
        .fetch_all(&db.reader)
        .await?;
    let versions = sqlx::query("SELECT * FROM secret_versions WHERE vault = ? ORDER BY name, seq")
        .bind(vault)
        .fetch_all(&db.reader)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.try_get("name")?;
        let mine: Vec<_> = versions
            .iter()
            .filter(|v| {
                v.try_get::<String, _>("name")
                    .is_ok_and(|n| n.eq_ignore_ascii_case(&name))
            })
            .collect();
        out.push(secret_from_rows(row, &mine)?);
    }
    Ok(out)
}

pub(super) async fn update_secret_version(
    db: &SqliteStore,
    v: &SecretVersionRecord,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE secret_versions SET content_type = ?, tags = ?, enabled = ?, nbf = ?, exp = ?, updated_at = ?
         WHERE vault = ? AND name = ? AND version = ?",
    )
    .bind(&v.content_type)
    .bind(json_text(&v.tags)?)
    .bind(v.enabled)
    .bind(v.nbf)
    .bind(v.exp)
    .bind(v.updated_at)
    .bind(&v.vault)
    .bind(&v.name)
    .bind(&v.version)
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn soft_delete_secret(
    db: &SqliteStore,
    vault: &str,
    name: &str,
    at: i64,
    purge_at: i64,
) -> Result<bool> {
    let done = sqlx::query("UPDATE secrets SET deleted_at = ?, purge_at = ? WHERE vault = ? AND name = ? AND deleted_at IS NULL")
        .bind(at)
        .bind(purge_at)
        .bind(vault)
        .bind(name)
        .execute(&db.writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn recover_secret(db: &SqliteStore, vault: &str, name: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE secrets SET deleted_at = NULL, purge_at = NULL WHERE vault = ? AND name = ? AND deleted_at IS NOT NULL")
        .bind(vault)
        .bind(name)
        .execute(&db.writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn purge_secret(db: &SqliteStore, vault: &str, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM secrets WHERE vault = ? AND name = ?")
        .bind(vault)
        .bind(name)
        .execute(&db.writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn purge_expired_secrets(db: &SqliteStore, now: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM secrets WHERE deleted_at IS NOT NULL AND purge_at <= ?")
        .bind(now)
        .execute(&db.writer)
        .await?;
    Ok(done.rows_affected())
}
