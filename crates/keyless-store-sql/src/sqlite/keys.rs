//! SQLite: token signing keys (sealed) and their retirement.

use keyless_store::SigningKeyRecord;

use super::rows::*;
use super::{SqliteStore, conflict_or};
use crate::error::Result;

pub(super) async fn insert_signing_key(db: &SqliteStore, key: &SigningKeyRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, tenant_id, alg, sealed_private_key, created_at, active_from, retired_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.kid)
    .bind(&key.tenant_id)
    .bind(&key.alg)
    .bind(&key.sealed_private_key)
    .bind(key.created_at)
    .bind(key.active_from)
    .bind(key.retired_at)
    .execute(&db.writer)
    .await
    .map_err(|e| conflict_or(e, "key id exists"))?;
    Ok(())
}

pub(super) async fn retire_signing_key(db: &SqliteStore, kid: &str, at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE signing_keys SET retired_at = ?1 WHERE kid = ?2 AND (retired_at IS NULL OR retired_at > ?1)",
    )
    .bind(at)
    .bind(kid)
        .execute(&db.writer)
        .await?;
    Ok(())
}

pub(super) async fn delete_signing_keys_retired_before(
    db: &SqliteStore,
    before: i64,
) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?")
            .bind(before)
            .execute(&db.writer)
            .await?;
    Ok(done.rows_affected())
}

pub(super) async fn all_signing_keys(db: &SqliteStore) -> Result<Vec<SigningKeyRecord>> {
    let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(signing_key_from_row).collect()
}
