//! Projected token files, written like the kubelet writes a `serviceAccountToken`
//! volume: a fresh token at start, rewritten once 80% of its lifetime has passed,
//! always by atomic replacement (temp file in the same directory + rename), so a
//! reader sees the old token or the new one, never half of one.
//!
//! Files are written with mode 0600, not the 0644 of a kubelet volume: in a pod the
//! file sits in a mount only that pod's containers see, while here it sits on a shared
//! host file system where 0644 would hand the credential to every local user. (Run
//! the consumer as the same user, or copy the file with the mode it needs.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::cluster::DevCluster;
use super::issuer::TokenRequest;

/// Seconds before a failed write is retried.
const RETRY_AFTER: i64 = 10;

/// When the kubelet refreshes a projected token: once 80% of its lifetime `exp - iat`
/// has passed.
pub fn refresh_at(iat: i64, exp: i64) -> i64 {
    iat.saturating_add(exp.saturating_sub(iat).saturating_mul(4) / 5)
}

#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
    /// When to rewrite; `i64::MIN` until first written.
    next_refresh: i64,
}

/// The token files of one projected volume: every file holds a token for the same
/// request.
#[derive(Debug)]
pub struct Projector {
    request: TokenRequest,
    files: Vec<TokenFile>,
}

impl Projector {
    /// Token files at `paths` (duplicates removed) for `request`. Fails on a path
    /// without a file name or an invalid request.
    pub fn new(paths: &[PathBuf], request: TokenRequest) -> Result<Projector> {
        request
            .validate()
            .map_err(anyhow::Error::msg)
            .context("invalid token file settings")?;
        let mut seen = BTreeSet::new();
        let mut files = Vec::new();
        for path in paths {
            if path.file_name().is_none() {
                bail!("--token-file '{}' does not name a file", path.display());
            }
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            if seen.insert(path.clone()) {
                files.push(TokenFile {
                    path,
                    next_refresh: i64::MIN,
                });
            }
        }
        Ok(Projector { request, files })
    }

    /// Whether there is any file to write.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files, for logging.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Writes every file whose refresh time has come at `now`, with a token from
    /// `mint(request, now)`. Returns the next time a file is due, and the files that
    /// could not be written (retried [`RETRY_AFTER`] seconds later).
    pub fn refresh_due(
        &mut self,
        now: i64,
        mint: impl Fn(&TokenRequest, i64) -> Result<String>,
    ) -> (Option<i64>, Vec<(PathBuf, anyhow::Error)>) {
        let mut failures = Vec::new();
        for file in &mut self.files {
            if now < file.next_refresh {
                continue;
            }
            let exp = now.saturating_add(self.request.expiration_seconds);
            match mint(&self.request, now).and_then(|token| write_token(&file.path, &token)) {
                Ok(()) => {
                    file.next_refresh = refresh_at(now, exp);
                    tracing::debug!(path = %file.path.display(), next_refresh = file.next_refresh, "wrote token file");
                }
                Err(e) => {
                    file.next_refresh = now.saturating_add(RETRY_AFTER);
                    failures.push((file.path.clone(), e));
                }
            }
        }
        let next = self.files.iter().map(|f| f.next_refresh).min();
        (next, failures)
    }

    /// Rewrites the files on schedule forever (re-reading the clock at least every
    /// minute, so suspends and clock jumps are caught).
    pub async fn run(mut self, cluster: Arc<DevCluster>) {
        loop {
            let now = cluster.now();
            let (next, failures) = self.refresh_due(now, |req, at| cluster.mint_at(req, at));
            for (path, error) in failures {
                tracing::error!(path = %path.display(), error = format!("{error:#}"), "cannot write token file; retrying");
            }
            let Some(next) = next else { return };
            let wait = next.saturating_sub(now).clamp(1, 60);
            tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(60))).await;
        }
    }
}

/// Writes `token` to `path` atomically with mode 0600, creating the directory.
fn write_token(path: &Path, token: &str) -> Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    keyless_tls::files::write_private(path, token.as_bytes())
        .with_context(|| format!("writing token file {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::PermissionsExt;

    const T0: i64 = 1_750_000_000;

    fn request(expiration_seconds: i64) -> TokenRequest {
        TokenRequest {
            namespace: "default".into(),
            service_account: "sa".into(),
            pod_name: Some("p".into()),
            audiences: vec!["api://AzureADTokenExchange".into()],
            expiration_seconds,
        }
    }

    #[test]
    fn refresh_is_at_80_percent_of_the_lifetime() {
        assert_eq!(refresh_at(T0, T0 + 3600), T0 + 2880);
        assert_eq!(refresh_at(T0, T0 + 600), T0 + 480);
        assert_eq!(refresh_at(T0, T0 + 86_400), T0 + 69_120);
        assert_eq!(refresh_at(0, 7), 5);
    }

    #[test]
    fn files_are_written_at_once_then_rewritten_on_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("tokens/a/azure-identity-token");
        let b = dir.path().join("b");
        let mut p = Projector::new(&[a.clone(), b.clone(), a.clone()], request(3600)).unwrap();
        assert_eq!(p.paths().count(), 2);
        let minted = Cell::new(0);
        let mint = |req: &TokenRequest, now: i64| {
            minted.set(minted.get() + 1);
            Ok(format!(
                "token-{}-{now}-{}",
                req.service_account,
                minted.get()
            ))
        };

        let (next, failures) = p.refresh_due(T0, mint);
        assert!(failures.is_empty());
        assert_eq!(next, Some(T0 + 2880));
        assert_eq!(minted.get(), 2, "one token per file");
        assert_eq!(
            std::fs::read_to_string(&a).unwrap(),
            format!("token-sa-{T0}-1")
        );
        assert_eq!(
            std::fs::read_to_string(&b).unwrap(),
            format!("token-sa-{T0}-2")
        );
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Not yet due: nothing is rewritten.
        let (next, _) = p.refresh_due(T0 + 2879, mint);
        assert_eq!(next, Some(T0 + 2880));
        assert_eq!(minted.get(), 2);

        // At 80%: rewritten, next refresh 80% into the new token's lifetime.
        let t = T0 + 2880;
        let (next, _) = p.refresh_due(t, mint);
        assert_eq!(minted.get(), 4);
        assert_eq!(next, Some(t + 2880));
        assert_eq!(
            std::fs::read_to_string(&a).unwrap(),
            format!("token-sa-{t}-3")
        );
        // No temp files are left behind.
        let names: Vec<_> = std::fs::read_dir(a.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_failed_write_is_retried_soon_and_does_not_block_others() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"x").unwrap();
        let bad = blocker.join("token");
        let good = dir.path().join("good");
        let mut p = Projector::new(&[bad.clone(), good.clone()], request(600)).unwrap();
        let (next, failures) = p.refresh_due(T0, |_, _| Ok("t".into()));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, bad);
        assert_eq!(next, Some(T0 + RETRY_AFTER));
        assert_eq!(std::fs::read_to_string(&good).unwrap(), "t");
    }

    #[test]
    fn new_refuses_bad_settings() {
        assert!(Projector::new(&[PathBuf::from("/")], request(3600)).is_err());
        assert!(Projector::new(&[PathBuf::from("t")], request(10)).is_err());
        assert!(Projector::new(&[], request(3600)).unwrap().is_empty());
    }
}
