//! PostgreSQL: server-wide settings (meta), tenants, subscriptions and resource groups
//! (deleting a group cascades into its identities and the role assignments at or below it).

use keyless_store::{
    ResourceGroupRecord, StoreError, SubscriptionRecord, TenantRecord, UpsertOutcome,
};
use sqlx::Row;

use super::rbac::{delete_assignments_at_or_below, lock_role_assignments};
use keyless_store::Change;

use super::rows::*;
use super::{PgStore, fold, notify, outcome, write_error};
use crate::error::Result;

pub(super) async fn meta_get(db: &PgStore, key: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.try_get("value")).transpose()?)
}

pub(super) async fn meta_put_if_absent(db: &PgStore, key: &str, value: &str) -> Result<String> {
    let mut tx = db.pool.begin().await?;
    // A concurrent insert of the same key makes this wait for that transaction; if it
    // commits, nothing is inserted here and the SELECT (a new snapshot) sees its value.
    let inserted =
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    let stored: String = sqlx::query("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_one(&mut *tx)
        .await?
        .try_get("value")?;
    if inserted > 0 {
        notify(&mut tx, &Change::Everything).await?;
    }
    tx.commit().await?;
    Ok(stored)
}

pub(super) async fn insert_tenant(db: &PgStore, t: &TenantRecord) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("INSERT INTO tenants (id, display_name, created_at) VALUES ($1, $2, $3)")
        .bind(&t.id)
        .bind(&t.display_name)
        .bind(t.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, "tenant exists", "tenant"))?;
    notify(&mut tx, &Change::Everything).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list_tenants(db: &PgStore) -> Result<Vec<TenantRecord>> {
    let rows = sqlx::query("SELECT * FROM tenants ORDER BY created_at, id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(tenant_from_row).collect()
}

pub(super) async fn insert_subscription(db: &PgStore, s: &SubscriptionRecord) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO subscriptions (id, tenant_id, display_name, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&s.id)
    .bind(&s.tenant_id)
    .bind(&s.display_name)
    .bind(s.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| write_error(e, "subscription exists", "tenant"))?;
    notify(&mut tx, &Change::Everything).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list_subscriptions(db: &PgStore) -> Result<Vec<SubscriptionRecord>> {
    let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY created_at, id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(subscription_from_row).collect()
}

pub(super) async fn upsert_resource_group(
    db: &PgStore,
    rg: &ResourceGroupRecord,
) -> Result<(ResourceGroupRecord, UpsertOutcome)> {
    let key = fold(&rg.name);
    let mut tx = db.pool.begin().await?;
    // The subscription's lock serialises group upserts in it.
    if sqlx::query("SELECT 1 FROM subscriptions WHERE id = $1 FOR NO KEY UPDATE")
        .bind(&rg.subscription_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_none()
    {
        return Err(StoreError::ParentNotFound("subscription".into()).into());
    }
    let exists = sqlx::query(
        "SELECT 1 FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
    )
    .bind(&rg.subscription_id)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    let tags = json_text(&rg.tags)?;
    if exists {
        sqlx::query(
            "UPDATE resource_groups SET location = $1, tags = $2 WHERE subscription_id = $3 AND name_key = $4",
        )
        .bind(&rg.location)
        .bind(&tags)
        .bind(&rg.subscription_id)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO resource_groups (subscription_id, name, location, tags, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&rg.subscription_id)
        .bind(&rg.name)
        .bind(&rg.location)
        .bind(&tags)
        .bind(rg.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, "resource group exists", "subscription"))?;
    }
    let row =
        sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
            .bind(&rg.subscription_id)
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?;
    let stored = resource_group_from_row(&row)?;
    notify(
        &mut tx,
        &Change::ResourceGroup {
            subscription_id: stored.subscription_id.clone(),
            name: stored.name.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((stored, outcome(exists)))
}

pub(super) async fn get_resource_group(
    db: &PgStore,
    subscription_id: &str,
    name: &str,
) -> Result<Option<ResourceGroupRecord>> {
    sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
        .bind(subscription_id)
        .bind(fold(name))
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(resource_group_from_row)
        .transpose()
}

pub(super) async fn list_resource_groups(
    db: &PgStore,
    subscription_id: &str,
) -> Result<Vec<ResourceGroupRecord>> {
    let rows =
        sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = $1 ORDER BY name_key")
            .bind(subscription_id)
            .fetch_all(&db.pool)
            .await?;
    rows.iter().map(resource_group_from_row).collect()
}

pub(super) async fn delete_resource_group(
    db: &PgStore,
    subscription_id: &str,
    name: &str,
) -> Result<bool> {
    let key = fold(name);
    let mut tx = db.pool.begin().await?;
    lock_role_assignments(&mut tx).await?;
    let Some(row) = sqlx::query(
        "SELECT name FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR UPDATE",
    )
    .bind(subscription_id)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let stored_name: String = row.try_get("name")?;
    let scope = keyless_store::scope::resource_group(subscription_id, &stored_name);
    // Assignments naming identities of the group go with them.
    sqlx::query(
        "DELETE FROM role_assignments WHERE principal_id IN
           (SELECT principal_id FROM identities WHERE subscription_id = $1 AND resource_group_key = $2)",
    )
    .bind(subscription_id)
    .bind(&key)
    .execute(&mut *tx)
    .await?;
    delete_assignments_at_or_below(&mut tx, &scope).await?;
    // Identities, their credentials, vaults and their secrets cascade through the
    // foreign keys.
    sqlx::query("DELETE FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
        .bind(subscription_id)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, &Change::Everything).await?;
    tx.commit().await?;
    Ok(true)
}
