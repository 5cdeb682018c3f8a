//! SQLite: federated identity credentials of an identity (count limit, issuer+subject
//! uniqueness).

use keyless_store::{FederatedCredentialRecord, StoreError, UpsertOutcome};
use sqlx::Row;

use super::rows::*;
use super::{SqliteStore, fic_conflict};
use crate::error::Result;

pub(super) async fn upsert_federated_credential(
    db: &SqliteStore,
    fc: &FederatedCredentialRecord,
    max_per_identity: Option<u32>,
) -> Result<(FederatedCredentialRecord, UpsertOutcome)> {
    // The single writer connection serialises this whole check-then-write.
    let mut tx = db.writer.begin().await?;
    let parent = sqlx::query("SELECT 1 FROM identities WHERE principal_id = ?")
        .bind(&fc.identity_principal_id)
        .fetch_optional(&mut *tx)
        .await?;
    if parent.is_none() {
        return Err(StoreError::ParentNotFound("identity".into()).into());
    }
    let existing = sqlx::query(
        "SELECT created_at FROM federated_credentials WHERE identity_principal_id = ? AND name = ?",
    )
    .bind(&fc.identity_principal_id)
    .bind(&fc.name)
    .fetch_optional(&mut *tx)
    .await?;
    let audiences =
        serde_json::to_string(&fc.audiences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let outcome = if existing.is_some() {
        sqlx::query(
            "UPDATE federated_credentials SET issuer = ?, subject = ?, audiences = ?, expression = ?, updated_at = ?
             WHERE identity_principal_id = ? AND name = ?",
        )
        .bind(&fc.issuer)
        .bind(&fc.subject)
        .bind(&audiences)
        .bind(&fc.expression)
        .bind(fc.updated_at)
        .bind(&fc.identity_principal_id)
        .bind(&fc.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| fic_conflict(e, fc))?;
        UpsertOutcome::Updated
    } else {
        if let Some(limit) = max_per_identity {
            let count: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM federated_credentials WHERE identity_principal_id = ?",
            )
            .bind(&fc.identity_principal_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if count >= i64::from(limit) {
                return Err(StoreError::LimitExceeded {
                    what: "federated identity credentials per identity".into(),
                    limit,
                }
                .into());
            }
        }
        sqlx::query(
            "INSERT INTO federated_credentials (identity_principal_id, name, issuer, subject, audiences, expression, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&fc.identity_principal_id)
        .bind(&fc.name)
        .bind(&fc.issuer)
        .bind(&fc.subject)
        .bind(&audiences)
        .bind(&fc.expression)
        .bind(fc.created_at)
        .bind(fc.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| fic_conflict(e, fc))?;
        UpsertOutcome::Created
    };
    let row = sqlx::query(
        "SELECT * FROM federated_credentials WHERE identity_principal_id = ? AND name = ?",
    )
    .bind(&fc.identity_principal_id)
    .bind(&fc.name)
    .fetch_one(&mut *tx)
    .await?;
    let stored = federated_credential_from_row(&row)?;
    tx.commit().await?;
    Ok((stored, outcome))
}

pub(super) async fn get_federated_credential(
    db: &SqliteStore,
    identity_principal_id: &str,
    name: &str,
) -> Result<Option<FederatedCredentialRecord>> {
    sqlx::query("SELECT * FROM federated_credentials WHERE identity_principal_id = ? AND name = ?")
        .bind(identity_principal_id)
        .bind(name)
        .fetch_optional(&db.reader)
        .await?
        .as_ref()
        .map(federated_credential_from_row)
        .transpose()
}

pub(super) async fn list_federated_credentials(
    db: &SqliteStore,
    identity_principal_id: &str,
) -> Result<Vec<FederatedCredentialRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM federated_credentials WHERE identity_principal_id = ? ORDER BY name",
    )
    .bind(identity_principal_id)
    .fetch_all(&db.reader)
    .await?;
    rows.iter().map(federated_credential_from_row).collect()
}

pub(super) async fn all_federated_credentials(
    db: &SqliteStore,
) -> Result<Vec<FederatedCredentialRecord>> {
    let rows =
        sqlx::query("SELECT * FROM federated_credentials ORDER BY identity_principal_id, name")
            .fetch_all(&db.reader)
            .await?;
    crate::row_decoding::decode_all(rows, federated_credential_from_row).await
}

pub(super) async fn delete_federated_credential(
    db: &SqliteStore,
    identity_principal_id: &str,
    name: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM federated_credentials WHERE identity_principal_id = ? AND name = ?",
    )
    .bind(identity_principal_id)
    .bind(name)
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}
