//! SQLite: trusted issuers (static-JWKS registrations).

use keyless_store::{TrustedIssuerRecord, UpsertOutcome};

use super::rows::*;
use super::{SqliteStore, conflict_or};
use crate::error::Result;

pub(super) async fn upsert_trusted_issuer(
    db: &SqliteStore,
    rec: &TrustedIssuerRecord,
) -> Result<UpsertOutcome> {
    let mut tx = db.writer.begin().await?;
    let exists = sqlx::query("SELECT 1 FROM trusted_issuers WHERE tenant_id = ? AND name = ?")
        .bind(&rec.tenant_id)
        .bind(&rec.name)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    let conflict = |e| conflict_or(e, "another registration already trusts this issuer");
    if exists {
        sqlx::query("UPDATE trusted_issuers SET issuer = ?, jwks = ?, updated_at = ? WHERE tenant_id = ? AND name = ?")
            .bind(&rec.issuer)
            .bind(&rec.jwks)
            .bind(rec.updated_at)
            .bind(&rec.tenant_id)
            .bind(&rec.name)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
    } else {
        sqlx::query(
            "INSERT INTO trusted_issuers (tenant_id, name, issuer, jwks, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
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
    tx.commit().await?;
    Ok(if exists {
        UpsertOutcome::Updated
    } else {
        UpsertOutcome::Created
    })
}

pub(super) async fn all_trusted_issuers(db: &SqliteStore) -> Result<Vec<TrustedIssuerRecord>> {
    let rows = sqlx::query("SELECT * FROM trusted_issuers ORDER BY tenant_id, name")
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(trusted_issuer_from_row).collect()
}

pub(super) async fn delete_trusted_issuer(
    db: &SqliteStore,
    tenant_id: &str,
    name: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM trusted_issuers WHERE tenant_id = ? AND name = ?")
        .bind(tenant_id)
        .bind(name)
        .execute(&db.writer)
        .await?;
    Ok(done.rows_affected() > 0)
}
