//! Per-issuer cache of discovery + JWKS.
//!
//! * A hit (fresh keys holding the token's `kid`) takes no lock and makes no await.
//! * Keys are refreshed when they expire, or at once on an unknown `kid` unless the
//!   issuer was fetched within `unknown_kid_min_interval_secs` — so a rotated key is
//!   picked up quickly while a flood of random kids costs one fetch per interval.
//! * Refreshes are single-flight per issuer: however many requests wait, one fetch.
//! * When a refresh fails the last good keys keep being served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;
use keyless_jose::{JwkSet, VerifyingKey};

use super::fetcher::{FetchError, MetadataFetcher};
use crate::clock::Clock;

/// Cache tuning.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// How long fetched keys are used before a refresh, seconds.
    pub ttl_secs: i64,
    /// Minimum time between fetches caused by unknown kids or failures, seconds.
    pub unknown_kid_min_interval_secs: i64,
    /// Most keys kept per issuer.
    pub max_keys: usize,
    /// Most issuers cached at once.
    pub max_issuers: usize,
    /// How long, counted from the last successful fetch, an issuer's keys are still
    /// used while the issuer cannot be reached, seconds. Past it, exchanges fail: a
    /// key the issuer has withdrawn (say, after a leak) must stop working even when
    /// the issuer is unreachable.
    pub max_stale_secs: i64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 3600,
            unknown_kid_min_interval_secs: 5,
            max_keys: 100,
            max_issuers: 10_000,
            max_stale_secs: 86_400,
        }
    }
}

/// An issuer's verified-to-be-its-own keys.
#[derive(Debug)]
pub struct IssuerKeys {
    /// The issuer.
    pub issuer: String,
    /// Its signing keys.
    pub keys: Vec<VerifyingKey>,
    /// When they were fetched (Unix seconds); `i64::MAX` for static keys.
    pub fetched_at: i64,
    /// Where they came from.
    pub source: String,
}

impl IssuerKeys {
    /// Static keys registered by an operator (no fetch ever).
    pub fn from_static(issuer: &str, jwks: &JwkSet) -> Self {
        let (keys, _) = VerifyingKey::from_jwk_set(jwks);
        Self {
            issuer: issuer.to_string(),
            keys,
            fetched_at: i64::MAX,
            source: "static JWKS".into(),
        }
    }

    /// Whether a key with `kid` is present (`None`: any key might do).
    pub fn has_kid(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(k) => self.keys.iter().any(|key| key.kid() == Some(k)),
            None => !self.keys.is_empty(),
        }
    }
}

/// Why an issuer's keys could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    /// Fetching failed and no earlier keys exist.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The documents were fetched but are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The last good keys are older than the staleness bound and refreshing failed.
    #[error("the keys fetched at {since} could not be refreshed: {reason}")]
    Stale {
        /// When the keys were last fetched (Unix seconds).
        since: i64,
        /// Why the refresh failed.
        reason: String,
    },
}

#[derive(Debug)]
struct Entry {
    keys: ArcSwapOption<IssuerKeys>,
    last_attempt: AtomicI64,
    last_error: RwLock<Option<IssuerError>>,
    refresh: tokio::sync::Mutex<()>,
}

/// The cache.
pub struct IssuerCache {
    fetcher: Arc<dyn MetadataFetcher>,
    clock: Arc<dyn Clock>,
    settings: CacheSettings,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for IssuerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerCache")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn origin(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    Some(rest.split(['/', '?', '#']).next().unwrap_or_default()).filter(|h| !h.is_empty())
}

impl IssuerCache {
    /// A cache over a fetcher.
    pub fn new(
        fetcher: Arc<dyn MetadataFetcher>,
        clock: Arc<dyn Clock>,
        settings: CacheSettings,
    ) -> Self {
        Self {
            fetcher,
            clock,
            settings,
            entries: RwLock::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Number of discovery fetches made so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn entry(&self, issuer: &str) -> Result<Arc<Entry>, IssuerError> {
        if let Ok(map) = self.entries.read()
            && let Some(e) = map.get(issuer)
        {
            return Ok(e.clone());
        }
        let mut map = self
            .entries
            .write()
            .map_err(|_| IssuerError::Invalid("issuer cache poisoned".into()))?;
        if map.len() >= self.settings.max_issuers && !map.contains_key(issuer) {
            return Err(IssuerError::Invalid(
                "too many issuers are cached; try again later".into(),
            ));
        }
        Ok(map
            .entry(issuer.to_string())
            .or_insert_with(|| {
                Arc::new(Entry {
                    keys: ArcSwapOption::empty(),
                    last_attempt: AtomicI64::new(i64::MIN),
                    last_error: RwLock::new(None),
                    refresh: tokio::sync::Mutex::new(()),
                })
            })
            .clone())
    }

    /// The keys of `issuer`, refreshed as the rules above say. The caller still checks
    /// that `kid` is among them (it may legitimately be absent: then the token is
    /// signed by a key the issuer does not publish).
    pub async fn keys(
        &self,
        issuer: &str,
        kid: Option<&str>,
    ) -> Result<Arc<IssuerKeys>, IssuerError> {
        let entry = self.entry(issuer)?;
        let keys = self.current_keys(issuer, &entry, kid).await?;
        let now = self.clock.now();
        // Keys within their TTL are fresh whatever the bound says.
        let max_age = self.settings.max_stale_secs.max(self.settings.ttl_secs);
        if now.saturating_sub(keys.fetched_at) > max_age {
            let reason = entry
                .last_error
                .read()
                .ok()
                .and_then(|e| e.as_ref().map(ToString::to_string))
                .unwrap_or_else(|| "no refresh has succeeded".into());
            return Err(IssuerError::Stale {
                since: keys.fetched_at,
                reason,
            });
        }
        Ok(keys)
    }

    /// The keys the rules above pick, however old.
    async fn current_keys(
        &self,
        issuer: &str,
        entry: &Entry,
        kid: Option<&str>,
    ) -> Result<Arc<IssuerKeys>, IssuerError> {
        let now = self.clock.now();
        let recently = now.saturating_sub(entry.last_attempt.load(Ordering::Acquire))
            < self.settings.unknown_kid_min_interval_secs;
        if let Some(k) = entry.keys.load_full() {
            let fresh = now < k.fetched_at.saturating_add(self.settings.ttl_secs);
            let known = k.has_kid(kid);
            // The hit: fresh keys holding the kid. No lock, no await.
            if fresh && known {
                return Ok(k);
            }
            let refreshing = entry.refresh.try_lock().is_err();
            // A known kid in stale keys while a refresh is under way: never queue
            // behind a slow issuer for a key we have.
            if known && refreshing {
                return Ok(k);
            }
            // An unknown kid right after a completed fetch: the answer stands. If a
            // fetch is in flight, wait for it below — it may bring the rotated key.
            if fresh && recently && !refreshing {
                return Ok(k);
            }
        }
        let _flight = entry.refresh.lock().await;
        // Another request fetched while this one waited, or a failed fetch was just
        // made: use that result instead of fetching again.
        let last = entry.last_attempt.load(Ordering::Acquire);
        let failed_recently =
            self.clock.now().saturating_sub(last) < self.settings.unknown_kid_min_interval_secs;
        if last >= now || failed_recently {
            return entry.keys.load_full().ok_or_else(|| last_error(entry));
        }
        entry
            .last_attempt
            .store(self.clock.now(), Ordering::Release);
        match self.fetch(issuer).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                entry.keys.store(Some(keys.clone()));
                if let Ok(mut e) = entry.last_error.write() {
                    *e = None;
                }
                Ok(keys)
            }
            Err(err) => {
                tracing::warn!(issuer, error = %err, "issuer metadata refresh failed");
                if let Ok(mut e) = entry.last_error.write() {
                    *e = Some(err.clone());
                }
                match entry.keys.load_full() {
                    Some(stale) => {
                        tracing::warn!(issuer, "serving the last good JWKS");
                        Ok(stale)
                    }
                    None => Err(err),
                }
            }
        }
    }

    async fn fetch(&self, issuer: &str) -> Result<IssuerKeys, IssuerError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.fetcher.get(&discovery_url).await?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            IssuerError::Invalid(format!(
                "the discovery document at {discovery_url} is not JSON: {e}"
            ))
        })?;
        let published = doc
            .get("issuer")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if published != issuer {
            return Err(IssuerError::Invalid(format!(
                "the discovery document at {discovery_url} names issuer '{published}', not '{issuer}'"
            )));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                IssuerError::Invalid(format!(
                    "the discovery document at {discovery_url} has no jwks_uri"
                ))
            })?;
        if origin(jwks_uri).is_none() || origin(jwks_uri) != origin(issuer) {
            return Err(IssuerError::Invalid(format!(
                "jwks_uri '{jwks_uri}' is not an https URL on the issuer's host"
            )));
        }
        let jwks_body = self.fetcher.get(jwks_uri).await?;
        let set = JwkSet::parse(&jwks_body, self.settings.max_keys)
            .map_err(|e| IssuerError::Invalid(format!("the JWKS at {jwks_uri} is invalid: {e}")))?;
        let (keys, bad) = VerifyingKey::from_jwk_set(&set);
        for (kid, err) in bad {
            tracing::info!(issuer, kid = ?kid, error = %err, "skipping unusable key");
        }
        tracing::info!(issuer, keys = keys.len(), "issuer keys fetched");
        Ok(IssuerKeys {
            issuer: issuer.to_string(),
            keys,
            fetched_at: self.clock.now(),
            source: jwks_uri.to_string(),
        })
    }
}

fn last_error(entry: &Entry) -> IssuerError {
    entry
        .last_error
        .read()
        .ok()
        .and_then(|e| e.clone())
        .unwrap_or_else(|| IssuerError::Invalid("the issuer's keys are not available yet".into()))
}

#[cfg(test)]
mod tests {
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
            serde_json::to_vec(
                &serde_json::json!({"issuer": ISS, "jwks_uri": format!("{ISS}/keys")}),
            )
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
                c.keys(ISS, Some("k1")).await.map(|k| k.keys.len())
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
            let k = cache.keys(ISS, Some(&format!("bogus{i}"))).await.unwrap();
            assert!(!k.has_kid(Some(&format!("bogus{i}"))));
        }
        assert_eq!(cache.fetch_count(), 1);
        // After the interval, one unknown kid triggers one refetch, which finds a rotated key.
        let k2 = SigningKey::generate(Alg::RS256, "k2".into()).unwrap();
        publish(&f, &[&k1, &k2]);
        clock.advance(6);
        assert!(
            cache
                .keys(ISS, Some("k2"))
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
        cache.keys(ISS, Some("k1")).await.unwrap();
        f.down.store(true, Ordering::SeqCst);
        clock.advance(7200);
        assert!(
            cache
                .keys(ISS, Some("k1"))
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
        cache.keys(ISS, Some("k1")).await.unwrap();
        f.down.store(true, Ordering::SeqCst);
        // Past the TTL, inside the bound: the last good keys.
        clock.advance(9_999);
        assert!(cache.keys(ISS, Some("k1")).await.is_ok());
        // Past the bound, counted from the last successful fetch (1 000): refused,
        // naming when the keys were fetched and why the refresh failed.
        clock.advance(2);
        match cache.keys(ISS, Some("k1")).await {
            Err(IssuerError::Stale { since, reason }) => {
                assert_eq!(since, 1_000);
                assert!(reason.contains("down"), "{reason}");
            }
            other => panic!("expected stale keys to be refused, got {other:?}"),
        }
        // The issuer is back: the next refresh (after the retry interval) heals it.
        f.down.store(false, Ordering::SeqCst);
        clock.advance(10);
        assert!(cache.keys(ISS, Some("k1")).await.is_ok());
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
        cache.keys(ISS, Some("k1")).await.unwrap();
        clock.advance(3_000);
        assert!(cache.keys(ISS, Some("k1")).await.is_ok());
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
            serde_json::to_vec(&serde_json::json!({"issuer": format!("{ISS}/"), "jwks_uri": format!("{ISS}/keys")})).unwrap(),
        );
        let clock = Arc::new(ManualClock::new(1_000));
        let cache = IssuerCache::new(f.clone(), clock.clone(), CacheSettings::default());
        let e = cache.keys(ISS, None).await.unwrap_err();
        assert!(e.to_string().contains("names issuer"), "{e}");
        f.docs.lock().unwrap().insert(
            format!("{ISS}/.well-known/openid-configuration"),
            serde_json::to_vec(
                &serde_json::json!({"issuer": ISS, "jwks_uri": "https://evil.example/keys"}),
            )
            .unwrap(),
        );
        clock.advance(10);
        let e = cache.keys(ISS, None).await.unwrap_err();
        assert!(e.to_string().contains("issuer's host"), "{e}");
        // Failures are rate-limited too.
        let calls = f.calls.load(Ordering::SeqCst);
        for _ in 0..20 {
            let _ = cache.keys(ISS, None).await;
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), calls);
    }
}
