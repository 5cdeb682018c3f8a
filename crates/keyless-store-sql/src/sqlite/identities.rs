//! SQLite: user-assigned identities and service principals (deleting an identity
//! cascades into its credentials and the role assignments naming it or on it).

use keyless_store::{IdentityRecord, ServicePrincipalRecord, StoreError, UpsertOutcome};
use sqlx::Row;

use super::rbac::delete_assignments_at_or_below;
use super::rows::*;
use super::{SqliteStore, conflict_or};
use crate::error::Result;

pub(super) async fn upsert_identity(
    db: &SqliteStore,
    identity: &IdentityRecord,
) -> Result<(IdentityRecord, UpsertOutcome)> {
    let mut tx = db.writer.begin().await?;
    let group =
        sqlx::query("SELECT name FROM resource_groups WHERE subscription_id = ? AND name = ?")
            .bind(&identity.subscription_id)
            .bind(&identity.resource_group)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(group) = group else {
        return Err(StoreError::ParentNotFound(format!(
            "resource group '{}'",
            identity.resource_group
        ))
        .into());
    };
    let group_name: String = group.try_get("name")?;
    let existing = sqlx::query(
        "SELECT principal_id FROM identities WHERE subscription_id = ? AND resource_group = ? AND name = ?",
    )
    .bind(&identity.subscription_id)
    .bind(&group_name)
    .bind(&identity.name)
    .fetch_optional(&mut *tx)
    .await?;
    let tags = json_text(&identity.tags)?;
    let (principal_id, outcome) = match existing {
        Some(row) => {
            let pid: String = row.try_get("principal_id")?;
            sqlx::query("UPDATE identities SET location = ?, tags = ? WHERE principal_id = ?")
                .bind(&identity.location)
                .bind(&tags)
                .bind(&pid)
                .execute(&mut *tx)
                .await?;
            (pid, UpsertOutcome::Updated)
        }
        None => {
            sqlx::query(
                "INSERT INTO identities (principal_id, client_id, tenant_id, subscription_id, resource_group, name, location, tags, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&identity.principal_id)
            .bind(&identity.client_id)
            .bind(&identity.tenant_id)
            .bind(&identity.subscription_id)
            .bind(&group_name)
            .bind(&identity.name)
            .bind(&identity.location)
            .bind(&tags)
            .bind(identity.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, "identity id collision"))?;
            (identity.principal_id.clone(), UpsertOutcome::Created)
        }
    };
    let row = sqlx::query("SELECT * FROM identities WHERE principal_id = ?")
        .bind(&principal_id)
        .fetch_one(&mut *tx)
        .await?;
    let stored = identity_from_row(&row)?;
    tx.commit().await?;
    Ok((stored, outcome))
}

pub(super) async fn get_identity(
    db: &SqliteStore,
    subscription_id: &str,
    resource_group: &str,
    name: &str,
) -> Result<Option<IdentityRecord>> {
    sqlx::query(
        "SELECT * FROM identities WHERE subscription_id = ? AND resource_group = ? AND name = ?",
    )
    .bind(subscription_id)
    .bind(resource_group)
    .bind(name)
    .fetch_optional(&db.reader)
    .await?
    .as_ref()
    .map(identity_from_row)
    .transpose()
}

pub(super) async fn list_identities(
    db: &SqliteStore,
    subscription_id: &str,
    resource_group: Option<&str>,
) -> Result<Vec<IdentityRecord>> {
    let rows = match resource_group {
        Some(rg) => {
            sqlx::query(
                "SELECT * FROM identities WHERE subscription_id = ? AND resource_group = ? ORDER BY name",
            )
            .bind(subscription_id)
            .bind(rg)
            .fetch_all(&db.reader)
            .await?
        }
        None => {
            sqlx::query("SELECT * FROM identities WHERE subscription_id = ? ORDER BY resource_group, name")
                .bind(subscription_id)
                .fetch_all(&db.reader)
                .await?
        }
    };
    rows.iter().map(identity_from_row).collect()
}

pub(super) async fn all_identities(db: &SqliteStore) -> Result<Vec<IdentityRecord>> {
    let rows = sqlx::query("SELECT * FROM identities ORDER BY created_at, principal_id")
        .fetch_all(&db.reader)
        .await?;
    crate::row_decoding::decode_all(rows, identity_from_row).await
}

pub(super) async fn delete_identity(
    db: &SqliteStore,
    subscription_id: &str,
    resource_group: &str,
    name: &str,
) -> Result<bool> {
    let mut tx = db.writer.begin().await?;
    let Some(row) = sqlx::query(
        "SELECT * FROM identities WHERE subscription_id = ? AND resource_group = ? AND name = ?",
    )
    .bind(subscription_id)
    .bind(resource_group)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let stored = identity_from_row(&row)?;
    let pid = stored.principal_id;
    // The assignments naming the identity, and those granting rights over it (a new
    // identity of the same name must not inherit them).
    sqlx::query("DELETE FROM role_assignments WHERE principal_id = ?")
        .bind(&pid)
        .execute(&mut *tx)
        .await?;
    let scope = keyless_store::scope::identity(
        &stored.subscription_id,
        &stored.resource_group,
        &stored.name,
    );
    delete_assignments_at_or_below(&mut tx, &scope).await?;
    sqlx::query("DELETE FROM identities WHERE principal_id = ?")
        .bind(&pid)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn insert_service_principal(
    db: &SqliteStore,
    sp: &ServicePrincipalRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO service_principals (client_id, principal_id, tenant_id, display_name, secret_hash, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&sp.client_id)
    .bind(&sp.principal_id)
    .bind(&sp.tenant_id)
    .bind(&sp.display_name)
    .bind(&sp.secret_hash)
    .bind(sp.created_at)
    .execute(&db.writer)
    .await
    .map_err(|e| conflict_or(e, "service principal exists"))?;
    Ok(())
}

pub(super) async fn set_service_principal_secret(
    db: &SqliteStore,
    client_id: &str,
    secret_hash: &str,
) -> Result<bool> {
    let done = sqlx::query("UPDATE service_principals SET secret_hash = ? WHERE client_id = ?")
        .bind(secret_hash)
        .bind(client_id)
        .execute(&db.writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn all_service_principals(
    db: &SqliteStore,
) -> Result<Vec<ServicePrincipalRecord>> {
    let rows = sqlx::query("SELECT * FROM service_principals ORDER BY created_at, client_id")
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(service_principal_from_row).collect()
}
