//! Where the sidecar's tokens come from: a credential, plus a short memory of failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keyless_credential::{AccessToken, Error, TokenCache, TokenCredential};

/// Failures remembered at most (per distinct scope); beyond it the expired ones are
/// dropped, and if all are recent the memory starts over.
const MAX_REMEMBERED_FAILURES: usize = 256;

/// Tokens per scope from a credential (which caches, refreshes and deduplicates), with
/// each failure remembered for a short while.
///
/// Why remember failures: the SDKs retry, and a local client can ask in a loop; without
/// it each request would be an exchange with Keyless. Why only briefly: the usual
/// failure at start-up is a projected token that expired while the pod was pending,
/// and the kubelet's rotated file must be used within seconds.
#[derive(Debug)]
pub struct TokenSource {
    credential: Arc<dyn TokenCredential>,
    cache: Option<TokenCache>,
    failure_ttl: Duration,
    failures: Mutex<HashMap<String, (Instant, Error)>>,
}

impl TokenSource {
    /// Tokens from `credential`. When `cache` is the credential's token cache, the
    /// entries failed requests leave in it are pruned, so scopes chosen by clients do
    /// not accumulate. Failures are remembered for `failure_ttl`.
    pub fn new(
        credential: Arc<dyn TokenCredential>,
        cache: Option<TokenCache>,
        failure_ttl: Duration,
    ) -> Self {
        Self {
            credential,
            cache,
            failure_ttl,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `scope`, or the failure of the last attempt if it is recent.
    pub async fn get(&self, scope: &str) -> Result<AccessToken, Error> {
        if let Some(error) = self.recent_failure(scope) {
            return Err(error);
        }
        match self.credential.get_token(scope).await {
            Ok(token) => {
                self.lock().remove(scope);
                Ok(token)
            }
            Err(error) => {
                self.remember(scope, &error);
                if let Some(cache) = &self.cache {
                    cache.prune();
                }
                Err(error)
            }
        }
    }

    fn recent_failure(&self, scope: &str) -> Option<Error> {
        let failures = self.lock();
        let (at, error) = failures.get(scope)?;
        (at.elapsed() < self.failure_ttl).then(|| error.clone())
    }

    fn remember(&self, scope: &str, error: &Error) {
        if self.failure_ttl.is_zero() {
            return;
        }
        let mut failures = self.lock();
        if failures.len() >= MAX_REMEMBERED_FAILURES {
            let ttl = self.failure_ttl;
            failures.retain(|_, (at, _)| at.elapsed() < ttl);
            if failures.len() >= MAX_REMEMBERED_FAILURES {
                failures.clear();
            }
        }
        failures.insert(scope.to_owned(), (Instant::now(), error.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Error)>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::SystemTime;

    use keyless_credential::BoxFuture;

    use super::*;

    /// Fails until `ok` is set, counting calls.
    #[derive(Debug, Default)]
    struct Flaky {
        calls: AtomicU32,
        ok: std::sync::atomic::AtomicBool,
    }

    impl TokenCredential for Flaky {
        fn get_token<'a>(&'a self, _scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.ok.load(Ordering::SeqCst) {
                    Ok(AccessToken::new(
                        "t",
                        SystemTime::now() + Duration::from_secs(600),
                    ))
                } else {
                    Err(Error::TokenFile {
                        path: "/t".into(),
                        reason: "it is empty".into(),
                        source: None,
                    })
                }
            })
        }
    }

    #[tokio::test]
    async fn failures_are_remembered_briefly() {
        let flaky = Arc::new(Flaky::default());
        let source = TokenSource::new(flaky.clone(), None, Duration::from_millis(200));
        assert!(source.get("a/.default").await.is_err());
        assert!(source.get("a/.default").await.is_err());
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            1,
            "the second is remembered"
        );
        assert!(source.get("b/.default").await.is_err());
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 2, "per scope");
        flaky.ok.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(source.get("a/.default").await.is_ok());
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_failure_memory_is_bounded() {
        let flaky = Arc::new(Flaky::default());
        let source = TokenSource::new(flaky.clone(), None, Duration::from_secs(60));
        for i in 0..(MAX_REMEMBERED_FAILURES * 3) {
            assert!(source.get(&format!("r{i}/.default")).await.is_err());
        }
        assert!(source.lock().len() <= MAX_REMEMBERED_FAILURES);
    }
}
