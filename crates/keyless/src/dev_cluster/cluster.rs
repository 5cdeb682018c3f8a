//! The running issuer: the [`Issuer`] behind a lock, its clock, and its data
//! directory. Rotations are serialised and persisted before they are reported.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use keyless_core::Clock;
use keyless_jose::{JwkSet, random_bytes};

use super::issuer::{Discovery, Issuer, IssuerKey, TokenRequest};
use super::state;

/// The issuer shared by the HTTP handlers, the token file projector, the rotation
/// timer and the SIGHUP handler.
pub struct DevCluster {
    issuer: RwLock<Issuer>,
    clock: Arc<dyn Clock>,
    data_dir: PathBuf,
    rotation_period: Option<i64>,
    /// Serialises rotate + persist, so the file never goes back to an older state.
    rotating: tokio::sync::Mutex<()>,
}

/// Loads the keys from `data_dir`, or creates the first key and the uid seed.
pub fn load_or_create(data_dir: &Path, now: i64) -> Result<state::Stored> {
    if let Some(stored) = state::load(data_dir)? {
        return Ok(stored);
    }
    let uid_seed = random_bytes::<32>()?;
    let keys = vec![IssuerKey::generate(now)?];
    state::save_parts(data_dir, None, &uid_seed, &keys)?;
    tracing::info!(kid = ?keys.first().map(IssuerKey::kid), "generated the first signing key");
    Ok(state::Stored {
        issuer: None,
        uid_seed,
        keys,
    })
}

impl DevCluster {
    /// Opens the issuer at `url`: loads (or creates) its keys, drops expired ones,
    /// rotates at once if the current key is older than `rotation_period`, and
    /// records `url` in the state file for `dev-cluster mint`.
    pub fn open(
        data_dir: &Path,
        url: String,
        clock: Arc<dyn Clock>,
        rotation_period: Option<i64>,
    ) -> Result<DevCluster> {
        let now = clock.now();
        let stored = load_or_create(data_dir, now)?;
        let mut issuer = Issuer::new(url, stored.uid_seed, stored.keys)
            .with_context(|| format!("{}", state::path(data_dir).display()))?;
        for kid in issuer.prune(now) {
            tracing::info!(%kid, "dropped a retired signing key after its overlap window");
        }
        if issuer
            .rotation_due_at(rotation_period)
            .is_some_and(|t| now >= t)
        {
            let old = issuer.current().map(|k| k.kid().to_owned());
            issuer.rotate(IssuerKey::generate(now)?, now);
            tracing::info!(old = ?old, new = ?issuer.current().map(IssuerKey::kid), "rotated the signing key: it was older than --key-rotation");
        }
        state::save(data_dir, &issuer)?;
        Ok(DevCluster {
            issuer: RwLock::new(issuer),
            clock,
            data_dir: data_dir.to_path_buf(),
            rotation_period,
            rotating: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Issuer> {
        // A panic while holding the lock leaves the issuer consistent (every
        // mutation is a single push/retain), so poisoning is not fatal.
        self.issuer.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Issuer> {
        self.issuer.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Now, by the cluster's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The discovery document.
    pub fn discovery(&self) -> Discovery {
        self.read().discovery()
    }

    /// The published keys, current first.
    pub fn jwks(&self) -> JwkSet {
        self.read().jwks()
    }

    /// A token for `req` issued at `now`, signed with the current key.
    pub fn mint_at(&self, req: &TokenRequest, now: i64) -> Result<String> {
        self.read().mint(req, now)
    }

    /// A token for `req` issued now.
    pub fn mint(&self, req: &TokenRequest) -> Result<String> {
        self.mint_at(req, self.now())
    }

    /// Rotates the signing key now; returns the published kids, current first.
    pub async fn rotate(&self, reason: &'static str) -> Result<Vec<String>> {
        let _serial = self.rotating.lock().await;
        let now = self.now();
        let new = generate(now).await?;
        let (old, dropped) = {
            let mut issuer = self.write();
            let old = issuer.current().map(|k| k.kid().to_owned());
            (old, issuer.rotate(new, now))
        };
        for kid in dropped {
            tracing::warn!(%kid, "dropped a retired signing key early: more than the published key cap; tokens it signed no longer verify");
        }
        self.persist()?;
        let kids: Vec<String> = self.jwks().keys.into_iter().filter_map(|k| k.kid).collect();
        tracing::info!(reason, old = ?old, new = ?kids.first(), published = kids.len(), "rotated the signing key");
        Ok(kids)
    }

    /// Drops keys past their overlap window and rotates if the period elapsed.
    /// Returns when this should run next, if anything is scheduled.
    pub async fn maintain(&self) -> Result<Option<i64>> {
        let due = {
            let _serial = self.rotating.lock().await;
            let now = self.now();
            let (dropped, due) = {
                let mut issuer = self.write();
                let dropped = issuer.prune(now);
                let due = issuer
                    .rotation_due_at(self.rotation_period)
                    .is_some_and(|t| now >= t);
                (dropped, due)
            };
            for kid in &dropped {
                tracing::info!(%kid, "dropped a retired signing key after its overlap window");
            }
            if !dropped.is_empty() && !due {
                self.persist()?;
            }
            due
        };
        if due {
            self.rotate("--key-rotation period elapsed").await?;
        }
        let issuer = self.read();
        Ok([
            issuer.next_prune_at(),
            issuer.rotation_due_at(self.rotation_period),
        ]
        .into_iter()
        .flatten()
        .min())
    }

    /// Runs [`maintain`](Self::maintain) forever, waking when something is due (and
    /// at least every minute, so wall-clock jumps and suspends are noticed).
    pub async fn run_maintenance(self: Arc<Self>) {
        loop {
            let wait = match self.maintain().await {
                Ok(next) => next.map_or(60, |t| t.saturating_sub(self.now())),
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "signing key maintenance failed; retrying in 30 s"
                    );
                    30
                }
            };
            let secs = u64::try_from(wait.clamp(1, 60)).unwrap_or(60);
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
    }

    fn persist(&self) -> Result<()> {
        let issuer = self.read();
        state::save(&self.data_dir, &issuer)
    }
}

async fn generate(now: i64) -> Result<IssuerKey> {
    tokio::task::spawn_blocking(move || IssuerKey::generate(now))
        .await
        .context("key generation task failed")?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::issuer::KEY_OVERLAP;
    use super::*;
    use keyless_core::clock::ManualClock;

    const T0: i64 = 1_750_000_000;

    struct Shared(Arc<ManualClock>);
    impl Clock for Shared {
        fn now(&self) -> i64 {
            self.0.now()
        }
    }

    #[tokio::test]
    async fn restart_keeps_keys_and_timer_rotation_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let open = |url: &str| {
            DevCluster::open(
                dir.path(),
                url.into(),
                Arc::new(Shared(clock.clone())),
                Some(3600),
            )
            .unwrap()
        };
        let c = open("https://localhost:1");
        let first = c.jwks().keys[0].kid.clone().unwrap();
        assert_eq!(c.maintain().await.unwrap(), Some(T0 + 3600));
        drop(c);

        // A restart on another port keeps the key and records the new URL.
        let c = open("https://localhost:2");
        assert_eq!(c.jwks().keys.len(), 1);
        assert_eq!(c.jwks().keys[0].kid.as_deref(), Some(first.as_str()));
        let stored = state::load(dir.path()).unwrap().unwrap();
        assert_eq!(stored.issuer.as_deref(), Some("https://localhost:2"));

        // Period elapsed: the next maintenance rotates, both keys published.
        clock.advance(3600);
        let next = c.maintain().await.unwrap();
        let kids: Vec<_> = c.jwks().keys.into_iter().map(|k| k.kid.unwrap()).collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[1], first);
        assert_eq!(next, Some(T0 + 7200));

        // Persisted: a restart sees both keys with the new one current.
        drop(c);
        let c = open("https://localhost:2");
        let again: Vec<_> = c.jwks().keys.into_iter().map(|k| k.kid.unwrap()).collect();
        assert_eq!(again, kids);

        // On-demand rotation adds a third key; after the overlap the first is gone.
        let published = c.rotate("test").await.unwrap();
        assert_eq!(published.len(), 3);
        clock.advance(KEY_OVERLAP);
        c.maintain().await.unwrap();
        let left: Vec<_> = c.jwks().keys.into_iter().map(|k| k.kid.unwrap()).collect();
        assert!(!left.contains(&first), "{left:?}");
    }
}
