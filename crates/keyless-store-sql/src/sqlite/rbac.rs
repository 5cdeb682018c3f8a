//! SQLite: role assignments, and the scope cascade used when a resource goes.

use keyless_store::RoleAssignmentRecord;
use sqlx::Row;

use super::rows::*;
use super::{SqliteStore, conflict_or};
use crate::error::Result;

pub(super) async fn insert_role_assignment(
    db: &SqliteStore,
    ra: &RoleAssignmentRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO role_assignments (name, tenant_id, scope, role_definition_id, principal_id, principal_type, description, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&ra.name)
    .bind(&ra.tenant_id)
    .bind(&ra.scope)
    .bind(&ra.role_definition_id)
    .bind(&ra.principal_id)
    .bind(&ra.principal_type)
    .bind(&ra.description)
    .bind(ra.created_at)
    .execute(&db.writer)
    .await
    .map_err(|e| conflict_or(e, "the role assignment already exists"))?;
    Ok(())
}

pub(super) async fn all_role_assignments(db: &SqliteStore) -> Result<Vec<RoleAssignmentRecord>> {
    let rows = sqlx::query("SELECT * FROM role_assignments ORDER BY created_at, name")
        .fetch_all(&db.reader)
        .await?;
    crate::row_decoding::decode_all(rows, role_assignment_from_row).await
}

pub(super) async fn role_assignments_of(
    db: &SqliteStore,
    principal_id: &str,
) -> Result<Vec<RoleAssignmentRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM role_assignments WHERE principal_id = ? ORDER BY created_at, name",
    )
    .bind(principal_id)
    .fetch_all(&db.reader)
    .await?;
    rows.iter().map(role_assignment_from_row).collect()
}

pub(super) async fn delete_role_assignment(
    db: &SqliteStore,
    name: &str,
) -> Result<Option<RoleAssignmentRecord>> {
    let mut tx = db.writer.begin().await?;
    let row = sqlx::query("SELECT * FROM role_assignments WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let rec = role_assignment_from_row(&row)?;
    sqlx::query("DELETE FROM role_assignments WHERE name = ?")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(rec))
}

/// Deletes the assignments whose scope is `scope` or lies below it, compared segment by
/// segment ([`keyless_store::scope::contains`], the comparison RBAC uses), never as a
/// string prefix: `rg1` does not take `rg10`'s assignments, and a stored scope spelled
/// with extra slashes or another keyword casing still goes.
pub(super) async fn delete_assignments_at_or_below(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    scope: &str,
) -> Result<()> {
    // Only a scope mentioning the resource's name can lie at or below it: a cheap
    // filter in SQL (lower() and the Rust comparison both fold ASCII only), then the
    // exact comparison here.
    let needle = keyless_store::scope::segments(scope)
        .last()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let rows =
        sqlx::query("SELECT name, scope FROM role_assignments WHERE instr(lower(scope), ?) > 0")
            .bind(&needle)
            .fetch_all(&mut **tx)
            .await?;
    for row in rows {
        let stored: String = row.try_get("scope")?;
        if keyless_store::scope::contains(scope, &stored) {
            let name: String = row.try_get("name")?;
            sqlx::query("DELETE FROM role_assignments WHERE name = ?")
                .bind(&name)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
