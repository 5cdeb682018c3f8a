//! The token cache and single-flight refresh.
//!
//! Each (authority, tenant, client, scope) has a [`Slot`]: the current token behind a
//! short-lived `std` mutex (never held across an `.await`), and an async `gate` that
//! whoever fetches a token holds for the duration of the request. Callers that need a
//! token while a fetch is in flight wait on the gate and then take the outcome of the
//! fetch they waited for — token or error — instead of sending their own request.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use crate::clock::Clock;
use crate::error::Error;
use crate::options::RefreshPolicy;
use crate::token::AccessToken;

/// A cache of access tokens, keyed by authority, tenant, client id and scope.
///
/// Every credential has one; pass the same cache to several credentials with
/// [`CredentialOptions::token_cache`](crate::CredentialOptions::token_cache) to share it
/// (cloning a `TokenCache` shares it too). Tokens live only in memory.
///
/// ```
/// use keyless_credential::{CredentialOptions, TokenCache};
///
/// let cache = TokenCache::new();
/// let options = CredentialOptions::new().token_cache(cache.clone());
/// assert!(cache.is_empty());
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct TokenCache {
    slots: Arc<Mutex<HashMap<CacheKey, Arc<Slot>>>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many (authority, tenant, client, scope) entries hold a token.
    pub fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|slot| slot.state().token.is_some())
            .count()
    }

    /// Whether no entry holds a token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every token (the next request for each scope goes to the service).
    pub fn clear(&self) {
        for slot in self.lock().values() {
            slot.state().token = None;
        }
    }

    /// Drops the entries that hold no token and that no request is using — those a
    /// failed request left behind. A long-running process that asks for scopes chosen
    /// by others (a managed-identity endpoint) calls it after a failure, so refused
    /// scopes do not accumulate.
    pub fn prune(&self) {
        self.lock()
            .retain(|_, slot| Arc::strong_count(slot) > 1 || slot.state().token.is_some());
    }

    /// How many entries exist, with or without a token (for tests of [`prune`](Self::prune)).
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn slot(&self, key: CacheKey) -> Arc<Slot> {
        self.lock().entry(key).or_default().clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CacheKey, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a cached token is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
}

/// One cache entry and its refresh gate.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    gate: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    /// The newest token obtained.
    token: Option<AccessToken>,
    /// Incremented when a fetch finishes (success or failure).
    fetches: u64,
    /// The outcome of the last fetch, handed to callers that waited for it.
    last: Option<Result<AccessToken, Error>>,
    /// When the last early refresh failed, to space out the next try.
    failed_refresh_at: Option<SystemTime>,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns a fresh cached token, or runs `fetch` — at most one at a time per slot —
    /// and caches its result. See the module docs.
    pub(crate) async fn get<F, Fut>(
        &self,
        clock: &dyn Clock,
        policy: &RefreshPolicy,
        fetch: F,
    ) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, Error>>,
    {
        let now = clock.now();
        let (cached, seen) = {
            let state = self.state();
            (state.token.clone(), state.fetches)
        };

        if let Some(token) = cached
            && policy.is_usable(token.expires_on(), now)
        {
            if policy.is_fresh(token.refresh_on(), token.expires_on(), now) {
                return Ok(token);
            }
            // Time to refresh, but the cached token is still good: one caller refreshes,
            // everyone else keeps using the cached token meanwhile.
            let Ok(_gate) = self.gate.try_lock() else {
                return Ok(token);
            };
            {
                let state = self.state();
                if state.fetches != seen
                    && let Some(newer) = &state.token
                    && policy.is_usable(newer.expires_on(), clock.now())
                {
                    return Ok(newer.clone());
                }
                if let Some(failed) = state.failed_refresh_at
                    && failed
                        .checked_add(policy.failure_backoff())
                        .is_some_and(|until| now < until)
                {
                    return Ok(token);
                }
            }
            let outcome = fetch().await;
            let mut state = self.state();
            state.fetches = state.fetches.wrapping_add(1);
            state.last = Some(outcome.clone());
            return match outcome {
                Ok(fresh) => {
                    state.token = Some(fresh.clone());
                    state.failed_refresh_at = None;
                    Ok(fresh)
                }
                Err(_) => {
                    // The old token is still valid: hand it out, try again later.
                    state.failed_refresh_at = Some(clock.now());
                    Ok(token)
                }
            };
        }

        // No usable token: wait for any fetch in flight, then share its outcome.
        let _gate = self.gate.lock().await;
        {
            let state = self.state();
            if state.fetches != seen {
                match &state.last {
                    Some(Ok(token)) if !token.is_expired_at(clock.now()) => {
                        return Ok(token.clone());
                    }
                    Some(Err(e)) => return Err(e.clone()),
                    _ => {}
                }
            }
            if let Some(token) = &state.token
                && policy.is_usable(token.expires_on(), clock.now())
            {
                return Ok(token.clone());
            }
        }
        let outcome = fetch().await;
        let mut state = self.state();
        state.fetches = state.fetches.wrapping_add(1);
        state.last = Some(outcome.clone());
        if let Ok(token) = &outcome {
            state.token = Some(token.clone());
            state.failed_refresh_at = None;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    fn start() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    /// A token obtained at `now` for 300 s, refreshed half-way (the default policy).
    fn token(name: &str, now: SystemTime) -> AccessToken {
        let policy = RefreshPolicy::default();
        let lifetime = Duration::from_secs(300);
        AccessToken::with_details(
            name.to_owned(),
            "Bearer".to_owned(),
            now + lifetime,
            now + policy.refresh_after(lifetime, None),
        )
    }

    fn failure() -> Error {
        Error::invalid("test", "the service is down")
    }

    async fn get(
        slot: &Slot,
        clock: &ManualClock,
        calls: &AtomicU32,
        result: Result<&str, ()>,
    ) -> Result<String, Error> {
        let policy = RefreshPolicy::default();
        slot.get(clock, &policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            match result {
                Ok(name) => Ok(token(name, clock.now())),
                Err(()) => Err(failure()),
            }
        })
        .await
        .map(|t| t.secret().to_owned())
    }

    #[tokio::test]
    async fn cached_until_refresh_time_then_refreshed() {
        let clock = ManualClock::new(start());
        let slot = Slot::default();
        let calls = AtomicU32::new(0);
        assert_eq!(
            get(&slot, &clock, &calls, Ok("a")).await.ok().as_deref(),
            Some("a")
        );
        clock.advance(Duration::from_secs(149));
        assert_eq!(
            get(&slot, &clock, &calls, Ok("b")).await.ok().as_deref(),
            Some("a")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            get(&slot, &clock, &calls, Ok("b")).await.ok().as_deref(),
            Some("b")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_early_refresh_keeps_the_valid_token_and_backs_off() {
        let clock = ManualClock::new(start());
        let slot = Slot::default();
        let calls = AtomicU32::new(0);
        let _ = get(&slot, &clock, &calls, Ok("a")).await;
        clock.advance(Duration::from_secs(200));
        // The refresh fails: the still-valid token is returned, no error.
        assert_eq!(
            get(&slot, &clock, &calls, Err(())).await.ok().as_deref(),
            Some("a")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Within the back-off no new attempt is made.
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            get(&slot, &clock, &calls, Ok("b")).await.ok().as_deref(),
            Some("a")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // After it, the refresh is tried again.
        clock.advance(Duration::from_secs(25));
        assert_eq!(
            get(&slot, &clock, &calls, Ok("b")).await.ok().as_deref(),
            Some("b")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn without_a_usable_token_errors_are_returned() {
        let clock = ManualClock::new(start());
        let slot = Slot::default();
        let calls = AtomicU32::new(0);
        assert!(get(&slot, &clock, &calls, Err(())).await.is_err());
        let _ = get(&slot, &clock, &calls, Ok("a")).await;
        // Within the last 30 s the token is not handed out: a refresh is required and
        // its failure is the caller's error.
        clock.advance(Duration::from_secs(271));
        assert!(get(&slot, &clock, &calls, Err(())).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_fetch_and_its_error() {
        let clock = Arc::new(ManualClock::new(start()));
        let slot = Arc::new(Slot::default());
        let calls = Arc::new(AtomicU32::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let arrived = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (clock, slot, calls, release, arrived) = (
                clock.clone(),
                slot.clone(),
                calls.clone(),
                release.clone(),
                arrived.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let policy = RefreshPolicy::default();
                // Counted in the same poll that reads the slot's state.
                arrived.fetch_add(1, Ordering::SeqCst);
                slot.get(&*clock, &policy, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    Err::<AccessToken, _>(failure())
                })
                .await
            }));
        }
        while arrived.load(Ordering::SeqCst) < 100 {
            tokio::task::yield_now().await;
        }
        // A margin for the last arrivals to reach the gate, then the one fetch ends.
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.notify_one();
        let mut errors = 0;
        for task in tasks {
            if let Ok(Err(_)) = task.await {
                errors += 1;
            }
        }
        assert_eq!(errors, 100);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for 100 callers");
    }

    #[test]
    fn cache_len_and_clear() {
        let cache = TokenCache::new();
        let key = CacheKey {
            authority: "https://a".into(),
            tenant: "t".into(),
            client_id: "c".into(),
            scope: "s".into(),
        };
        let slot = cache.slot(key.clone());
        assert!(cache.is_empty());
        slot.state().token = Some(token("a", start()));
        assert_eq!(cache.len(), 1);
        assert!(Arc::ptr_eq(&slot, &cache.slot(key)));
        cache.clear();
        assert!(cache.is_empty());
        assert!(format!("{cache:?}").contains("entries: 0"));
    }

    #[tokio::test]
    async fn prune_drops_only_entries_without_a_token_and_unused() {
        let cache = TokenCache::new();
        let key = |scope: &str| CacheKey {
            authority: "a".into(),
            tenant: "t".into(),
            client_id: "c".into(),
            scope: scope.into(),
        };
        let clock = ManualClock::new(start());
        let calls = AtomicU32::new(0);
        let good = cache.slot(key("good"));
        assert!(get(&good, &clock, &calls, Ok("t1")).await.is_ok());
        drop(good);
        let bad = cache.slot(key("bad"));
        assert!(get(&bad, &clock, &calls, Err(())).await.is_err());
        drop(bad);
        let in_use = cache.slot(key("in-use"));
        assert_eq!(cache.entries(), 3);
        cache.prune();
        assert_eq!(cache.entries(), 2, "the failed entry is dropped");
        assert_eq!(cache.len(), 1);
        drop(in_use);
        cache.prune();
        assert_eq!(cache.entries(), 1, "the token is kept");
    }
}
