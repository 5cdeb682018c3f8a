//! The issuer metadata cache, seen through the token endpoint: keys are refreshed
//! after their TTL; an unknown kid refetches at most once per interval; failures are
//! rate-limited the same way; the last good keys are served while the issuer is down;
//! concurrent misses share one fetch.

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::harness::{FETCHED_ISSUER, Harness, exchange, sa_subject, unpublished_key};

const TTL: i64 = 3600;
const INTERVAL: i64 = 5;

async fn setup() -> (Harness, String) {
    let h = Harness::new().await;
    let id = h
        .federated_identity("fetched", FETCHED_ISSUER, &sa_subject("ns1", "app"))
        .await;
    (h, id.client_id)
}

fn fetches(h: &Harness) -> u64 {
    h.k.issuer_cache().fetch_count()
}

#[tokio::test]
async fn keys_are_refetched_once_their_ttl_has_passed() {
    let (h, client) = setup().await;
    let t = h.fetched_token(&h.fetched_key, "ns1", "app");
    h.exchange(&client, &t).await.unwrap();
    h.clock.advance(TTL - 1);
    h.exchange(&client, &t).await.unwrap();
    assert_eq!(fetches(&h), 1, "fresh keys are a cache hit");
    h.clock.advance(1);
    let t = h.fetched_token(&h.fetched_key, "ns1", "app");
    h.exchange(&client, &t).await.unwrap();
    assert_eq!(fetches(&h), 2);
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let (h, client) = setup().await;
    h.exchange(&client, &h.fetched_token(&h.fetched_key, "ns1", "app"))
        .await
        .unwrap();
    let stranger = unpublished_key("not-published");
    let forged = h.fetched_token(&stranger, "ns1", "app");
    for _ in 0..INTERVAL {
        let e = h.exchange(&client, &forged).await.unwrap_err();
        assert_eq!(e.code, 7000272, "{e}");
        assert!(e.message.contains("not-published"), "{e}");
        h.clock.advance(1);
    }
    assert_eq!(fetches(&h), 1, "within the interval: no refetch");
    for _ in 0..20 {
        assert_eq!(
            h.exchange(&client, &forged).await.unwrap_err().code,
            7000272
        );
    }
    assert_eq!(
        fetches(&h),
        2,
        "one refetch after the interval, however many kids"
    );
}

#[tokio::test]
async fn a_rotated_issuer_key_is_picked_up_by_the_first_request_after_the_interval() {
    let (h, client) = setup().await;
    let old = h.fetched_token(&h.fetched_key, "ns1", "app");
    h.exchange(&client, &old).await.unwrap();
    let k2 = unpublished_key("fetched-k2");
    h.fetcher.publish(&[&h.fetched_key, &k2]);
    let new = h.fetched_token(&k2, "ns1", "app");
    h.clock.advance(INTERVAL - 1);
    let e = h.exchange(&client, &new).await.unwrap_err();
    assert_eq!(
        e.code, 7000272,
        "inside the interval the cached keys stand: {e}"
    );
    h.exchange(&client, &old).await.unwrap();
    h.clock.advance(1);
    h.exchange(&client, &new).await.unwrap();
    assert_eq!(fetches(&h), 2, "exactly one refresh");
    h.exchange(&client, &old).await.unwrap();
    h.exchange(&client, &new).await.unwrap();
    assert_eq!(fetches(&h), 2, "both keys served from the cache");
}

#[tokio::test]
async fn failed_fetches_are_rate_limited() {
    let (h, client) = setup().await;
    h.fetcher.set_down(true);
    let t = h.fetched_token(&h.fetched_key, "ns1", "app");
    for _ in 0..INTERVAL {
        let e = h.exchange(&client, &t).await.unwrap_err();
        assert_eq!(e.code, 50166, "{e}");
        // The reason is the operator's, never the caller's.
        assert!(!e.message.contains("connection refused"), "{e}");
        assert!(e.for_operator().contains("connection refused"), "{e:?}");
        h.clock.advance(1);
    }
    assert_eq!(fetches(&h), 1, "the failure is reused within the interval");
    assert_eq!(h.exchange(&client, &t).await.unwrap_err().code, 50166);
    assert_eq!(fetches(&h), 2);
    h.fetcher.set_down(false);
    h.clock.advance(INTERVAL);
    h.exchange(&client, &t).await.unwrap();
    assert_eq!(fetches(&h), 3, "the issuer is back");
}

#[tokio::test]
async fn the_last_good_keys_are_served_while_the_issuer_is_down() {
    let (h, client) = setup().await;
    h.exchange(&client, &h.fetched_token(&h.fetched_key, "ns1", "app"))
        .await
        .unwrap();
    h.fetcher.set_down(true);
    h.clock.advance(TTL + 1);
    let t = h.fetched_token(&h.fetched_key, "ns1", "app");
    h.exchange(&client, &t).await.unwrap();
    assert_eq!(
        fetches(&h),
        2,
        "the expired keys were refreshed, and it failed"
    );
    h.exchange(&client, &t).await.unwrap();
    h.clock.advance(INTERVAL);
    h.exchange(&client, &t).await.unwrap();
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let (h, client) = setup().await;
    let t = h.fetched_token(&h.fetched_key, "ns1", "app");
    h.fetcher.hold();
    let mut set = JoinSet::new();
    for n in 0..20 {
        let (k, tenant, client, t) = (
            Arc::clone(&h.k),
            h.tenant().to_string(),
            client.clone(),
            t.clone(),
        );
        set.spawn(async move { exchange(&k, &tenant, &client, &t, &format!("c{n}")).await });
    }
    h.fetcher.started(1).await;
    // Let every request reach the cache while the fetch hangs.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    h.fetcher.release();
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(fetches(&h), 1);
}

#[tokio::test]
async fn requests_for_a_new_kid_wait_for_the_refresh_in_flight() {
    let (h, client) = setup().await;
    h.exchange(&client, &h.fetched_token(&h.fetched_key, "ns1", "app"))
        .await
        .unwrap();
    let k2 = unpublished_key("fetched-k2");
    h.fetcher.publish(&[&h.fetched_key, &k2]);
    let new = h.fetched_token(&k2, "ns1", "app");
    h.clock.advance(INTERVAL);
    let calls = h.fetcher.calls();
    h.fetcher.hold();
    let mut set = JoinSet::new();
    for n in 0..8 {
        let (k, tenant, client, t) = (
            Arc::clone(&h.k),
            h.tenant().to_string(),
            client.clone(),
            new.clone(),
        );
        set.spawn(async move { exchange(&k, &tenant, &client, &t, &format!("w{n}")).await });
    }
    h.fetcher.started(calls + 1).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    h.fetcher.release();
    while let Some(r) = set.join_next().await {
        r.unwrap()
            .expect("a request for the new kid waits for the refresh in flight");
    }
    assert_eq!(fetches(&h), 2);
}
