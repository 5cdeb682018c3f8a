//! SQLite: role assignments, and the scope cascade used when a resource goes.

use keyless_store::RoleAssignmentRecord;

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

pub(super) async fn delete_assignments_at_or_below(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    scope: &str,
) -> Result<()> {
    // Prefix compare with substr, not LIKE: names may contain `_`, a LIKE wildcard.
    sqlx::query(
        "DELETE FROM role_assignments
         WHERE lower(scope) = lower(?1)
            OR lower(substr(scope, 1, length(?1) + 1)) = lower(?1 || '/')",
    )
    .bind(scope)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
