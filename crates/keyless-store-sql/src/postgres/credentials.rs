//! PostgreSQL: federated identity credentials of an identity (count limit, issuer+subject
//! uniqueness).

use keyless_store::{FederatedCredentialRecord, StoreError, UpsertOutcome};
use sqlx::Row;

use keyless_store::Change;

use super::rows::*;
use super::{PgStore, fic_conflict, fold, notify, outcome};
use crate::error::Result;

pub(super) async fn upsert_federated_credential(
    db: &PgStore,
    fc: &FederatedCredentialRecord,
    max_per_identity: Option<u32>,
) -> Result<(FederatedCredentialRecord, UpsertOutcome)> {
    let key = fold(&fc.name);
    let mut tx = db.pool.begin().await?;
    // Locking the identity serialises every credential write on it, across replicas:
    // the existence check, the count limit and the insert below see each other.
    let parent = sqlx::query("SELECT 1 FROM identities WHERE principal_id = $1 FOR NO KEY UPDATE")
        .bind(&fc.identity_principal_id)
        .fetch_optional(&mut *tx)
        .await?;
    if parent.is_none() {
        return Err(StoreError::ParentNotFound("identity".into()).into());
    }
    let exists = sqlx::query(
        "SELECT 1 FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
    )
    .bind(&fc.identity_principal_id)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    let audiences =
        serde_json::to_string(&fc.audiences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if exists {
        sqlx::query(
            "UPDATE federated_credentials SET issuer = $1, subject = $2, audiences = $3, expression = $4, updated_at = $5
             WHERE identity_principal_id = $6 AND name_key = $7",
        )
        .bind(&fc.issuer)
        .bind(&fc.subject)
        .bind(&audiences)
        .bind(&fc.expression)
        .bind(fc.updated_at)
        .bind(&fc.identity_principal_id)
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(|e| fic_conflict(e, fc))?;
    } else {
        if let Some(limit) = max_per_identity {
            let count: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM federated_credentials WHERE identity_principal_id = $1",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
    }
    let row = sqlx::query(
        "SELECT * FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
    )
    .bind(&fc.identity_principal_id)
    .bind(&key)
    .fetch_one(&mut *tx)
    .await?;
    let stored = federated_credential_from_row(&row)?;
    notify(
        &mut tx,
        &Change::Credentials {
            identity_principal_id: fc.identity_principal_id.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((stored, outcome(exists)))
}

pub(super) async fn get_federated_credential(
    db: &PgStore,
    identity_principal_id: &str,
    name: &str,
) -> Result<Option<FederatedCredentialRecord>> {
    sqlx::query(
        "SELECT * FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
    )
    .bind(identity_principal_id)
    .bind(fold(name))
    .fetch_optional(&db.pool)
    .await?
    .as_ref()
    .map(federated_credential_from_row)
    .transpose()
}

pub(super) async fn list_federated_credentials(
    db: &PgStore,
    identity_principal_id: &str,
) -> Result<Vec<FederatedCredentialRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM federated_credentials WHERE identity_principal_id = $1 ORDER BY name_key",
    )
    .bind(identity_principal_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(federated_credential_from_row).collect()
}

pub(super) async fn all_federated_credentials(
    db: &PgStore,
) -> Result<Vec<FederatedCredentialRecord>> {
    let rows =
        sqlx::query("SELECT * FROM federated_credentials ORDER BY identity_principal_id, name_key")
            .fetch_all(&db.pool)
            .await?;
    crate::row_decoding::decode_all(rows, federated_credential_from_row).await
}

pub(super) async fn delete_federated_credential(
    db: &PgStore,
    identity_principal_id: &str,
    name: &str,
) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query(
        "DELETE FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
    )
    .bind(identity_principal_id)
    .bind(fold(name))
    .execute(&mut *tx)
    .await?;
    let deleted = done.rows_affected() > 0;
    if deleted {
        notify(
            &mut tx,
            &Change::Credentials {
                identity_principal_id: identity_principal_id.to_string(),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
