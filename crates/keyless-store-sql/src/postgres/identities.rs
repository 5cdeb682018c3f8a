//! PostgreSQL: user-assigned identities and service principals (deleting an identity
//! cascades into its credentials and the role assignments naming it or on it).

use keyless_store::{IdentityRecord, ServicePrincipalRecord, StoreError, UpsertOutcome};
use sqlx::Row;

use super::rbac::{delete_assignments_at_or_below, lock_role_assignments};
use keyless_store::Change;

use super::rows::*;
use super::{PgStore, fold, notify, write_error};
use crate::error::Result;

pub(super) async fn upsert_identity(
    db: &PgStore,
    identity: &IdentityRecord,
) -> Result<(IdentityRecord, UpsertOutcome)> {
    let group_key = fold(&identity.resource_group);
    let mut tx = db.pool.begin().await?;
    // The group's lock serialises identity upserts in it (and keeps it from being
    // deleted until this commits).
    let group = sqlx::query(
        "SELECT name FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
    )
    .bind(&identity.subscription_id)
    .bind(&group_key)
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
        "SELECT principal_id FROM identities
         WHERE subscription_id = $1 AND resource_group_key = $2 AND name_key = $3
         FOR NO KEY UPDATE",
    )
    .bind(&identity.subscription_id)
    .bind(&group_key)
    .bind(fold(&identity.name))
    .fetch_optional(&mut *tx)
    .await?;
    let tags = json_text(&identity.tags)?;
    let (principal_id, outcome) = match existing {
        Some(row) => {
            let pid: String = row.try_get("principal_id")?;
            sqlx::query("UPDATE identities SET location = $1, tags = $2 WHERE principal_id = $3")
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
            .map_err(|e| write_error(e, "identity id collision", "resource group"))?;
            (identity.principal_id.clone(), UpsertOutcome::Created)
        }
    };
    let row = sqlx::query("SELECT * FROM identities WHERE principal_id = $1")
        .bind(&principal_id)
        .fetch_one(&mut *tx)
        .await?;
    let stored = identity_from_row(&row)?;
    notify(
        &mut tx,
        &Change::Identity {
            subscription_id: stored.subscription_id.clone(),
            resource_group: stored.resource_group.clone(),
            name: stored.name.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((stored, outcome))
}

pub(super) async fn get_identity(
    db: &PgStore,
    subscription_id: &str,
    resource_group: &str,
    name: &str,
) -> Result<Option<IdentityRecord>> {
    sqlx::query(
        "SELECT * FROM identities WHERE subscription_id = $1 AND resource_group_key = $2 AND name_key = $3",
    )
    .bind(subscription_id)
    .bind(fold(resource_group))
    .bind(fold(name))
    .fetch_optional(&db.pool)
    .await?
    .as_ref()
    .map(identity_from_row)
    .transpose()
}

pub(super) async fn list_identities(
    db: &PgStore,
    subscription_id: &str,
    resource_group: Option<&str>,
) -> Result<Vec<IdentityRecord>> {
    let rows = match resource_group {
        Some(rg) => {
            sqlx::query(
                "SELECT * FROM identities WHERE subscription_id = $1 AND resource_group_key = $2 ORDER BY name_key",
            )
            .bind(subscription_id)
            .bind(fold(rg))
            .fetch_all(&db.pool)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT * FROM identities WHERE subscription_id = $1 ORDER BY resource_group_key, name_key",
            )
            .bind(subscription_id)
            .fetch_all(&db.pool)
            .await?
        }
    };
    rows.iter().map(identity_from_row).collect()
}

pub(super) async fn all_identities(db: &PgStore) -> Result<Vec<IdentityRecord>> {
    let rows = sqlx::query("SELECT * FROM identities ORDER BY created_at, principal_id")
        .fetch_all(&db.pool)
        .await?;
    crate::row_decoding::decode_all(rows, identity_from_row).await
}

pub(super) async fn delete_identity(
    db: &PgStore,
    subscription_id: &str,
    resource_group: &str,
    name: &str,
) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    lock_role_assignments(&mut tx).await?;
    let Some(row) = sqlx::query(
        "SELECT * FROM identities
         WHERE subscription_id = $1 AND resource_group_key = $2 AND name_key = $3
         FOR UPDATE",
    )
    .bind(subscription_id)
    .bind(fold(resource_group))
    .bind(fold(name))
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let stored = identity_from_row(&row)?;
    let pid = stored.principal_id;
    // The assignments naming the identity, and those granting rights over it (a new
    // identity of the same name must not inherit them).
    sqlx::query("DELETE FROM role_assignments WHERE principal_id = $1")
        .bind(&pid)
        .execute(&mut *tx)
        .await?;
    let scope = keyless_store::scope::identity(
        &stored.subscription_id,
        &stored.resource_group,
        &stored.name,
    );
    delete_assignments_at_or_below(&mut tx, &scope).await?;
    // Credentials cascade through the foreign key.
    sqlx::query("DELETE FROM identities WHERE principal_id = $1")
        .bind(&pid)
        .execute(&mut *tx)
        .await?;
    notify(
        &mut tx,
        &Change::Identity {
            subscription_id: stored.subscription_id.clone(),
            resource_group: stored.resource_group.clone(),
            name: stored.name.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn insert_service_principal(
    db: &PgStore,
    sp: &ServicePrincipalRecord,
) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO service_principals (client_id, principal_id, tenant_id, display_name, secret_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&sp.client_id)
    .bind(&sp.principal_id)
    .bind(&sp.tenant_id)
    .bind(&sp.display_name)
    .bind(&sp.secret_hash)
    .bind(sp.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| write_error(e, "service principal exists", "tenant"))?;
    notify(&mut tx, &Change::Everything).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn set_service_principal_secret(
    db: &PgStore,
    client_id: &str,
    secret_hash: &str,
) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query("UPDATE service_principals SET secret_hash = $1 WHERE client_id = $2")
        .bind(secret_hash)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() > 0 {
        notify(&mut tx, &Change::Everything).await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn all_service_principals(db: &PgStore) -> Result<Vec<ServicePrincipalRecord>> {
    let rows = sqlx::query("SELECT * FROM service_principals ORDER BY created_at, client_id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(service_principal_from_row).collect()
}
