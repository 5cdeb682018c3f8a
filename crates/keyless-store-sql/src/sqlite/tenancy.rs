//! SQLite: server-wide settings (meta), tenants, subscriptions and resource groups
//! (deleting a group cascades into its identities and the role assignments at or below it).

use keyless_store::{ResourceGroupRecord, SubscriptionRecord, TenantRecord, UpsertOutcome};
use sqlx::Row;

use super::rbac::delete_assignments_at_or_below;
use super::rows::*;
use super::{SqliteStore, conflict_or, parent_or};
use crate::error::Result;

pub(super) async fn meta_get(db: &SqliteStore, key: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_optional(&db.reader)
        .await?;
    Ok(row.map(|r| r.try_get("value")).transpose()?)
}

pub(super) async fn meta_put_if_absent(db: &SqliteStore, key: &str, value: &str) -> Result<String> {
    let mut tx = db.writer.begin().await?;
    sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    let stored: String = sqlx::query("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_one(&mut *tx)
        .await?
        .try_get("value")?;
    tx.commit().await?;
    Ok(stored)
}

pub(super) async fn insert_tenant(db: &SqliteStore, t: &TenantRecord) -> Result<()> {
    sqlx::query("INSERT INTO tenants (id, display_name, created_at) VALUES (?, ?, ?)")
        .bind(&t.id)
        .bind(&t.display_name)
        .bind(t.created_at)
        .execute(&db.writer)
        .await
        .map_err(|e| conflict_or(e, "tenant exists"))?;
    Ok(())
}

pub(super) async fn list_tenants(db: &SqliteStore) -> Result<Vec<TenantRecord>> {
    let rows = sqlx::query("SELECT * FROM tenants ORDER BY created_at, id")
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(tenant_from_row).collect()
}

pub(super) async fn insert_subscription(db: &SqliteStore, s: &SubscriptionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO subscriptions (id, tenant_id, display_name, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&s.id)
    .bind(&s.tenant_id)
    .bind(&s.display_name)
    .bind(s.created_at)
    .execute(&db.writer)
    .await
    .map_err(|e| conflict_or(e, "subscription exists"))?;
    Ok(())
}

pub(super) async fn list_subscriptions(db: &SqliteStore) -> Result<Vec<SubscriptionRecord>> {
    let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY created_at, id")
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(subscription_from_row).collect()
}

pub(super) async fn upsert_resource_group(
    db: &SqliteStore,
    rg: &ResourceGroupRecord,
) -> Result<(ResourceGroupRecord, UpsertOutcome)> {
    let mut tx = db.writer.begin().await?;
    let exists =
        sqlx::query("SELECT 1 FROM resource_groups WHERE subscription_id = ? AND name = ?")
            .bind(&rg.subscription_id)
            .bind(&rg.name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
    let tags = json_text(&rg.tags)?;
    if exists {
        sqlx::query(
            "UPDATE resource_groups SET location = ?, tags = ? WHERE subscription_id = ? AND name = ?",
        )
        .bind(&rg.location)
        .bind(&tags)
        .bind(&rg.subscription_id)
        .bind(&rg.name)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO resource_groups (subscription_id, name, location, tags, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&rg.subscription_id)
        .bind(&rg.name)
        .bind(&rg.location)
        .bind(&tags)
        .bind(rg.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| parent_or(e, "subscription"))?;
    }
    let row = sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = ? AND name = ?")
        .bind(&rg.subscription_id)
        .bind(&rg.name)
        .fetch_one(&mut *tx)
        .await?;
    let stored = resource_group_from_row(&row)?;
    tx.commit().await?;
    Ok((
        stored,
        if exists {
            UpsertOutcome::Updated
        } else {
            UpsertOutcome::Created
        },
    ))
}

pub(super) async fn get_resource_group(
    db: &SqliteStore,
    subscription_id: &str,
    name: &str,
) -> Result<Option<ResourceGroupRecord>> {
    sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = ? AND name = ?")
        .bind(subscription_id)
        .bind(name)
        .fetch_optional(&db.reader)
        .await?
        .as_ref()
        .map(resource_group_from_row)
        .transpose()
}

pub(super) async fn list_resource_groups(
    db: &SqliteStore,
    subscription_id: &str,
) -> Result<Vec<ResourceGroupRecord>> {
    let rows = sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = ? ORDER BY name")
        .bind(subscription_id)
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(resource_group_from_row).collect()
}

pub(super) async fn delete_resource_group(
    db: &SqliteStore,
    subscription_id: &str,
    name: &str,
) -> Result<bool> {
    let mut tx = db.writer.begin().await?;
    let Some(row) =
        sqlx::query("SELECT name FROM resource_groups WHERE subscription_id = ? AND name = ?")
            .bind(subscription_id)
            .bind(name)
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
           (SELECT principal_id FROM identities WHERE subscription_id = ? AND resource_group = ?)",
    )
    .bind(subscription_id)
    .bind(&stored_name)
    .execute(&mut *tx)
    .await?;
    delete_assignments_at_or_below(&mut tx, &scope).await?;
    // Identities and their credentials cascade through the foreign keys.
    sqlx::query("DELETE FROM resource_groups WHERE subscription_id = ? AND name = ?")
        .bind(subscription_id)
        .bind(&stored_name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
