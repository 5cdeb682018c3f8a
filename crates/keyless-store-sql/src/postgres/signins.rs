//! PostgreSQL: the sign-in log.

use keyless_store::{SignInQuery, SignInRecord};

use super::rows::*;
use super::{PgStore, storable};
use crate::error::Result;

pub(super) async fn insert_signins(db: &PgStore, records: &[SignInRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    // One statement for the whole batch (column arrays, unnested into rows). No
    // notification: see the module docs. Text is made storable first (see `storable`).
    let text =
        |f: fn(&SignInRecord) -> &str| records.iter().map(|r| storable(f(r))).collect::<Vec<_>>();
    let opt = |f: fn(&SignInRecord) -> Option<&str>| {
        records
            .iter()
            .map(|r| f(r).map(storable))
            .collect::<Vec<_>>()
    };
    sqlx::query(
        "INSERT INTO signin_log (at, tenant_id, client_id, principal_id, issuer, subject, resource, success, error_code, error, client_ip, correlation_id, latency_us, count)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::boolean[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::bigint[])",
    )
    .bind(records.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(text(|r| &r.tenant_id))
    .bind(text(|r| &r.client_id))
    .bind(opt(|r| r.principal_id.as_deref()))
    .bind(opt(|r| r.issuer.as_deref()))
    .bind(opt(|r| r.subject.as_deref()))
    .bind(opt(|r| r.resource.as_deref()))
    .bind(records.iter().map(|r| r.success).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.error_code.map(i64::from)).collect::<Vec<_>>())
    .bind(opt(|r| r.error.as_deref()))
    .bind(opt(|r| r.client_ip.as_deref()))
    .bind(text(|r| &r.correlation_id))
    .bind(records.iter().map(|r| r.latency_us).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.count).collect::<Vec<_>>())
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub(super) async fn query_signins(db: &PgStore, q: &SignInQuery) -> Result<Vec<SignInRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM signin_log
         WHERE tenant_id = $1
           AND ($2::text IS NULL OR client_id = $2)
           AND (NOT $3::boolean OR NOT success)
           AND ($4::bigint IS NULL OR at >= $4)
           AND ($6::bigint IS NULL OR id < $6)
         ORDER BY id DESC LIMIT $5",
    )
    .bind(&q.tenant_id)
    .bind(&q.client_id)
    .bind(q.failed_only)
    .bind(q.since)
    .bind(i64::from(q.limit))
    .bind(q.before_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(signin_from_row).collect()
}

pub(super) async fn delete_signins_before(db: &PgStore, before: i64, limit: u32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM signin_log WHERE id IN
           (SELECT id FROM signin_log WHERE at < $1 ORDER BY id LIMIT $2)",
    )
    .bind(before)
    .bind(i64::from(limit))
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn trim_signins(db: &PgStore, keep: u64, limit: u32) -> Result<u64> {
    // Ids grow with insertion, so the newest `keep` rows are those above the id found
    // `keep` rows down; everything at or below it goes, oldest first.
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "DELETE FROM signin_log WHERE id IN
           (SELECT id FROM signin_log
            WHERE id <= (SELECT id FROM signin_log ORDER BY id DESC OFFSET $1 LIMIT 1)
            ORDER BY id LIMIT $2)",
    )
    .bind(keep)
    .bind(i64::from(limit))
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}
