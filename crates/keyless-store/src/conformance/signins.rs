//! The sign-in log.

use std::sync::Arc;

use super::fixtures::*;
use crate::StoreError;
use crate::records::*;
use crate::store::Store;

fn signin(at: i64, ok: bool, client: &str) -> SignInRecord {
    SignInRecord {
        id: 0,
        at,
        tenant_id: T.into(),
        client_id: client.into(),
        principal_id: None,
        issuer: Some("https://i".into()),
        subject: Some("s".into()),
        resource: None,
        success: ok,
        error_code: (!ok).then_some(700213),
        error: None,
        client_ip: Some("127.0.0.1".into()),
        correlation_id: "c".into(),
        latency_us: 5,
        count: 1,
    }
}

fn query(client: Option<&str>, failed: bool, since: Option<i64>) -> SignInQuery {
    SignInQuery {
        tenant_id: T.into(),
        client_id: client.map(str::to_string),
        failed_only: failed,
        since,
        limit: 100,
        before_id: None,
    }
}

/// The log is read newest first, filtered by client, failure, time and tenant.
pub async fn signin_log_filters(s: Arc<dyn Store>) -> Result<(), StoreError> {
    s.insert_signins(&[
        signin(10, true, "a"),
        signin(20, false, "a"),
        signin(30, false, "b"),
    ])
    .await?;
    let all = s.query_signins(&query(None, false, None)).await?;
    check(all.len() == 3 && all[0].at == 30, "newest first");
    check(
        s.query_signins(&query(Some("a"), false, None)).await?.len() == 2,
        "by client",
    );
    let failed = s.query_signins(&query(None, true, None)).await?;
    check(
        failed.len() == 2 && failed[1].error_code == Some(700213),
        "failures with codes",
    );
    check(
        s.query_signins(&query(None, false, Some(20))).await?.len() == 2,
        "since",
    );
    let mut limited = query(None, false, None);
    limited.limit = 1;
    check(s.query_signins(&limited).await?.len() == 1, "limit");
    // Pages: rows before a row id, newest first.
    let all = s.query_signins(&query(None, false, None)).await?;
    if let Some(first) = all.first() {
        let mut next = query(None, false, None);
        next.before_id = Some(first.id);
        let rest = s.query_signins(&next).await?;
        check(
            rest.iter().map(|r| r.id).collect::<Vec<_>>()
                == all.iter().skip(1).map(|r| r.id).collect::<Vec<_>>(),
            "before_id starts the next page after that row",
        );
    }
    let other = SignInQuery {
        tenant_id: "other".into(),
        limit: 10,
        ..SignInQuery::default()
    };
    check(
        s.query_signins(&other).await?.is_empty(),
        "tenants are separate",
    );
    Ok(())
}

/// Logged fields come from callers: whatever they contain, the batch is kept whole
/// (PostgreSQL cannot store U+0000 in text; it keeps U+FFFD there instead).
pub async fn signin_batch_with_nul_is_kept_whole(s: Arc<dyn Store>) -> Result<(), StoreError> {
    let mut odd = signin(40, false, "x\0y");
    odd.tenant_id = "nul".into();
    odd.subject = Some("sub\0ject".into());
    odd.error = Some("bad \0 input".into());
    let mut plain = odd.clone();
    plain.client_id = "z".into();
    s.insert_signins(&[odd, plain]).await?;
    let logged = s
        .query_signins(&SignInQuery {
            tenant_id: "nul".into(),
            limit: 10,
            ..SignInQuery::default()
        })
        .await?;
    check(
        logged.len() == 2,
        "a batch with NUL characters is stored whole",
    );
    Ok(())
}

/// Retention: rows logged before the cut-off are deleted, the rest stay.
pub async fn signin_retention_deletes_old_rows(s: Arc<dyn Store>) -> Result<(), StoreError> {
    s.insert_signins(&[
        signin(100, false, "a"),
        signin(200, true, "a"),
        signin(300, false, "b"),
    ])
    .await?;
    check(
        s.delete_signins_before(200, 1000).await? == 1,
        "one row is older than the cut-off",
    );
    let left = s.query_signins(&query(None, false, None)).await?;
    check(
        left.iter().map(|r| r.at).collect::<Vec<_>>() == vec![300, 200],
        "rows at or after the cut-off stay",
    );
    check(
        s.delete_signins_before(200, 1000).await? == 0,
        "deleting again finds nothing",
    );
    // In chunks: at most `limit` rows per call, the oldest first.
    s.insert_signins(&[
        signin(210, false, "c"),
        signin(220, false, "d"),
        signin(230, false, "e"),
    ])
    .await?;
    check(
        s.delete_signins_before(1_000, 2).await? == 2,
        "a chunk deletes at most its limit",
    );
    let left = s.query_signins(&query(None, false, None)).await?;
    check(
        left.iter().map(|r| r.at).collect::<Vec<_>>() == vec![230, 220, 210],
        "the oldest rows went first",
    );
    Ok(())
}

/// The row cap deletes the oldest rows, across tenants, and keeps the newest.
pub async fn signin_cap_keeps_the_newest(s: Arc<dyn Store>) -> Result<(), StoreError> {
    let mut other = signin(5, false, "o");
    other.tenant_id = "other".into();
    s.insert_signins(&[other]).await?;
    for at in 10..15 {
        s.insert_signins(&[signin(at, false, "a")]).await?;
    }
    check(
        s.trim_signins(10, 1000).await? == 0,
        "nothing to trim under the cap",
    );
    check(
        s.trim_signins(3, 2).await? == 2,
        "a chunk trims at most its limit",
    );
    check(
        s.trim_signins(3, 1000).await? == 1,
        "the rest of the rows beyond the cap are deleted",
    );
    let left = s.query_signins(&query(None, false, None)).await?;
    check(
        left.iter().map(|r| r.at).collect::<Vec<_>>() == vec![14, 13, 12],
        "the newest rows stay",
    );
    check(
        s.trim_signins(0, 1000).await? == 3,
        "a cap of zero empties the log",
    );
    Ok(())
}

/// How many requests a row stands for is kept.
pub async fn signin_count_round_trips(s: Arc<dyn Store>) -> Result<(), StoreError> {
    let mut many = signin(10, false, "a");
    many.count = 200;
    s.insert_signins(&[many, signin(20, true, "a")]).await?;
    let logged = s.query_signins(&query(None, false, None)).await?;
    check(
        logged.iter().map(|r| r.count).collect::<Vec<_>>() == vec![1, 200],
        "counts as written",
    );
    Ok(())
}
