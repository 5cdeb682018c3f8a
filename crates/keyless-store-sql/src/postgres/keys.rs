//! PostgreSQL: token signing keys (sealed) and their retirement.

use keyless_store::SigningKeyRecord;

use keyless_store::Change;

use super::rows::*;
use super::{PgStore, notify, write_error};
use crate::error::Result;

pub(super) async fn insert_signing_key(db: &PgStore, key: &SigningKeyRecord) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO signing_keys (kid, tenant_id, alg, sealed_private_key, created_at, active_from, retired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.kid)
    .bind(&key.tenant_id)
    .bind(&key.alg)
    .bind(&key.sealed_private_key)
    .bind(key.created_at)
    .bind(key.active_from)
    .bind(key.retired_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| write_error(e, "key id exists", "tenant"))?;
    notify(&mut tx, &Change::SigningKeys).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn retire_signing_key(db: &PgStore, kid: &str, at: i64) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query(
        "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND (retired_at IS NULL OR retired_at > $1)",
    )
    .bind(at)
    .bind(kid)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() > 0 {
        notify(&mut tx, &Change::SigningKeys).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete_signing_keys_retired_before(db: &PgStore, before: i64) -> Result<u64> {
    let mut tx = db.pool.begin().await?;
    let n =
        sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if n > 0 {
        notify(&mut tx, &Change::SigningKeys).await?;
    }
    tx.commit().await?;
    Ok(n)
}

pub(super) async fn all_signing_keys(db: &PgStore) -> Result<Vec<SigningKeyRecord>> {
    let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(signing_key_from_row).collect()
}
