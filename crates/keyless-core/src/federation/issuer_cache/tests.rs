//! Unit tests of the cache rules over a fake fetcher.

use std::collections::HashMap;

use super::*;
use crate::clock::ManualClock;
use keyless_jose::{Alg, SigningKey};
use std::sync::Mutex;

struct Fake {
    docs: Mutex<HashMap<String, Vec<u8>>>,
    calls: AtomicU64,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl MetadataFetcher for Fake {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if self.down.load(Ordering::SeqCst) {
            return Err(FetchError::Failed {
                url: url.into(),
                reason: "down".into(),
            });
        }
        self.docs
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .ok_or(FetchError::Failed {
                url: url.into(),
                reason: "404".into(),
            })
    }
}

const ISS: &str = "https://issuer.example/c1";
const TENANT: &str = "tenant-a";

fn fake(keys: &[&SigningKey]) -> Arc<Fake> {
    let f = Arc::new(Fake {
        docs: Mutex::new(HashMap::new()),
        calls: AtomicU64::new(0),
        down: false.into(),
    });
    publish(&f, keys);
    f
}

fn publish(f: &Fake, keys: &[&SigningKey]) {
    let mut d = f.docs.lock().unwrap();
    d.insert(
        format!("{ISS}/.well-known/openid-configuration"),
        serde_json::to_vec(&serde_json::json!({"issuer": ISS, "jwks_uri": format!("{ISS}/keys")}))
            .unwrap(),
    );
    let set = JwkSet {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    };
    d.insert(format!("{ISS}/keys"), serde_json::to_vec(&set).unwrap());
}

#[tokio::test]
async fn single_flight_and_bounded_refetch() {
    let k1 = SigningKey::generate(Alg::RS256, "k1".into()).unwrap();
    let f = fake(&[&k1]);
    let clock = Arc::new(ManualClock::new(1_000));
    let cache = Arc::new(IssuerCache::new(
        f.clone(),
        clock.clone(),
        CacheSettings::default(),
    ));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = cache.clone();
        tasks.push(tokio::spawn(async move {
            c.keys(TENANT, ISS, Some("k1")).await.map(|k| k.keys.len())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(1));
    }
    assert_eq!(
        cache.fetch_count(),
        1,
        "50 concurrent misses cause one fetch"
    );
    // A flood of unknown kids within the interval costs nothing more.
    for i in 0..100 {
        let k = cache
            .keys(TENANT, ISS, Some(&format!("bogus{i}")))
            .await
            .unwrap();
        assert!(!k.has_kid(Some(&format!("bogus{i}"))));
    }
    assert_eq!(cache.fetch_count(), 1);
    // After the interval, one unknown kid triggers one refetch, which finds a rotated key.
    let k2 = SigningKey::generate(Alg::RS256, "k2".into()).unwrap();
    publish(&f, &[&k1, &k2]);
    clock.advance(6);
    assert!(
        cache
            .keys(TENANT, ISS, Some("k2"))
            .await
            .unwrap()
            .has_kid(Some("k2"))
    );
    assert_eq!(cache.fetch_count(), 2);
}

#[tokio::test]
async fn serves_last_good_keys_while_issuer_is_down() {
    let k1 = SigningKey::generate(Alg::ES256, "k1".into()).unwrap();
    let f = fake(&[&k1]);
    let clock = Arc::new(ManualClock::new(1_000));
    let cache = IssuerCache::new(f.clone(), clock.clone(), CacheSettings::default());
    cache.keys(TENANT, ISS, Some("k1")).await.unwrap();
    f.down.store(true, Ordering::SeqCst);
    clock.advance(7200);
    assert!(
        cache
            .keys(TENANT, ISS, Some("k1"))
            .await
            .unwrap()
            .has_kid(Some("k1")),
        "stale keys served"
    );
}

#[tokio::test]
async fn stale_keys_stop_working_after_the_bound_and_recover_with_the_issuer() {
    let k1 = SigningKey::generate(Alg::ES256, "k1".into()).unwrap();
    let f = fake(&[&k1]);
    let clock = Arc::new(ManualClock::new(1_000));
    let settings = CacheSettings {
        max_stale_secs: 10_000,
        ..CacheSettings::default()
    };
    let cache = IssuerCache::new(f.clone(), clock.clone(), settings);
    cache.keys(TENANT, ISS, Some("k1")).await.unwrap();
    f.down.store(true, Ordering::SeqCst);
    // Past the TTL, inside the bound: the last good keys.
    clock.advance(9_999);
    assert!(cache.keys(TENANT, ISS, Some("k1")).await.is_ok());
    // Past the bound, counted from the last successful fetch (1 000): refused,
    // naming when the keys were fetched and why the refresh failed.
    clock.advance(2);
    match cache.keys(TENANT, ISS, Some("k1")).await {
        Err(IssuerError::Stale { since, reason }) => {
            assert_eq!(since, 1_000);
            assert!(reason.contains("down"), "{reason}");
        }
        other => panic!("expected stale keys to be refused, got {other:?}"),
    }
    // The issuer is back: the next refresh (after the retry interval) heals it.
    f.down.store(false, Ordering::SeqCst);
    clock.advance(10);
    assert!(cache.keys(TENANT, ISS, Some("k1")).await.is_ok());
}

#[tokio::test]
async fn keys_within_their_ttl_are_never_stale() {
    let k1 = SigningKey::generate(Alg::ES256, "k1".into()).unwrap();
    let f = fake(&[&k1]);
    let clock = Arc::new(ManualClock::new(1_000));
    // A bound below the TTL does not make fresh keys stale.
    let settings = CacheSettings {
        max_stale_secs: 60,
        ..CacheSettings::default()
    };
    let cache = IssuerCache::new(f.clone(), clock.clone(), settings);
    cache.keys(TENANT, ISS, Some("k1")).await.unwrap();
    clock.advance(3_000);
    assert!(cache.keys(TENANT, ISS, Some("k1")).await.is_ok());
    assert_eq!(cache.fetch_count(), 1);
}

#[tokio::test]
async fn rejects_mismatched_discovery_and_foreign_jwks() {
    let f = Arc::new(Fake {
        docs: Mutex::new(HashMap::new()),
        calls: AtomicU64::new(0),
        down: false.into(),
    });
    f.docs.lock().unwrap().insert(
        format!("{ISS}/.well-known/openid-configuration"),
        serde_json::to_vec(
            &serde_json::json!({"issuer": format!("{ISS}/"), "jwks_uri": format!("{ISS}/keys")}),
        )
        .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(1_000));
    let cache = IssuerCache::new(f.clone(), clock.clone(), CacheSettings::default());
    let e = cache.keys(TENANT, ISS, None).await.unwrap_err();
    assert!(e.to_string().contains("names issuer"), "{e}");
    f.docs.lock().unwrap().insert(
        format!("{ISS}/.well-known/openid-configuration"),
        serde_json::to_vec(
            &serde_json::json!({"issuer": ISS, "jwks_uri": "https://evil.example/keys"}),
        )
        .unwrap(),
    );
    clock.advance(10);
    let e = cache.keys(TENANT, ISS, None).await.unwrap_err();
    assert!(e.to_string().contains("issuer's host"), "{e}");
    // Failures are rate-limited too.
    let calls = f.calls.load(Ordering::SeqCst);
    for _ in 0..20 {
        let _ = cache.keys(TENANT, ISS, None).await;
    }
    assert_eq!(f.calls.load(Ordering::SeqCst), calls);
}
