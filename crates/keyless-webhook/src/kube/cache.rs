//! The ServiceAccount cache: LIST once, then WATCH from the list's resourceVersion
//! (with bookmarks), relisting when the watch expires (410 Gone) or fails. A lookup that
//! misses the cache reads the ServiceAccount directly (it may have been created moments
//! before the pod), and does not insert it: the watch is the only writer, so a direct
//! read can never resurrect a deleted ServiceAccount.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use super::client::{ApiClient, ClientError, WatchEvent};
use crate::metrics::{DirectRead, Metrics};
use crate::service_account::ServiceAccount;

/// Why a ServiceAccount could not be looked up (the API server did not answer).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Where the admission handler gets ServiceAccounts from.
#[async_trait]
pub trait ServiceAccountLookup: Send + Sync {
    /// The ServiceAccount, `None` if it does not exist.
    async fn lookup(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>, LookupError>;

    /// Whether lookups are served from a synced cache (readiness).
    fn is_ready(&self) -> bool;
}

/// A fixed set of ServiceAccounts (tests, and running without a cluster).
#[derive(Debug, Default)]
pub struct StaticServiceAccounts(pub Vec<ServiceAccount>);

#[async_trait]
impl ServiceAccountLookup for StaticServiceAccounts {
    async fn lookup(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>, LookupError> {
        Ok(self
            .0
            .iter()
            .find(|sa| sa.namespace == namespace && sa.name == name)
            .cloned())
    }

    fn is_ready(&self) -> bool {
        true
    }
}

/// Tuning of the cache.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Timeout of a direct read on a cache miss (the API server gives the whole
    /// admission 10 s by default).
    pub direct_read_timeout: Duration,
    /// Timeout of one LIST page.
    pub list_timeout: Duration,
    /// Server-side duration of one watch before it is renewed.
    pub watch_timeout_seconds: u64,
    /// Longest wait between retries after errors.
    pub max_backoff: Duration,
    /// How long a ServiceAccount the API server said does not exist is answered as
    /// absent without asking again (a watch event adding it ends this at once). Pods
    /// naming a missing ServiceAccount are retried by their controllers; without this,
    /// each retry — or a flood of reviews naming random accounts — is one API-server
    /// GET.
    pub negative_ttl: Duration,
    /// Most ServiceAccounts remembered as absent; when full, expired ones are dropped and
    /// new absences are not remembered (the next miss asks the API server again).
    pub max_negative_entries: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            direct_read_timeout: Duration::from_secs(4),
            list_timeout: Duration::from_secs(30),
            watch_timeout_seconds: 300,
            max_backoff: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            max_negative_entries: 10_000,
        }
    }
}

type Key = (String, String);

/// The watch cache with a direct-read fallback.
#[derive(Debug)]
pub struct ServiceAccountCache {
    entries: RwLock<HashMap<Key, ServiceAccount>>,
    /// ServiceAccounts found absent by a direct read, and when.
    absent: std::sync::Mutex<HashMap<Key, std::time::Instant>>,
    synced: AtomicBool,
    client: ApiClient,
    metrics: Arc<Metrics>,
    options: CacheOptions,
}

impl ServiceAccountCache {
    /// A cache that fills once [`ServiceAccountCache::spawn`] runs.
    pub fn new(client: ApiClient, metrics: Arc<Metrics>, options: CacheOptions) -> Arc<Self> {
        Arc::new(ServiceAccountCache {
            entries: RwLock::new(HashMap::new()),
            absent: std::sync::Mutex::new(HashMap::new()),
            synced: AtomicBool::new(false),
            client,
            metrics,
            options,
        })
    }

    /// Starts the list/watch loop on the runtime; it runs until the process ends.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.run().await })
    }

    /// Number of cached ServiceAccounts.
    pub fn len(&self) -> usize {
        self.entries.read().map(|m| m.len()).unwrap_or_default()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cached(&self, namespace: &str, name: &str) -> Option<ServiceAccount> {
        let key = (namespace.to_owned(), name.to_owned());
        self.entries.read().ok()?.get(&key).cloned()
    }

    /// Whether a direct read found this ServiceAccount absent within the negative TTL.
    fn known_absent(&self, key: &Key) -> bool {
        self.absent.lock().ok().is_some_and(|a| {
            a.get(key)
                .is_some_and(|at| at.elapsed() < self.options.negative_ttl)
        })
    }

    fn remember_absent(&self, key: Key) {
        if let Ok(mut a) = self.absent.lock() {
            if a.len() >= self.options.max_negative_entries {
                let ttl = self.options.negative_ttl;
                a.retain(|_, at| at.elapsed() < ttl);
            }
            if a.len() < self.options.max_negative_entries {
                a.insert(key, std::time::Instant::now());
            }
        }
    }

    fn forget_absent(&self, key: &Key) {
        if let Ok(mut a) = self.absent.lock() {
            a.remove(key);
        }
    }

    fn replace_all(&self, items: Vec<ServiceAccount>) {
        let map: HashMap<Key, ServiceAccount> = items
            .into_iter()
            .map(|sa| ((sa.namespace.clone(), sa.name.clone()), sa))
            .collect();
        let n = map.len();
        if let Ok(mut a) = self.absent.lock() {
            a.retain(|k, _| !map.contains_key(k));
        }
        if let Ok(mut m) = self.entries.write() {
            *m = map;
        }
        self.metrics.set_cache_entries(n);
    }

    fn apply(&self, event: &WatchEvent) {
        let n = match self.entries.write() {
            Ok(mut m) => {
                match event {
                    WatchEvent::Added(sa) | WatchEvent::Modified(sa) => {
                        let key = (sa.namespace.clone(), sa.name.clone());
                        self.forget_absent(&key);
                        m.insert(key, sa.clone());
                    }
                    WatchEvent::Deleted(sa) => {
                        m.remove(&(sa.namespace.clone(), sa.name.clone()));
                    }
                    WatchEvent::Bookmark(_) | WatchEvent::Error { .. } => {}
                }
                m.len()
            }
            Err(_) => return,
        };
        self.metrics.set_cache_entries(n);
    }

    async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let (items, mut rv) = match self
                .client
                .list_service_accounts(self.options.list_timeout)
                .await
            {
                Ok(listed) => listed,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "listing service accounts failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    continue;
                }
            };
            self.metrics.cache_relist();
            tracing::info!(count = items.len(), resource_version = %rv, "service account cache listed");
            self.replace_all(items);
            self.synced.store(true, Ordering::Release);
            backoff = Duration::from_millis(500);
            // Watch until the watch can no longer continue from `rv`.
            loop {
                match self.watch_once(&mut rv).await {
                    WatchEnd::Renew => backoff = Duration::from_millis(500),
                    WatchEnd::Retry => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.options.max_backoff);
                    }
                    WatchEnd::Relist => break,
                }
            }
        }
    }

    async fn watch_once(&self, rv: &mut String) -> WatchEnd {
        let mut stream = match self
            .client
            .watch_service_accounts(rv, self.options.watch_timeout_seconds)
            .await
        {
            Ok(s) => s,
            Err(e) if e.is_gone() => {
                tracing::info!("service account watch expired (410); relisting");
                return WatchEnd::Relist;
            }
            Err(e) => {
                tracing::warn!(error = %e, "starting the service account watch failed");
                return WatchEnd::Retry;
            }
        };
        loop {
            match stream.next().await {
                Ok(Some(WatchEvent::Error { code: 410, .. })) => {
                    tracing::info!("service account watch expired (410); relisting");
                    return WatchEnd::Relist;
                }
                Ok(Some(WatchEvent::Error { code, message })) => {
                    tracing::warn!(code, %message, "service account watch error; relisting");
                    return WatchEnd::Relist;
                }
                Ok(Some(WatchEvent::Bookmark(v))) => {
                    if !v.is_empty() {
                        *rv = v;
                    }
                }
                Ok(Some(event)) => {
                    if let WatchEvent::Added(sa)
                    | WatchEvent::Modified(sa)
                    | WatchEvent::Deleted(sa) = &event
                    {
                        tracing::debug!(namespace = %sa.namespace, name = %sa.name, ?event, "service account event");
                        if let Some(v) = &sa.resource_version {
                            v.clone_into(rv);
                        }
                    }
                    self.apply(&event);
                }
                Ok(None) => return WatchEnd::Renew,
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "undecodable watch event; relisting");
                    return WatchEnd::Relist;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "service account watch broke");
                    return WatchEnd::Retry;
                }
            }
        }
    }
}

enum WatchEnd {
    /// The server closed the watch normally: watch again from the last resourceVersion.
    Renew,
    /// A transient failure: wait, then watch again.
    Retry,
    /// The resourceVersion is no longer usable: list again.
    Relist,
}

#[async_trait]
impl ServiceAccountLookup for ServiceAccountCache {
    async fn lookup(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>, LookupError> {
        if let Some(sa) = self.cached(namespace, name) {
            return Ok(Some(sa));
        }
        let key = (namespace.to_owned(), name.to_owned());
        if self.known_absent(&key) {
            self.metrics.direct_read(DirectRead::KnownAbsent);
            return Ok(None);
        }
        match self
            .client
            .get_service_account(namespace, name, self.options.direct_read_timeout)
            .await
        {
            Ok(Some(sa)) => {
                self.metrics.direct_read(DirectRead::Found);
                Ok(Some(sa))
            }
            Ok(None) => {
                self.metrics.direct_read(DirectRead::NotFound);
                self.remember_absent(key);
                Ok(None)
            }
            Err(e) => {
                self.metrics.direct_read(DirectRead::Failed);
                Err(LookupError(e.to_string()))
            }
        }
    }

    fn is_ready(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}
