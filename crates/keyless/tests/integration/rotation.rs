//! Key rotation end to end: the issuer's (a rotated key is picked up through a refresh
//! on an unknown kid, at most once per `--issuer-refresh-min-interval`) and Keyless'
//! own, under continuous exchanges. The interval's arithmetic is tested on a manual
//! clock in keyless-core's domain tests; here it is set so that no assertion depends
//! on how fast the machine is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::testkit::{
    DevCluster, Exchanger, Identity, KEYLESS_API, SUB_API, Server, assert_refused, credential,
    jwt_header, role_id, with_header,
};

const SUBJECT: &str = "system:serviceaccount:ns1:app";

fn kid(token: &str) -> String {
    jwt_header(token)["kid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Server clocks count whole seconds: with a 2 s minimum interval, requests that
/// arrive together never straddle it, while the wait for it stays short. The interval
/// itself is tested on a manual clock in keyless-core's domain tests.
const SHORT_INTERVAL: &str = "2";

/// Waits until the short refresh interval has passed since `fetched_at`.
async fn past_the_short_interval(fetched_at: Instant) {
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(fetched_at.elapsed())).await;
}

#[tokio::test]
async fn within_the_refresh_interval_an_unknown_kid_is_refused_without_a_fetch() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server =
        Server::start_trusting_with(&cluster, &["--issuer-refresh-min-interval", "3600"]).await?;
    let identity = server
        .identity_with_credential("rg-rot", "rotated", credential(&cluster.issuer, SUBJECT))
        .await?;
    let ex = server.exchanger();
    let old = cluster.mint("ns1", "app").await?;
    assert_eq!(ex.exchange(&identity.client_id, &old).await?.code(), 200);
    assert_eq!(server.issuer_fetches().await?, 1);

    let forged = with_header(&old, &json!({"alg": "RS256", "kid": "unknown-kid-42"}));
    let r = ex.exchange(&identity.client_id, &forged).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        7000272,
        &["unknown-kid-42", "retry in a few seconds"],
    );

    let old_kid = kid(&old);
    let new_kid = cluster.rotate().await?;
    assert_ne!(new_kid, old_kid);
    let published = cluster.jwks_kids().await?;
    assert!(
        published.contains(&old_kid) && published.contains(&new_kid),
        "{published:?}"
    );
    let new = cluster.mint("ns1", "app").await?;
    assert_eq!(kid(&new), new_kid);
    let r = ex.exchange(&identity.client_id, &new).await?;
    assert_refused(&r, 401, "invalid_client", 7000272, &[&new_kid]);
    assert_eq!(server.issuer_fetches().await?, 1, "rate-limited refresh");
    assert_eq!(ex.exchange(&identity.client_id, &old).await?.code(), 200);
    Ok(())
}

#[tokio::test]
async fn after_the_refresh_interval_a_rotated_key_is_picked_up_with_one_fetch() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server =
        Server::start_trusting_with(&cluster, &["--issuer-refresh-min-interval", "1"]).await?;
    let identity = server
        .identity_with_credential("rg-rot", "rotated", credential(&cluster.issuer, SUBJECT))
        .await?;
    let ex = server.exchanger();
    let old = cluster.mint("ns1", "app").await?;
    assert_eq!(ex.exchange(&identity.client_id, &old).await?.code(), 200);
    assert_eq!(server.issuer_fetches().await?, 1);
    let new_kid = cluster.rotate().await?;
    let new = cluster.mint("ns1", "app").await?;

    // The first request with the new kid in a later second than the first fetch
    // refreshes; until then (at most a second) the cached keys stand.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = ex.exchange(&identity.client_id, &new).await?;
        if r.code() == 200 {
            break;
        }
        assert_refused(&r, 401, "invalid_client", 7000272, &[&new_kid]);
        assert!(
            Instant::now() < deadline,
            "the rotated key was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.issuer_fetches().await?, 2, "exactly one refresh");

    // Both keys are now served from the cache.
    for t in [&old, &new, &old] {
        assert_eq!(ex.exchange(&identity.client_id, t).await?.code(), 200);
    }
    assert_eq!(server.issuer_fetches().await?, 2);
    Ok(())
}

/// Single flight for unknown kids: requests for a kid a refresh is already fetching
/// wait for that refresh instead of failing with the stale keys.
#[tokio::test]
async fn requests_for_a_new_kid_wait_for_the_refresh_in_flight() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server =
        Server::start_trusting_with(&cluster, &["--issuer-refresh-min-interval", SHORT_INTERVAL])
            .await?;
    let identity = server
        .identity_with_credential("rg-wait", "waiting", credential(&cluster.issuer, SUBJECT))
        .await?;
    let ex = server.exchanger();
    let old = cluster.mint("ns1", "app").await?;
    assert_eq!(ex.exchange(&identity.client_id, &old).await?.code(), 200);
    let fetched_at = Instant::now();
    cluster.rotate().await?;
    let new = cluster.mint("ns1", "app").await?;

    // Past the refetch interval, with the issuer slow to answer: the requests pile up
    // behind the one refresh while the issuer is stopped.
    past_the_short_interval(fetched_at).await;
    cluster.signal("-STOP")?;
    let mut set = JoinSet::new();
    for _ in 0..8 {
        let (ex, c, t) = (ex.clone(), identity.client_id.clone(), new.clone());
        set.spawn(async move { ex.exchange(&c, &t).await });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.signal("-CONT")?;
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r??;
        if r.code() != 200 {
            failed.push(r.body);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 8 requests did not wait for the refresh in flight: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(server.issuer_fetches().await?, 2);
    Ok(())
}

struct Outcome {
    assertion_kid: String,
    status: u16,
    body: Value,
    access_token: Option<String>,
}

/// Workers exchanging the current assertion continuously (bounded: 100 each).
struct Load {
    current: Arc<RwLock<String>>,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    /// How many exchanges have completed.
    done: Arc<tokio::sync::watch::Sender<usize>>,
    workers: JoinSet<Result<()>>,
}

impl Load {
    fn start(ex: &Exchanger, client_id: &str, assertion: &str, workers: usize) -> Load {
        let current = Arc::new(RwLock::new(assertion.to_string()));
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
        let done = Arc::new(tokio::sync::watch::Sender::new(0usize));
        let mut set = JoinSet::new();
        for _ in 0..workers {
            let (ex, c) = (ex.clone(), client_id.to_string());
            let (current, stop, outcomes) = (current.clone(), stop.clone(), outcomes.clone());
            let done = done.clone();
            set.spawn(async move {
                for _ in 0..100 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let t = current.read().unwrap().clone();
                    let r = ex.exchange(&c, &t).await?;
                    outcomes.lock().unwrap().push(Outcome {
                        assertion_kid: kid(&t),
                        status: r.code(),
                        access_token: r.body["access_token"].as_str().map(str::to_string),
                        body: r.body,
                    });
                    done.send_modify(|n| *n += 1);
                    tokio::time::sleep(Duration::from_millis(90)).await;
                }
                anyhow::Ok(())
            });
        }
        Load {
            current,
            stop,
            outcomes,
            done,
            workers: set,
        }
    }

    /// Waits until `more` exchanges beyond those done so far have completed.
    async fn run(&self, more: usize) -> Result<()> {
        let mut rx = self.done.subscribe();
        let target = *rx.borrow() + more;
        tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|n| *n >= target))
            .await
            .context("the load stalled")??;
        Ok(())
    }

    /// Every worker uses `assertion` from now on.
    fn switch_to(&self, assertion: &str) {
        *self.current.write().unwrap() = assertion.to_string();
    }

    /// Stops the workers; asserts that no exchange failed.
    async fn finish(mut self) -> Result<Vec<Outcome>> {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(w) = self.workers.join_next().await {
            w??;
        }
        let outcomes = std::mem::take(&mut *self.outcomes.lock().unwrap());
        let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200).collect();
        assert!(
            failed.is_empty(),
            "{} of {} exchanges failed during rotation; first: {} (assertion kid {})",
            failed.len(),
            outcomes.len(),
            failed
                .first()
                .map(|o| o.body.to_string())
                .unwrap_or_default(),
            failed
                .first()
                .map(|o| o.assertion_kid.clone())
                .unwrap_or_default(),
        );
        Ok(outcomes)
    }
}

/// A managed identity trusting the dev cluster, with Reader at the subscription so
/// its tokens can call the management API.
async fn reader_identity(server: &Server, cluster: &DevCluster) -> Result<Identity> {
    let identity = server
        .identity_with_credential("rg-load", "loaded", credential(&cluster.issuer, SUBJECT))
        .await?;
    let r = server
        .put_assignment(
            &server.sub_path(),
            &uuid::Uuid::new_v4().to_string(),
            role_id("Reader"),
            &identity.principal_id,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    Ok(identity)
}

/// Rotates Keyless' signing key; returns the new kid.
async fn rotate_keyless(server: &Server) -> Result<String> {
    let r = server
        .armv(
            Method::POST,
            "/providers/Keyless/signingKeys/rotate",
            KEYLESS_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(r.body["kid"].as_str().unwrap().to_string())
}

/// The last access token signed with Keyless key `k` works on the management API.
async fn assert_token_of_kid_works(server: &Server, outcomes: &[Outcome], k: &str) -> Result<()> {
    let token = outcomes
        .iter()
        .filter_map(|o| o.access_token.clone())
        .rfind(|t| kid(t) == k)
        .unwrap_or_else(|| panic!("no access token signed with {k}"));
    let r = server
        .arm_raw(
            Method::GET,
            &format!("{}?api-version={SUB_API}", server.sub_path()),
            Some(&format!("Bearer {token}")),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "token with kid {k}: {}", r.body);
    assert_eq!(
        r.body["subscriptionId"],
        json!(server.admin.subscription_id),
        "{}",
        r.body
    );
    Ok(())
}

#[tokio::test]
async fn keyless_key_rotation_under_load_fails_no_request() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server = Server::start_trusting(&cluster).await?;
    let identity = reader_identity(&server, &cluster).await?;
    let before = server.jwks_kids().await?;
    assert_eq!(before.len(), 1);
    let assertion = cluster.mint("ns1", "app").await?;
    let ex = server.exchanger();

    let load = Load::start(&ex, &identity.client_id, &assertion, 4);
    load.run(20).await?;
    let new_kid = rotate_keyless(&server).await?;
    assert!(!before.contains(&new_kid));
    load.run(20).await?;
    let outcomes = load.finish().await?;

    // Tokens signed before and after the rotation both work on ARM.
    assert_token_of_kid_works(&server, &outcomes, &before[0]).await?;
    assert_token_of_kid_works(&server, &outcomes, &new_kid).await?;
    Ok(())
}

#[tokio::test]
async fn issuer_and_keyless_key_rotation_under_load_fail_no_request() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server =
        Server::start_trusting_with(&cluster, &["--issuer-refresh-min-interval", SHORT_INTERVAL])
            .await?;
    let identity = reader_identity(&server, &cluster).await?;
    let keyless_before = server.jwks_kids().await?;
    assert_eq!(keyless_before.len(), 1);

    let ex = server.exchanger();
    let first = cluster.mint("ns1", "app").await?;
    assert_eq!(ex.exchange(&identity.client_id, &first).await?.code(), 200);
    let fetched_at = Instant::now();

    let load = Load::start(&ex, &identity.client_id, &first, 4);

    // (a) Past the refetch interval, the dev cluster rotates and the workers switch
    // to tokens signed with the new key, all at once.
    past_the_short_interval(fetched_at).await;
    let new_issuer_kid = cluster.rotate().await?;
    let rotated = cluster.mint("ns1", "app").await?;
    assert_eq!(kid(&rotated), new_issuer_kid);
    load.switch_to(&rotated);

    // (b) Keyless rotates its own signing key.
    load.run(20).await?;
    let new_keyless_kid = rotate_keyless(&server).await?;
    assert!(!keyless_before.contains(&new_keyless_kid));
    load.run(20).await?;
    let outcomes = load.finish().await?;

    let with_new_issuer_key = outcomes
        .iter()
        .filter(|o| o.assertion_kid == new_issuer_kid)
        .count();
    assert!(
        with_new_issuer_key > 0 && with_new_issuer_key < outcomes.len(),
        "the load spans the issuer's rotation ({with_new_issuer_key} of {})",
        outcomes.len()
    );
    assert_eq!(
        server.issuer_fetches().await?,
        2,
        "one refresh for the new kid"
    );
    assert_token_of_kid_works(&server, &outcomes, &keyless_before[0]).await?;
    assert_token_of_kid_works(&server, &outcomes, &new_keyless_kid).await?;
    Ok(())
}
