//! The issuer metadata cache, seen through the token endpoint: keys are refreshed
//! after their TTL; an unknown kid refetches at most once per interval; failures are
//! rate-limited the same way; the last good keys are served while the issuer is down;
//! concurrent misses share one fetch. Bounded: idle and failed entries expire, each
//! tenant has its own quota of issuers, and outbound fetches are capped.

use std::sync::Arc;

use keyless_core::clock::ManualClock;
use keyless_core::federation::{CacheSettings, IssuerCache, IssuerError};
use tokio::task::JoinSet;

use crate::harness::{
    FETCHED_ISSUER, FakeFetcher, Harness, T0, exchange, fetched_issuer, sa_subject, settings,
    unpublished_key,
};

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

/// A cache over the fake fetcher on a manual clock, without a Keyless around it.
fn bare_cache(settings: CacheSettings) -> (IssuerCache, Arc<FakeFetcher>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let fetcher = Arc::new(FakeFetcher::new());
    fetcher.publish(&[&unpublished_key("k1")]);
    let cache = IssuerCache::new(fetcher.clone(), clock.clone(), settings);
    (cache, fetcher, clock)
}

const TENANT_A: &str = "tenant-a";
const TENANT_B: &str = "tenant-b";

#[tokio::test]
async fn an_issuer_unused_for_the_idle_ttl_leaves_the_cache() {
    let (cache, _, clock) = bare_cache(CacheSettings {
        idle_ttl_secs: 100,
        ..CacheSettings::default()
    });
    let iss = fetched_issuer(1);
    cache.keys(TENANT_A, &iss, Some("k1")).await.unwrap();
    clock.advance(99);
    // A use restarts the idle time.
    cache.keys(TENANT_A, &iss, Some("k1")).await.unwrap();
    clock.advance(99);
    assert_eq!(cache.sweep(), 0, "used 99 s ago: kept");
    assert_eq!(cache.tenant_issuers(TENANT_A), 1);
    clock.advance(1);
    assert_eq!(cache.sweep(), 1);
    assert_eq!(cache.tenant_issuers(TENANT_A), 0);
    assert_eq!(cache.cached_issuers(), 0);
    assert_eq!(cache.fetch_count(), 1);
    cache.keys(TENANT_A, &iss, Some("k1")).await.unwrap();
    assert_eq!(cache.fetch_count(), 2, "an expired issuer is fetched again");
}

#[tokio::test]
async fn an_issuer_never_fetched_successfully_leaves_after_the_failed_ttl() {
    let (cache, fetcher, clock) = bare_cache(CacheSettings {
        failed_ttl_secs: 600,
        ..CacheSettings::default()
    });
    let good = fetched_issuer(1);
    cache.keys(TENANT_A, &good, Some("k1")).await.unwrap();
    fetcher.set_down(true);
    let bad = fetched_issuer(2);
    let e = cache.keys(TENANT_A, &bad, Some("k1")).await.unwrap_err();
    assert!(matches!(e, IssuerError::Fetch(_)), "{e}");
    assert_eq!(cache.tenant_issuers(TENANT_A), 2);
    clock.advance(599);
    assert_eq!(cache.sweep(), 0);
    clock.advance(1);
    assert_eq!(cache.sweep(), 1, "only the failed issuer leaves");
    assert_eq!(cache.tenant_issuers(TENANT_A), 1);
    // The good issuer keeps its keys (the fetcher is still down).
    cache.keys(TENANT_A, &good, Some("k1")).await.unwrap();
}

#[tokio::test]
async fn maintenance_drops_idle_issuers() {
    let (h, client) = setup().await;
    h.exchange(&client, &h.fetched_token(&h.fetched_key, "ns1", "app"))
        .await
        .unwrap();
    assert_eq!(h.k.issuer_cache().cached_issuers(), 1);
    h.clock.advance(h.k.settings().issuer_cache.idle_ttl_secs);
    h.k.maintenance().await.unwrap();
    assert_eq!(h.k.issuer_cache().cached_issuers(), 0);
}

#[tokio::test]
async fn a_tenant_at_its_quota_neither_blocks_nor_evicts_another_tenants_issuers() {
    let (cache, _, clock) = bare_cache(CacheSettings {
        max_issuers_per_tenant: 3,
        idle_ttl_secs: 1_000,
        ..CacheSettings::default()
    });
    // B first holds one issuer of its own and one it shares with A.
    cache
        .keys(TENANT_B, &fetched_issuer(1), Some("k1"))
        .await
        .unwrap();
    cache
        .keys(TENANT_B, &fetched_issuer(100), Some("k1"))
        .await
        .unwrap();
    assert_eq!(cache.fetch_count(), 2);
    // A fills its quota; the shared issuer is not fetched again.
    for n in 1..=3 {
        cache
            .keys(TENANT_A, &fetched_issuer(n), Some("k1"))
            .await
            .unwrap();
    }
    assert_eq!(
        cache.fetch_count(),
        4,
        "issuer 1 is fetched once for both tenants"
    );
    let e = cache
        .keys(TENANT_A, &fetched_issuer(4), Some("k1"))
        .await
        .unwrap_err();
    assert_eq!(e, IssuerError::TenantQuota { limit: 3 });
    assert!(e.to_string().contains("--issuer-cache-per-tenant"), "{e}");
    assert_eq!(cache.fetch_count(), 4, "a refused issuer is not fetched");
    // B is neither evicted nor blocked: its issuers are hits, and it adds new ones.
    cache
        .keys(TENANT_B, &fetched_issuer(1), Some("k1"))
        .await
        .unwrap();
    cache
        .keys(TENANT_B, &fetched_issuer(100), Some("k1"))
        .await
        .unwrap();
    assert_eq!(cache.fetch_count(), 4);
    cache
        .keys(TENANT_B, &fetched_issuer(101), Some("k1"))
        .await
        .unwrap();
    assert_eq!(cache.tenant_issuers(TENANT_B), 3);
    // A's first issuers keep working.
    for n in 1..=3 {
        cache
            .keys(TENANT_A, &fetched_issuer(n), Some("k1"))
            .await
            .unwrap();
    }
    // Once A's issuers have gone idle (while B keeps using its own), A's slots free
    // up on insert; B's entries, the shared one included, stay.
    clock.advance(600);
    for n in [1, 100, 101] {
        cache
            .keys(TENANT_B, &fetched_issuer(n), Some("k1"))
            .await
            .unwrap();
    }
    clock.advance(400);
    cache
        .keys(TENANT_A, &fetched_issuer(4), Some("k1"))
        .await
        .unwrap();
    assert_eq!(cache.tenant_issuers(TENANT_A), 1);
    assert_eq!(cache.tenant_issuers(TENANT_B), 3);
    let fetches = cache.fetch_count();
    cache
        .keys(TENANT_A, &fetched_issuer(1), Some("k1"))
        .await
        .unwrap();
    assert_eq!(
        cache.fetch_count(),
        fetches,
        "the shared issuer kept its keys for B and A reuses them"
    );
}

#[tokio::test]
async fn at_most_the_configured_number_of_fetches_run_at_once() {
    const SLOTS: usize = 3;
    let mut s = settings();
    s.issuer_cache.max_concurrent_fetches = SLOTS;
    s.issuer_cache.fetch_slot_wait_ms = 0;
    let h = Harness::with_settings(s).await;
    let mut requests = Vec::new();
    for n in 1..=SLOTS + 1 {
        let iss = fetched_issuer(n);
        let id = h
            .federated_identity(&format!("slow{n}"), &iss, &sa_subject("ns1", "app"))
            .await;
        let token = Harness::sign(&h.fetched_key, &h.sa_claims(&iss, "ns1", "app"));
        requests.push((id.client_id, token));
    }
    h.fetcher.hold();
    let mut set = JoinSet::new();
    for (n, (client, token)) in requests.into_iter().enumerate() {
        let (k, tenant) = (Arc::clone(&h.k), h.tenant().to_string());
        set.spawn(async move { exchange(&k, &tenant, &client, &token, &format!("s{n}")).await });
    }
    h.fetcher.started(SLOTS as u64).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        h.fetcher.calls(),
        SLOTS as u64,
        "only {SLOTS} fetches started while the issuers are slow"
    );
    // The request without a slot has already failed, without waiting for the others.
    let refused = set.join_next().await.unwrap().unwrap().unwrap_err();
    assert_eq!(refused.code, 50166, "{refused}");
    assert!(
        refused.for_operator().contains("fetch slots were busy"),
        "{refused:?}"
    );
    h.fetcher.release();
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
}
