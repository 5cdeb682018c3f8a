//! Every token request leaves a sign-in record, successful or not. The log is written
//! in the background; the tests await it, they do not sleep.

use crate::harness::{Harness, STATIC_ISSUER, exchange, sa_subject, settings};

#[tokio::test]
async fn a_success_and_a_failure_are_both_recorded_with_what_was_presented() {
    let h = Harness::new().await;
    let id = h
        .federated_identity("logged", STATIC_ISSUER, &sa_subject("ns1", "app"))
        .await;
    exchange(
        &h.k,
        h.tenant(),
        &id.client_id,
        &h.static_token("ns1", "app"),
        "ok-1",
    )
    .await
    .unwrap();
    h.clock.advance(5);
    let e = exchange(
        &h.k,
        h.tenant(),
        &id.client_id,
        &h.static_token("ns1", "intruder"),
        "bad-1",
    )
    .await
    .unwrap_err();
    h.k.signin_log().settled(2).await;
    assert_eq!(h.k.signin_log().written(), 2);

    let rows =
        h.k.query_signins(&h.admin.caller, Some(&id.client_id), false, None, 10, None)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let bad = rows.iter().find(|r| r.correlation_id == "bad-1").unwrap();
    let ok = rows.iter().find(|r| r.correlation_id == "ok-1").unwrap();

    assert!(ok.success && ok.error_code.is_none());
    assert_eq!(ok.at, h.k.now() - 5);
    assert_eq!(ok.principal_id.as_deref(), Some(id.principal_id.as_str()));
    assert_eq!(ok.issuer.as_deref(), Some(STATIC_ISSUER));
    assert_eq!(
        ok.subject.as_deref(),
        Some(sa_subject("ns1", "app").as_str())
    );
    assert_eq!(ok.client_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(
        ok.resource.as_deref(),
        Some(h.k.settings().public.resource_manager().as_str())
    );

    assert!(!bad.success);
    assert_eq!(bad.at, h.k.now());
    assert_eq!(bad.error_code, Some(e.code));
    assert_eq!(bad.error.as_deref(), Some(e.message.as_str()));
    assert_eq!(
        bad.subject.as_deref(),
        Some(sa_subject("ns1", "intruder").as_str())
    );

    let failed =
        h.k.query_signins(&h.admin.caller, Some(&id.client_id), true, None, 10, None)
            .await
            .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].correlation_id, "bad-1");
}

#[tokio::test]
async fn a_request_refused_before_any_credential_is_read_is_recorded_too() {
    let h = Harness::new().await;
    let e = exchange(
        &h.k,
        h.tenant(),
        "00000000-0000-4000-8000-00000000dead",
        "x.y.z",
        "nobody",
    )
    .await
    .unwrap_err();
    h.k.signin_log().settled(1).await;
    let rows =
        h.k.query_signins(&h.admin.caller, None, true, None, 10, None)
            .await
            .unwrap();
    let row = rows.iter().find(|r| r.correlation_id == "nobody").unwrap();
    assert_eq!(row.error_code, Some(e.code));
    assert_eq!(row.client_id, "00000000-0000-4000-8000-00000000dead");
}

/// A garbage request from an unknown client: refused before any key is read.
async fn garbage(h: &Harness, client_id: &str, correlation_id: &str) {
    exchange(&h.k, h.tenant(), client_id, "x.y.z", correlation_id)
        .await
        .unwrap_err();
}

#[tokio::test]
async fn identical_failures_close_together_are_one_row_with_a_count() {
    let mut settings = settings();
    settings.signin_log.aggregation_window = std::time::Duration::from_secs(2);
    let h = Harness::with_settings(settings).await;
    let flood = "00000000-0000-4000-8000-00000000f100";
    for i in 0..200 {
        garbage(&h, flood, &format!("flood-{i}")).await;
    }
    garbage(&h, "00000000-0000-4000-8000-00000000f200", "other").await;
    h.k.signin_log().settled(201).await;
    assert_eq!(h.k.signin_log().written(), 201);

    let rows =
        h.k.query_signins(&h.admin.caller, Some(flood), true, None, 10, None)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].count, 200);
    assert_eq!(
        rows[0].correlation_id, "flood-0",
        "the first request speaks for all"
    );
    let other =
        h.k.query_signins(
            &h.admin.caller,
            Some("00000000-0000-4000-8000-00000000f200"),
            true,
            None,
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].count, 1, "a different client is a different row");
}

#[tokio::test]
async fn successes_are_never_folded() {
    let h = Harness::new().await;
    let id = h
        .federated_identity("twice", STATIC_ISSUER, &sa_subject("ns1", "app"))
        .await;
    for c in ["ok-1", "ok-2"] {
        exchange(
            &h.k,
            h.tenant(),
            &id.client_id,
            &h.static_token("ns1", "app"),
            c,
        )
        .await
        .unwrap();
    }
    h.k.signin_log().settled(2).await;
    let rows =
        h.k.query_signins(&h.admin.caller, Some(&id.client_id), false, None, 10, None)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.success && r.count == 1));
}

#[tokio::test]
async fn housekeeping_deletes_rows_past_the_retention() {
    let mut settings = settings();
    settings.signin_log.retention_secs = 100;
    let h = Harness::with_settings(settings).await;
    garbage(&h, "00000000-0000-4000-8000-0000000000a1", "old").await;
    h.clock.advance(150);
    garbage(&h, "00000000-0000-4000-8000-0000000000a2", "new").await;
    h.k.signin_log().settled(2).await;

    h.k.maintenance().await.unwrap();
    let rows =
        h.k.query_signins(&h.admin.caller, None, false, None, 10, None)
            .await
            .unwrap();
    let kept: Vec<_> = rows.iter().map(|r| r.correlation_id.as_str()).collect();
    assert_eq!(kept, ["new"]);
}

#[tokio::test]
async fn housekeeping_keeps_the_newest_rows_under_the_cap() {
    let mut settings = settings();
    settings.signin_log.max_rows = 2;
    let h = Harness::with_settings(settings).await;
    for (i, c) in ["c1", "c2", "c3"].into_iter().enumerate() {
        garbage(&h, &format!("00000000-0000-4000-8000-00000000000{i}"), c).await;
        // One row at a time, so insertion order is request order.
        h.k.signin_log().settled(i as u64 + 1).await;
    }
    h.k.maintenance().await.unwrap();
    let rows =
        h.k.query_signins(&h.admin.caller, None, false, None, 10, None)
            .await
            .unwrap();
    let kept: Vec<_> = rows.iter().map(|r| r.correlation_id.as_str()).collect();
    assert_eq!(kept, ["c3", "c2"]);
}
