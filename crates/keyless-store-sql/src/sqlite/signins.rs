//! SQLite: the sign-in log.

use keyless_store::{SignInQuery, SignInRecord};

use super::SqliteStore;
use super::rows::*;
use crate::error::Result;

/// Rows per `INSERT` statement: 14 parameters each stays far below SQLite's limit of
/// 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 256;

pub(super) async fn insert_signins(db: &SqliteStore, records: &[SignInRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    // Multi-row statements: each statement is one round trip to the connection's worker
    // thread, so a batch costs a few hand-offs rather than one per record.
    let mut tx = db.writer.begin().await?;
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO signin_log (at, tenant_id, client_id, principal_id, issuer, subject, resource, success, error_code, error, client_ip, correlation_id, latency_us, count) ",
        );
        insert.push_values(chunk, |mut row, r| {
            row.push_bind(r.at)
                .push_bind(&r.tenant_id)
                .push_bind(&r.client_id)
                .push_bind(&r.principal_id)
                .push_bind(&r.issuer)
                .push_bind(&r.subject)
                .push_bind(&r.resource)
                .push_bind(r.success)
                .push_bind(r.error_code.map(i64::from))
                .push_bind(&r.error)
                .push_bind(&r.client_ip)
                .push_bind(&r.correlation_id)
                .push_bind(r.latency_us)
                .push_bind(r.count);
        });
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn query_signins(db: &SqliteStore, q: &SignInQuery) -> Result<Vec<SignInRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM signin_log
         WHERE tenant_id = ?1
           AND (?2 IS NULL OR client_id = ?2)
           AND (?3 = 0 OR success = 0)
           AND (?4 IS NULL OR at >= ?4)
           AND (?6 IS NULL OR id < ?6)
         ORDER BY id DESC LIMIT ?5",
    )
    .bind(&q.tenant_id)
    .bind(&q.client_id)
    .bind(q.failed_only)
    .bind(q.since)
    .bind(i64::from(q.limit))
    .bind(q.before_id)
    .fetch_all(&db.reader)
    .await?;
    rows.iter().map(signin_from_row).collect()
}

pub(super) async fn delete_signins_before(
    db: &SqliteStore,
    before: i64,
    limit: u32,
) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM signin_log WHERE id IN
           (SELECT id FROM signin_log WHERE at < ? ORDER BY id LIMIT ?)",
    )
    .bind(before)
    .bind(i64::from(limit))
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn trim_signins(db: &SqliteStore, keep: u64, limit: u32) -> Result<u64> {
    // Ids grow with insertion, so the newest `keep` rows are those above the id found
    // `keep` rows down; everything at or below it goes, oldest first.
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "DELETE FROM signin_log WHERE id IN
           (SELECT id FROM signin_log
            WHERE id <= (SELECT id FROM signin_log ORDER BY id DESC LIMIT 1 OFFSET ?)
            ORDER BY id LIMIT ?)",
    )
    .bind(keep)
    .bind(i64::from(limit))
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected())
}
