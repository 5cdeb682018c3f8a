//! The façade the HTTP layer and the binary talk to.

use std::sync::Arc;

use arc_swap::ArcSwap;
use keyless_jose::Kek;
use keyless_store::{
    Change, RoleAssignmentRecord, ServicePrincipalRecord, Store, SubscriptionRecord, TenantRecord,
};

use crate::clock::Clock;
use crate::federation::{IssuerCache, MetadataFetcher};
use crate::keyring::{KeyRing, KeyRingError};
use crate::rbac;
use crate::settings::Settings;
use crate::signin::SignInLog;
use crate::view::{Snapshot, View};

/// Errors opening or bootstrapping Keyless.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] keyless_store::StoreError),
    /// The key-encryption key is not the one this database was created with.
    #[error(
        "the key-encryption key (fingerprint {found}) does not match this database (fingerprint {expected}); start with the data directory or KEYLESS_KEK that created it"
    )]
    KekMismatch {
        /// Fingerprint stored in the database.
        expected: String,
        /// Fingerprint of the key given.
        found: String,
    },
    /// Signing keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    /// Randomness failed.
    #[error("random generator failed: {0}")]
    Random(keyless_jose::JoseError),
}

/// What the first start created: the bootstrap admin's credentials, shown once.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    /// Tenant id.
    pub tenant_id: String,
    /// Subscription id.
    pub subscription_id: String,
    /// Admin client id.
    pub client_id: String,
    /// Admin client secret (only known at creation).
    pub client_secret: String,
}

/// Keyless' domain state and operations.
pub struct Keyless {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    pub(crate) kek: Kek,
    pub(crate) view: View,
    pub(crate) keys: ArcSwap<KeyRing>,
    pub(crate) key_writes: tokio::sync::Mutex<()>,
    pub(crate) issuers: IssuerCache,
    pub(crate) signins: SignInLog,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) secret_cache: crate::vault::SecretCache,
    /// Bearer tokens that passed validation (one signature check per token).
    pub(crate) verified: crate::tokens::VerifiedTokens,
}

impl std::fmt::Debug for Keyless {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyless")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub(crate) fn new_guid() -> Result<String, OpenError> {
    let b = keyless_jose::random_bytes::<16>().map_err(OpenError::Random)?;
    Ok(uuid::Builder::from_random_bytes(b).into_uuid().to_string())
}

impl Keyless {
    /// Opens Keyless over a store: checks the key-encryption key, loads the view and
    /// the signing keys.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        kek: Kek,
        fetcher: Arc<dyn MetadataFetcher>,
    ) -> Result<Keyless, OpenError> {
        let fp = kek.fingerprint();
        let stored = store.meta_put_if_absent("kek_fingerprint", &fp).await?;
        if stored != fp {
            return Err(OpenError::KekMismatch {
                expected: stored,
                found: fp,
            });
        }
        let view = View::new(Snapshot::load(&*store).await?);
        let ring = KeyRing::load(store.all_signing_keys().await?, &kek)?;
        let issuers = IssuerCache::new(fetcher, clock.clone(), settings.issuer_cache);
        let signins = SignInLog::start(store.clone(), settings.signin_log.aggregation_window);
        Ok(Keyless {
            issuers,
            signins,
            metrics: crate::metrics::Metrics::default(),
            secret_cache: crate::vault::SecretCache::default(),
            verified: crate::tokens::VerifiedTokens::new(crate::tokens::VERIFIED_TOKENS_CAPACITY),
            store,
            clock,
            settings,
            kek,
            view,
            keys: ArcSwap::from_pointee(ring),
            key_writes: tokio::sync::Mutex::new(()),
        })
    }

    /// Settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The current in-memory snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.view.get()
    }

    /// The current key ring.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.load_full()
    }

    /// Authenticates a bearer token presented to one of Keyless' own resources
    /// (`audience`: the resource manager or the vault resource).
    pub fn authenticate(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<crate::tokens::Caller, crate::tokens::TokenRejection> {
        self.verified.validate(
            token,
            &self.key_ring(),
            &self.settings.public,
            audience,
            crate::tokens::TimeRules {
                now: self.clock.now(),
                leeway: self.settings.clock_leeway_secs,
                max_lifetime: self.settings.token_lifetime_secs,
            },
        )
    }

    /// The issuer metadata cache.
    pub fn issuer_cache(&self) -> &IssuerCache {
        &self.issuers
    }

    /// Prometheus text for `/metrics`.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&[
            (
                "keyless_issuer_metadata_fetches_total",
                "Discovery + JWKS fetches from external issuers.",
                self.issuers.fetch_count(),
            ),
            (
                "keyless_signin_log_written_total",
                "Sign-in records written.",
                self.signins.written(),
            ),
            (
                "keyless_signin_log_dropped_total",
                "Sign-in records dropped (buffer full or write failed).",
                self.signins.dropped(),
            ),
            (
                "keyless_view_reloads_total",
                "Full reloads of the in-memory view (start-up, resync, change feed reconnects, rare writes).",
                self.view.reloads(),
            ),
            (
                "keyless_view_resyncs_skipped_total",
                "Periodic resyncs that did not reload, the change feed having missed no write.",
                self.metrics.resyncs_skipped(),
            ),
            (
                "keyless_view_changes_applied_total",
                "Changes applied to the in-memory view by key (writes here and on other replicas).",
                self.view.changes_applied(),
            ),
        ])
    }

    /// The sign-in log writer.
    pub fn signin_log(&self) -> &SignInLog {
        &self.signins
    }

    /// The store (for read paths that are not hot: listings).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Rebuilds the whole in-memory view from the store.
    pub async fn refresh(&self) -> Result<(), keyless_store::StoreError> {
        // A management write (a vault or group deleted, say) can remove secrets without
        // naming them: cached secrets must not outlive it. Such writes are rare.
        self.secret_cache.clear();
        self.view.reload(&*self.store).await
    }

    /// Applies one committed write to what this process holds in memory: the view
    /// (by key; [`Change::Everything`] reloads it whole) and the cached secret copies.
    /// Signing keys are left to [`Keyless::apply_from_feed`] and the key operations,
    /// which reload the key ring themselves.
    pub async fn apply(&self, change: &Change) -> Result<(), keyless_store::StoreError> {
        if matches!(
            change,
            Change::Secrets | Change::Vault { .. } | Change::Everything
        ) {
            self.secret_cache.clear();
        }
        self.view.apply(&*self.store, change).await
    }

    /// Applies a change another process (or this one) committed, as the change feed
    /// reports it: like [`Keyless::apply`], and [`Change::SigningKeys`] and
    /// [`Change::Everything`] reload the key ring too.
    pub async fn apply_from_feed(&self, change: &Change) -> Result<(), OpenError> {
        match change {
            Change::Everything => self.reload_all().await,
            Change::SigningKeys => self.reload_keys_between_writes().await,
            other => Ok(self.apply(other).await?),
        }
    }

    /// Reloads the key ring, but not in the middle of a local key operation: a
    /// notification for a rotation's first write, read and stored after the rotation's
    /// own reload, would otherwise leave the ring of a half-done rotation in place.
    async fn reload_keys_between_writes(&self) -> Result<(), OpenError> {
        let _guard = self.key_writes.lock().await;
        self.reload_keys().await
    }

    async fn reload_keys(&self) -> Result<(), OpenError> {
        let ring = KeyRing::load(self.store.all_signing_keys().await?, &self.kek)?;
        self.keys.store(Arc::new(ring));
        Ok(())
    }

    /// First start: creates a tenant, a subscription and the admin service principal
    /// with Owner and Key Vault Administrator on the subscription and Owner at the
    /// tenant root. Returns the admin credential only to the process that created it
    /// (`None` when the database was already bootstrapped).
    ///
    /// Safe for replicas starting at once on an empty database: the tenant and
    /// subscription ids are agreed through single meta rows, each object is created by
    /// whoever inserts it first, and a bootstrap interrupted half-way is completed by
    /// the next start.
    pub async fn bootstrap(&self) -> Result<Option<BootstrapAdmin>, OpenError> {
        let now = self.clock.now();
        let tenant_id = self
            .store
            .meta_put_if_absent("bootstrap_tenant", &new_guid()?)
            .await?;
        let subscription_id = self
            .store
            .meta_put_if_absent("bootstrap_subscription", &new_guid()?)
            .await?;
        let ignore_conflict = |r: Result<(), keyless_store::StoreError>| match r {
            Err(keyless_store::StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        };
        // Whether this start wrote anything the view holds (a restart writes nothing,
        // and then the view loaded by `open` is current: no second full load).
        let mut wrote = ignore_conflict(
            self.store
                .insert_tenant(&TenantRecord {
                    id: tenant_id.clone(),
                    display_name: "Default Directory".into(),
                    created_at: now,
                })
                .await,
        )?;
        wrote |= ignore_conflict(
            self.store
                .insert_subscription(&SubscriptionRecord {
                    id: subscription_id.clone(),
                    tenant_id: tenant_id.clone(),
                    display_name: "Keyless Subscription".into(),
                    created_at: now,
                })
                .await,
        )?;
        let client_id = self
            .store
            .meta_put_if_absent("bootstrap_admin_client", &new_guid()?)
            .await?;
        let admin_client = client_id.clone();
        let existing = self
            .store
            .all_service_principals()
            .await?
            .into_iter()
            .any(|sp| sp.client_id == client_id);
        let mut created = None;
        if !existing {
            let principal_id = new_guid()?;
            let secret_bytes = keyless_jose::random_bytes::<32>().map_err(OpenError::Random)?;
            let client_secret = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                secret_bytes,
            );
            let inserted = ignore_conflict(
                self.store
                    .insert_service_principal(&ServicePrincipalRecord {
                        client_id: client_id.clone(),
                        principal_id: principal_id.clone(),
                        tenant_id: tenant_id.clone(),
                        display_name: "keyless-admin".into(),
                        secret_hash: keyless_jose::hash_secret(&client_secret),
                        created_at: now,
                    })
                    .await,
            )?;
            wrote |= inserted;
            if inserted {
                let sub_scope = crate::ids::subscription_id(&subscription_id);
                for (scope, role) in [
                    (sub_scope.as_str(), rbac::OWNER),
                    (sub_scope.as_str(), rbac::KEY_VAULT_ADMINISTRATOR),
                    ("/", rbac::OWNER),
                ] {
                    ignore_conflict(
                        self.store
                            .insert_role_assignment(&RoleAssignmentRecord {
                                name: new_guid()?,
                                tenant_id: tenant_id.clone(),
                                scope: scope.to_string(),
                                role_definition_id: crate::ids::role_definition_id(
                                    Some(&subscription_id),
                                    role,
                                ),
                                principal_id: principal_id.clone(),
                                principal_type: "ServicePrincipal".into(),
                                description: Some("Bootstrap administrator".into()),
                                created_at: now,
                            })
                            .await,
                    )?;
                }
                created = Some(BootstrapAdmin {
                    tenant_id: tenant_id.clone(),
                    subscription_id: subscription_id.clone(),
                    client_id,
                    client_secret,
                });
            }
        }
        // Another replica may have bootstrapped after this one loaded its view.
        let snap = self.snapshot();
        let complete = snap.tenants.contains(&tenant_id)
            && snap.subscriptions.contains_key(&subscription_id)
            && snap.service_principals.values().any(|sp| {
                sp.client_id == admin_client && !snap.grants_of(&sp.principal_id).is_empty()
            });
        if wrote || !complete {
            self.refresh().await?;
        }
        self.ensure_signing_keys().await?;
        Ok(created)
    }

    /// Makes sure every tenant has a signing key, and drops keys whose tokens have all
    /// expired.
    pub async fn ensure_signing_keys(&self) -> Result<(), OpenError> {
        let _guard = self.key_writes.lock().await;
        let now = self.clock.now();
        self.store
            .delete_signing_keys_retired_before(
                now - self.settings.token_lifetime_secs - 2 * self.settings.clock_leeway_secs,
            )
            .await?;
        self.reload_keys().await?;
        let ring = self.key_ring();
        for tenant in self.store.list_tenants().await? {
            if !ring.has_current_or_next(&tenant.id) {
                let rec =
                    KeyRing::generate(&tenant.id, self.settings.signing_alg, now, now, &self.kek)?;
                self.store.insert_signing_key(&rec).await?;
            }
        }
        self.reload_keys().await
    }

    /// Reloads everything held in memory (view and signing keys) from the store.
    pub async fn reload_all(&self) -> Result<(), OpenError> {
        self.secret_cache.clear();
        self.view.reload(&*self.store).await?;
        self.reload_keys_between_writes().await
    }

    /// Starts the background work of a serving process: applying to the in-memory state
    /// what another replica changes in the database (the store's change feed), a periodic
    /// full resync as a safety net (`resync`; skipped when the store says its feed missed
    /// no write, see [`Store::may_have_missed_changes`]), and housekeeping every
    /// `settings.housekeeping_interval`.
    pub fn start_background(self: &Arc<Self>, resync: std::time::Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            match me.store.change_feed().await {
                Ok(Some(mut feed)) => {
                    // A full reload (the feed asks for one when it starts or resumes
                    // listening, or fell behind) runs beside the changes that follow it,
                    // not in front of them: the view records the changes applied while
                    // it loads and applies them again on top (`View::reload`). Applied in
                    // turn, a credential written on another replica right after this one
                    // started would wait for the whole reload (most of a second at
                    // 100,000 identities). Requests made while a reload runs are merged
                    // into one more reload after it (a `Notify` keeps one permit).
                    let wanted = Arc::new(tokio::sync::Notify::new());
                    let reloader = {
                        let (me, wanted) = (me.clone(), wanted.clone());
                        tokio::spawn(async move {
                            loop {
                                wanted.notified().await;
                                if let Err(e) = me.reload_all().await {
                                    tracing::warn!(error = %e, "reloading after a change notification failed; the periodic resync will catch up");
                                }
                            }
                        })
                    };
                    while let Some(change) = feed.recv().await {
                        if change == Change::Everything {
                            wanted.notify_one();
                            continue;
                        }
                        if let Err(e) = me.apply_from_feed(&change).await {
                            // Not left to the periodic resync (30 s by default): a full
                            // reload re-reads the key that could not be read.
                            tracing::warn!(error = %e, change = %change.encode(), "applying a change notification failed; reloading");
                            wanted.notify_one();
                        }
                    }
                    reloader.abort();
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "no change feed; relying on periodic resync"),
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(resync);
            tick.tick().await;
            // A failed reload is retried at the next tick whatever the store says: the
            // store counted the missed write as covered when it answered `true`.
            let mut failed = false;
            loop {
                tick.tick().await;
                let needed = failed
                    || me.store.may_have_missed_changes().await.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot tell whether changes were missed; resyncing");
                        true
                    });
                if !needed {
                    me.metrics.resync_skipped();
                    continue;
                }
                failed = match me.reload_all().await {
                    Ok(()) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "periodic resync failed; serving the last loaded state");
                        true
                    }
                };
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.settings.housekeeping_interval);
            loop {
                tick.tick().await;
                if let Err(e) = me.maintenance().await {
                    tracing::warn!(error = %e, "maintenance failed");
                }
            }
        });
    }

    /// Periodic housekeeping: the sign-in log's retention and row cap, idle and failed
    /// issuer cache entries, signing keys (see [`Keyless::ensure_signing_keys`]) and
    /// purging soft-deleted secrets whose retention has ended.
    pub async fn maintenance(&self) -> Result<(), OpenError> {
        // First and on its own: a failing key check must not let the log grow unbounded.
        match crate::signin::enforce_bounds(
            &*self.store,
            self.clock.now(),
            &self.settings.signin_log,
        )
        .await
        {
            Ok((expired, trimmed)) if expired + trimmed > 0 => {
                tracing::info!(
                    expired,
                    trimmed,
                    "deleted sign-in log rows past the retention or the row cap"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sign-in log housekeeping failed"),
        }
        let dropped = self.issuers.sweep();
        if dropped > 0 {
            tracing::info!(dropped, "dropped idle or failed issuer cache entries");
        }
        self.ensure_signing_keys().await?;
        let purged = self.store.purge_expired_secrets(self.clock.now()).await;
        // Whatever happened to the purge, no cached copy may outlive it.
        self.secret_cache.clear();
        let purged = purged?;
        if purged > 0 {
            tracing::info!(purged, "purged deleted secrets past their retention");
        }
        Ok(())
    }

    /// Rotates a tenant's signing key: the new key is published now and signs after the
    /// pre-publication window (`prepublish_secs`, default from settings); the previous
    /// key is retired when the new one takes over and stays published until its tokens
    /// have expired. Returns the new key id.
    ///
    /// `alg` switches the tenant's algorithm (e.g. RS256 for a relying party that only
    /// verifies RSA); without it the tenant keeps the algorithm of its newest key.
    pub async fn rotate_signing_key(
        &self,
        tenant: &str,
        prepublish_secs: Option<i64>,
        alg: Option<keyless_jose::Alg>,
    ) -> Result<String, OpenError> {
        let _guard = self.key_writes.lock().await;
        let now = self.clock.now();
        let active_from = now
            + prepublish_secs
                .unwrap_or(self.settings.key_prepublish_secs)
                .max(0);
        let alg = alg
            .or_else(|| {
                self.key_ring()
                    .newest(tenant)
                    .and_then(|k| keyless_jose::Alg::from_name(&k.record.alg))
            })
            .unwrap_or(self.settings.signing_alg);
        let rec = KeyRing::generate(tenant, alg, now, active_from, &self.kek)?;
        self.store.insert_signing_key(&rec).await?;
        for old in self.key_ring().tenant_keys(tenant) {
            if old.record.retired_at.is_none_or(|r| r > active_from) {
                self.store
                    .retire_signing_key(&old.record.kid, active_from)
                    .await?;
            }
        }
        self.reload_keys().await?;
        Ok(rec.kid)
    }
}
