//! Fetching and caching issuer metadata: one fetch for many concurrent first
//! exchanges, bounded refetches under a flood of unknown kids, cached keys while the
//! issuer is down. Fetches are counted with `keyless_issuer_metadata_fetches_total`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tokio::task::JoinSet;

use crate::testkit::{
    DevCluster, Exchanger, Reply, Server, assert_refused, credential, with_header,
};

const SUBJECT: &str = "system:serviceaccount:ns1:app";

/// Spawns one exchange of `assertion` per call.
fn spawn_exchange(
    set: &mut JoinSet<Result<Reply>>,
    ex: &Exchanger,
    client_id: &str,
    assertion: &str,
) {
    let (ex, c, a) = (ex.clone(), client_id.to_string(), assertion.to_string());
    set.spawn(async move { ex.exchange(&c, &a).await });
}

async fn all_replies(mut set: JoinSet<Result<Reply>>) -> Result<Vec<Reply>> {
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r??);
    }
    Ok(out)
}

#[tokio::test]
async fn fifty_concurrent_first_exchanges_cause_one_fetch() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server = Server::start_trusting(&cluster).await?;
    let identity = server
        .identity_with_credential("rg-flight", "flight", credential(&cluster.issuer, SUBJECT))
        .await?;
    let token = cluster.mint("ns1", "app").await?;
    assert_eq!(server.issuer_fetches().await?, 0);

    let ex = server.exchanger();
    let mut set = JoinSet::new();
    for _ in 0..50 {
        spawn_exchange(&mut set, &ex, &identity.client_id, &token);
    }
    for r in all_replies(set).await? {
        assert_eq!(r.code(), 200, "{}", r.body);
    }
    assert_eq!(
        server.issuer_fetches().await?,
        1,
        "50 concurrent first exchanges must share one metadata fetch"
    );
    Ok(())
}

/// Single flight must hold however long the fetch takes: requests that arrive while
/// it is in flight (here across a second boundary) wait for it instead of fetching
/// again.
#[tokio::test]
async fn first_exchanges_waiting_on_a_slow_issuer_share_one_fetch() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server = Server::start_trusting(&cluster).await?;
    let identity = server
        .identity_with_credential("rg-slow", "slow", credential(&cluster.issuer, SUBJECT))
        .await?;
    let token = cluster.mint("ns1", "app").await?;
    let ex = server.exchanger();

    // The issuer hangs (its socket accepts, nothing answers) while requests pile up.
    cluster.signal("-STOP")?;
    let mut set = JoinSet::new();
    for _ in 0..10 {
        spawn_exchange(&mut set, &ex, &identity.client_id, &token);
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for _ in 0..10 {
        spawn_exchange(&mut set, &ex, &identity.client_id, &token);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.signal("-CONT")?;
    for r in all_replies(set).await? {
        assert_eq!(r.code(), 200, "{}", r.body);
    }
    assert_eq!(
        server.issuer_fetches().await?,
        1,
        "requests waiting for an in-flight fetch must not fetch again"
    );
    Ok(())
}

/// Within the refresh interval a flood of unknown kids costs no fetch at all. (That
/// it costs one per interval over time is tested on a manual clock in keyless-core.)
#[tokio::test]
async fn a_flood_of_unknown_kids_within_the_interval_costs_no_fetch() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server =
        Server::start_trusting_with(&cluster, &["--issuer-refresh-min-interval", "3600"]).await?;
    let identity = server
        .identity_with_credential("rg-flood", "flood", credential(&cluster.issuer, SUBJECT))
        .await?;
    let token = cluster.mint("ns1", "app").await?;
    let ex = server.exchanger();
    assert_eq!(ex.exchange(&identity.client_id, &token).await?.code(), 200);
    assert_eq!(server.issuer_fetches().await?, 1);

    let ex = Arc::new(ex);
    for batch in 0..10 {
        let mut set = JoinSet::new();
        for i in 0..20 {
            let kid = format!("random-{batch}-{i}-{}", uuid::Uuid::new_v4().simple());
            let forged = with_header(&token, &json!({"alg": "RS256", "kid": kid}));
            spawn_exchange(&mut set, &ex, &identity.client_id, &forged);
        }
        for r in all_replies(set).await? {
            assert_refused(&r, 401, "invalid_client", 7000272, &["random-"]);
        }
    }
    assert_eq!(
        server.issuer_fetches().await?,
        1,
        "200 unknown kids within the interval fetched nothing"
    );
    // The cached keys still serve the real token.
    assert_eq!(ex.exchange(&identity.client_id, &token).await?.code(), 200);
    Ok(())
}

#[tokio::test]
async fn cached_keys_keep_serving_while_the_issuer_is_down() -> Result<()> {
    let mut cluster = DevCluster::start(&[]).await?;
    let server =
        Server::start_trusting_with(&cluster, &["--issuer-refresh-min-interval", "1"]).await?;
    let identity = server
        .identity_with_credential("rg-down", "down", credential(&cluster.issuer, SUBJECT))
        .await?;
    let first = cluster.mint("ns1", "app").await?;
    let second = cluster.mint("ns1", "app").await?;
    let ex = server.exchanger();
    assert_eq!(ex.exchange(&identity.client_id, &first).await?.code(), 200);
    assert_eq!(server.issuer_fetches().await?, 1);

    cluster.kill().await?;
    for t in [&first, &second, &first, &second] {
        let r = ex.exchange(&identity.client_id, t).await?;
        assert_eq!(
            r.code(),
            200,
            "cached JWKS while the issuer is down: {}",
            r.body
        );
    }
    assert_eq!(
        server.issuer_fetches().await?,
        1,
        "a cache hit fetches nothing"
    );

    // Once the (1 s) refetch interval has passed, an unknown kid makes Keyless try
    // the issuer; the attempt fails, and the last good keys stay in use.
    let forged = with_header(&first, &json!({"alg": "RS256", "kid": "after-the-outage"}));
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.issuer_fetches().await? < 2 {
        assert!(Instant::now() < deadline, "no refresh was attempted");
        let r = ex.exchange(&identity.client_id, &forged).await?;
        assert_refused(&r, 401, "invalid_client", 7000272, &["after-the-outage"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.issuer_fetches().await?, 2, "one refresh attempt");
    for t in [&second, &first] {
        let r = ex.exchange(&identity.client_id, t).await?;
        assert_eq!(
            r.code(),
            200,
            "stale JWKS after a failed refresh: {}",
            r.body
        );
    }
    assert!(
        server.stderr().contains("serving the last good JWKS"),
        "the failed refresh is logged"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_issuer_without_cached_keys_is_50166() -> Result<()> {
    let mut cluster = DevCluster::start(&[]).await?;
    let token = cluster.mint("ns1", "app").await?;
    let issuer = cluster.issuer.clone();
    cluster.kill().await?;
    let server = Server::start_trusting(&cluster).await?;
    let identity = server
        .identity_with_credential("rg-gone", "gone", credential(&issuer, SUBJECT))
        .await?;
    let ex = server.exchanger();
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let r = ex.exchange(&identity.client_id, &token).await?;
    let desc = assert_refused(&r, 400, "invalid_request", 50166, &[&issuer]);
    // Which URL failed and why is the operator's to know, not the caller's.
    assert!(!desc.contains(&discovery), "{desc}");
    // Failures are rate-limited too: the next requests reuse the error.
    for _ in 0..5 {
        let r = ex.exchange(&identity.client_id, &token).await?;
        assert_refused(&r, 400, "invalid_request", 50166, &[&issuer]);
    }
    assert_eq!(server.issuer_fetches().await?, 1);
    Ok(())
}

#[tokio::test]
async fn an_issuer_beyond_the_tenant_quota_is_50166_while_the_first_keep_working() -> Result<()> {
    let first = DevCluster::start(&[]).await?;
    let second = DevCluster::start(&[]).await?;
    let ca = second.ca_path();
    let ca = ca.to_str().expect("UTF-8 temp path");
    let server = Server::start_trusting_with(
        &first,
        &["--trust-ca", ca, "--issuer-cache-per-tenant", "1"],
    )
    .await?;
    let within = server
        .identity_with_credential("rg-quota", "within", credential(&first.issuer, SUBJECT))
        .await?;
    let beyond = server
        .identity_with_credential("rg-quota", "beyond", credential(&second.issuer, SUBJECT))
        .await?;
    let ex = server.exchanger();
    let r = ex
        .exchange(&within.client_id, &first.mint("ns1", "app").await?)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);

    // The second issuer is reachable and valid, but the tenant's quota is full.
    let r = ex
        .exchange(&beyond.client_id, &second.mint("ns1", "app").await?)
        .await?;
    let desc = assert_refused(&r, 400, "invalid_request", 50166, &[&second.issuer]);
    assert!(
        !desc.contains("--issuer-cache"),
        "operator detail only: {desc}"
    );
    assert_eq!(
        server.issuer_fetches().await?,
        1,
        "a refused issuer is never fetched"
    );

    let r = ex
        .exchange(&within.client_id, &first.mint("ns1", "app").await?)
        .await?;
    assert_eq!(r.code(), 200, "the first issuer keeps working: {}", r.body);
    Ok(())
}
