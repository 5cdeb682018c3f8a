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
    }
}

fn query(client: Option<&str>, failed: bool, since: Option<i64>) -> SignInQuery {
    SignInQuery {
        tenant_id: T.into(),
        client_id: client.map(str::to_string),
        failed_only: failed,
        since,
        limit: 100,
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
