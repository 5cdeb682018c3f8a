//! PostgreSQL: role assignments, and the scope cascade used when a resource goes.

use keyless_store::RoleAssignmentRecord;
use sqlx::Row;

use keyless_store::Change;

use super::rows::*;
use super::{PgStore, Tx, fold, notify, write_error};
use crate::error::Result;

pub(super) async fn insert_role_assignment(db: &PgStore, ra: &RoleAssignmentRecord) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO role_assignments (name, tenant_id, scope, role_definition_id, principal_id, principal_type, description, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&ra.name)
    .bind(&ra.tenant_id)
    .bind(&ra.scope)
    .bind(&ra.role_definition_id)
    .bind(&ra.principal_id)
    .bind(&ra.principal_type)
    .bind(&ra.description)
    .bind(ra.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| write_error(e, "the role assignment already exists", "scope"))?;
    notify(
        &mut tx,
        &Change::RoleAssignments {
            principal_id: ra.principal_id.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn all_role_assignments(db: &PgStore) -> Result<Vec<RoleAssignmentRecord>> {
    let rows = sqlx::query("SELECT * FROM role_assignments ORDER BY created_at, name")
        .fetch_all(&db.pool)
        .await?;
    crate::row_decoding::decode_all(rows, role_assignment_from_row).await
}

pub(super) async fn role_assignments_of(
    db: &PgStore,
    principal_id: &str,
) -> Result<Vec<RoleAssignmentRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM role_assignments WHERE principal_id = $1 ORDER BY created_at, name",
    )
    .bind(principal_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(role_assignment_from_row).collect()
}

pub(super) async fn delete_role_assignment(
    db: &PgStore,
    name: &str,
) -> Result<Option<RoleAssignmentRecord>> {
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query("DELETE FROM role_assignments WHERE name = $1 RETURNING *")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let rec = role_assignment_from_row(&row)?;
    notify(
        &mut tx,
        &Change::RoleAssignments {
            principal_id: rec.principal_id.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Some(rec))
}

/// Blocks role-assignment inserts and deletes until `tx` ends (see the module docs).
pub(super) async fn lock_role_assignments(tx: &mut Tx) -> Result<()> {
    sqlx::query("LOCK TABLE role_assignments IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the assignments whose scope is `scope` or lies below it, compared segment by
/// segment ([`keyless_store::scope::contains`], the comparison RBAC uses), never as a
/// string prefix: `rg1` does not take `rg10`'s assignments, and a stored scope spelled
/// with extra slashes or another keyword casing still goes. The caller holds
/// [`lock_role_assignments`], so no assignment appears between the read and the delete.
pub(super) async fn delete_assignments_at_or_below(tx: &mut Tx, scope: &str) -> Result<()> {
    // Only a scope mentioning the resource's name can lie at or below it: a cheap
    // filter on the folded column (ASCII-only, like `fold` and the Rust comparison),
    // then the exact comparison here.
    let needle = fold(
        keyless_store::scope::segments(scope)
            .last()
            .unwrap_or_default(),
    );
    let rows =
        sqlx::query("SELECT name, scope FROM role_assignments WHERE strpos(scope_key, $1) > 0")
            .bind(&needle)
            .fetch_all(&mut **tx)
            .await?;
    let mut doomed = Vec::new();
    for row in rows {
        let stored: String = row.try_get("scope")?;
        if keyless_store::scope::contains(scope, &stored) {
            doomed.push(row.try_get::<String, _>("name")?);
        }
    }
    if !doomed.is_empty() {
        sqlx::query("DELETE FROM role_assignments WHERE name = ANY($1)")
            .bind(&doomed)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
