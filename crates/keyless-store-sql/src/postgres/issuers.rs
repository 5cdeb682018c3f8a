//! PostgreSQL: trusted issuers (static-JWKS registrations).

use keyless_store::{TrustedIssuerRecord, UpsertOutcome};

use super::locks::advisory_lock;
use keyless_store::Change;

use super::rows::*;
use super::{PgStore, fold, notify, outcome, write_error};
use crate::error::Result;

pub(super) async fn upsert_trusted_issuer(
    db: &PgStore,
    rec: &TrustedIssuerRecord,
) -> Result<UpsertOutcome> {
    let key = fold(&rec.name);
    let mut tx = db.pool.begin().await?;
    // No parent row to lock: serialise writers of this registration by name.
    advisory_lock(&mut tx, &["trusted_issuers", &rec.tenant_id, &key]).await?;
    let exists = sqlx::query(
        "SELECT 1 FROM trusted_issuers WHERE tenant_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
    )
    .bind(&rec.tenant_id)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    let conflict = |e| {
        write_error(
            e,
            "another registration already trusts this issuer",
            "tenant",
        )
    };
    if exists {
        sqlx::query(
            "UPDATE trusted_issuers SET issuer = $1, jwks = $2, updated_at = $3 WHERE tenant_id = $4 AND name_key = $5",
        )
        .bind(&rec.issuer)
        .bind(&rec.jwks)
        .bind(rec.updated_at)
        .bind(&rec.tenant_id)
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
    } else {
        sqlx::query(
            "INSERT INTO trusted_issuers (tenant_id, name, issuer, jwks, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&rec.tenant_id)
        .bind(&rec.name)
        .bind(&rec.issuer)
        .bind(&rec.jwks)
        .bind(rec.created_at)
        .bind(rec.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
    }
    notify(&mut tx, &Change::Everything).await?;
    tx.commit().await?;
    Ok(outcome(exists))
}

pub(super) async fn all_trusted_issuers(db: &PgStore) -> Result<Vec<TrustedIssuerRecord>> {
    let rows = sqlx::query("SELECT * FROM trusted_issuers ORDER BY tenant_id, name_key")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(trusted_issuer_from_row).collect()
}

pub(super) async fn delete_trusted_issuer(
    db: &PgStore,
    tenant_id: &str,
    name: &str,
) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query("DELETE FROM trusted_issuers WHERE tenant_id = $1 AND name_key = $2")
        .bind(tenant_id)
        .bind(fold(name))
        .execute(&mut *tx)
        .await?;
    let deleted = done.rows_affected() > 0;
    if deleted {
        notify(&mut tx, &Change::Everything).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
