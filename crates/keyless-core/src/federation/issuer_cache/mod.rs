//! Per-issuer cache of discovery + JWKS.
//!
//! * A hit (fresh keys holding the token's `kid`) takes no lock and makes no await.
//! * Keys are refreshed when they expire, or at once on an unknown `kid` unless the
//!   issuer was fetched within `unknown_kid_min_interval_secs` — so a rotated key is
//!   picked up quickly while a flood of random kids costs one fetch per interval.
//! * Refreshes are single-flight per issuer: however many requests wait, one fetch.
//! * When a refresh fails the last good keys keep being served.
//! * Bounded: entries are admitted per tenant under a quota and expire when idle
//!   ([`admission`]); at most `max_concurrent_fetches` fetches run at once, and a
//!   request that cannot get a slot within `fetch_slot_wait_ms` fails instead of
//!   queueing.

mod admission;
mod fetch;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use keyless_jose::{JwkSet, VerifyingKey};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::fetcher::{FetchError, MetadataFetcher};
use crate::clock::Clock;
use admission::{Admission, Index};

/// Cache tuning.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// How long fetched keys are used before a refresh, seconds.
    pub ttl_secs: i64,
    /// Minimum time between fetches caused by unknown kids or failures, seconds.
    pub unknown_kid_min_interval_secs: i64,
    /// Most keys kept per issuer.
    pub max_keys: usize,
    /// Most distinct issuers one tenant holds in the cache; a new one beyond it is
    /// refused until one of the tenant's own entries expires.
    pub max_issuers_per_tenant: usize,
    /// An issuer a tenant has not used for this long leaves its cache, seconds.
    pub idle_ttl_secs: i64,
    /// An issuer never fetched successfully leaves the cache after this long unused,
    /// seconds (failures are cheap to cause and must not hold a quota slot for long).
    pub failed_ttl_secs: i64,
    /// Most issuer fetches under way at once, over all tenants.
    pub max_concurrent_fetches: usize,
    /// How long a request waits for a free fetch slot before it fails, milliseconds
    /// (0: it does not wait).
    pub fetch_slot_wait_ms: u64,
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
            max_issuers_per_tenant: 1_000,
            idle_ttl_secs: 86_400,
            failed_ttl_secs: 600,
            max_concurrent_fetches: 32,
            fetch_slot_wait_ms: 1_000,
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
    /// The tenant already holds its quota of distinct issuers.
    #[error(
        "the tenant already uses {limit} distinct fetched issuers, the most the issuer cache keeps per tenant (--issuer-cache-per-tenant); an issuer leaves the cache when unused for a while"
    )]
    TenantQuota {
        /// The per-tenant quota.
        limit: usize,
    },
    /// Every fetch slot stayed busy for the whole wait.
    #[error(
        "all {limit} issuer fetch slots were busy (--issuer-max-concurrent-fetches); retry shortly"
    )]
    FetchSlotsBusy {
        /// The number of slots.
        limit: usize,
    },
}

/// One issuer's cached state, shared by the tenants that use it.
#[derive(Debug)]
struct Entry {
    keys: ArcSwapOption<IssuerKeys>,
    last_attempt: AtomicI64,
    last_error: RwLock<Option<IssuerError>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Entry {
    fn new() -> Self {
        Self {
            keys: ArcSwapOption::empty(),
            last_attempt: AtomicI64::new(i64::MIN),
            last_error: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }
}

/// The cache.
pub struct IssuerCache {
    fetcher: Arc<dyn MetadataFetcher>,
    clock: Arc<dyn Clock>,
    settings: CacheSettings,
    index: RwLock<Index>,
    fetch_slots: Semaphore,
    fetches: AtomicU64,
}

impl std::fmt::Debug for IssuerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerCache")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> IssuerError {
    IssuerError::Invalid("issuer cache poisoned".into())
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
            fetch_slots: Semaphore::new(settings.max_concurrent_fetches.max(1)),
            settings,
            index: RwLock::new(Index::default()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Number of discovery fetches made so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Distinct issuers `tenant` holds in the cache.
    pub fn tenant_issuers(&self, tenant: &str) -> usize {
        self.index.read().map_or(0, |i| i.count(tenant))
    }

    /// Distinct issuers cached, over all tenants (one shared by two counts once).
    pub fn cached_issuers(&self) -> usize {
        self.index.read().map_or(0, |i| i.issuers())
    }

    /// Drops idle and failed entries (see [`admission`]); returns how many tenant
    /// admissions were dropped. Called periodically; when nothing has expired it only
    /// reads, so it never holds up a cache hit.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now();
        let expired = self
            .index
            .read()
            .is_ok_and(|i| i.has_expired(now, &self.settings));
        if !expired {
            return 0;
        }
        self.index
            .write()
            .map_or(0, |mut i| i.sweep(now, &self.settings))
    }

    fn admission(
        &self,
        tenant: &str,
        issuer: &str,
        now: i64,
    ) -> Result<Arc<Admission>, IssuerError> {
        {
            let index = self.index.read().map_err(|_| poisoned())?;
            if let Some(a) = index.get(tenant, issuer) {
                return Ok(a.clone());
            }
            if index.refuses(tenant, now, &self.settings) {
                return Err(IssuerError::TenantQuota {
                    limit: self.settings.max_issuers_per_tenant,
                });
            }
        }
        self.index
            .write()
            .map_err(|_| poisoned())?
            .admit(tenant, issuer, now, &self.settings)
    }

    /// The keys of `issuer` for an exchange in `tenant`, refreshed as the rules above
    /// say. The caller still checks that `kid` is among them (it may legitimately be
    /// absent: then the token is signed by a key the issuer does not publish).
    pub async fn keys(
        &self,
        tenant: &str,
        issuer: &str,
        kid: Option<&str>,
    ) -> Result<Arc<IssuerKeys>, IssuerError> {
        let used_at = self.clock.now();
        let admission = self.admission(tenant, issuer, used_at)?;
        admission.touch(used_at);
        let entry = &admission.entry;
        let keys = self.current_keys(issuer, entry, kid).await?;
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
        let Some(_slot) = self.fetch_slot().await else {
            let busy = IssuerError::FetchSlotsBusy {
                limit: self.settings.max_concurrent_fetches.max(1),
            };
            tracing::warn!(issuer, error = %busy, "issuer metadata fetch not started");
            // Not the issuer's failure: recorded nowhere, so the next request retries.
            return entry.keys.load_full().ok_or(busy);
        };
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

    /// A fetch slot, waiting at most `fetch_slot_wait_ms`.
    async fn fetch_slot(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(slot) = self.fetch_slots.try_acquire() {
            return Some(slot);
        }
        if self.settings.fetch_slot_wait_ms == 0 {
            return None;
        }
        let wait = Duration::from_millis(self.settings.fetch_slot_wait_ms);
        tokio::time::timeout(wait, self.fetch_slots.acquire())
            .await
            .ok()?
            .ok()
    }

    async fn fetch(&self, issuer: &str) -> Result<IssuerKeys, IssuerError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        fetch::fetch_keys(&*self.fetcher, issuer, self.settings.max_keys, || {
            self.clock.now()
        })
        .await
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
