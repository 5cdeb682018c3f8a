//! Serving certificate from files, reloaded when they change on disk.
//!
//! The files are polled (contents compared), which works with Kubernetes Secret
//! volumes, where an update swaps a `..data` symlink and inotify on the file sees
//! nothing. A changed pair that does not load (say, the certificate was replaced but the
//! key not yet) is reported once and retried at the next poll; the caller keeps serving
//! the previous certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ServerPem, load_files, server_config};
use crate::error::TlsError;

/// The certificate chain and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `tls.crt` and `tls.key` in `dir` (the layout of a `kubernetes.io/tls` Secret).
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }

    fn read(&self) -> Result<ServerPem, TlsError> {
        load_files(&self.cert, &self.key)
    }

    /// Reads and validates the pair.
    pub fn load(&self) -> Result<(ServerPem, Arc<rustls::ServerConfig>), TlsError> {
        let pem = self.read()?;
        let config = server_config(&pem)?;
        Ok((pem, config))
    }
}

/// Waits until the files hold a usable pair, polling every `interval` (the Secret may
/// not be populated yet, e.g. by cert-manager). Logs each distinct failure once.
pub async fn wait_for_files(
    files: &TlsFiles,
    interval: Duration,
) -> (ServerPem, Arc<rustls::ServerConfig>) {
    let mut last_error = String::new();
    loop {
        match files.load() {
            Ok(loaded) => return loaded,
            Err(e) => {
                let msg = e.to_string();
                if msg != last_error {
                    tracing::warn!(error = %msg, "waiting for usable TLS certificate and key");
                    last_error = msg;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// What a poll found after the files changed.
#[derive(Debug)]
pub enum Reload {
    /// The new pair loads: serve it to new connections.
    Loaded(Arc<rustls::ServerConfig>),
    /// The new pair does not load; keep the previous one. Not repeated for the same pair.
    Failed(TlsError),
}

/// Polls the files every `interval` and calls `on_change` once per changed pair, with
/// the configuration built from it or why it does not load. `current` is the pair
/// already served (from [`wait_for_files`]). Open connections are the caller's concern.
pub fn spawn_reloader(
    files: TlsFiles,
    current: ServerPem,
    interval: Duration,
    mut on_change: impl FnMut(Reload) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut current = current;
        // The last pair that failed to load, so a bad pair is reported once.
        let mut failed: Option<ServerPem> = None;
        loop {
            tokio::time::sleep(interval).await;
            let Ok(pem) = files.read() else { continue };
            if pem == current || failed.as_ref() == Some(&pem) {
                continue;
            }
            match server_config(&pem) {
                Ok(config) => {
                    on_change(Reload::Loaded(config));
                    tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                    current = pem;
                    failed = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "changed TLS files do not load; keeping the previous certificate");
                    on_change(Reload::Failed(e));
                    failed = Some(pem);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Ca, CaProfile, Validity};
    use crate::files::write_public;

    fn issue(name: &str) -> ServerPem {
        let validity = Validity::days_from_now(1);
        let ca = Ca::generate(&CaProfile::new("Test CA", validity)).unwrap();
        ca.issue(name, &[name.to_owned()], validity)
            .unwrap()
            .server_pem()
    }

    // Atomic writes: a poll never sees half a file.
    fn write(files: &TlsFiles, pem: &ServerPem) {
        write_public(&files.cert, &pem.cert_chain).unwrap();
        write_public(&files.key, &pem.key).unwrap();
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Reload>) -> Reload {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a reload report")
            .unwrap()
    }

    #[tokio::test]
    async fn waits_for_the_files_then_reports_each_changed_pair_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::in_dir(dir.path());
        let poll = Duration::from_millis(20);

        // Nothing there yet: the wait goes on until a usable pair appears.
        let waiting = tokio::spawn({
            let files = files.clone();
            async move { wait_for_files(&files, poll).await }
        });
        let first = issue("first");
        write(&files, &first);
        let (loaded, _) = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("files load")
            .unwrap();
        assert!(loaded == first);

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let reloader = spawn_reloader(files.clone(), first, poll, move |r| {
            let _ = tx.send(r);
        });

        // A certificate whose key is not there yet: one failure, not one per poll.
        let second = issue("second");
        write_public(&files.cert, &second.cert_chain).unwrap();
        assert!(matches!(next(&mut rx).await, Reload::Failed(_)));
        // The key follows: the pair loads.
        write_public(&files.key, &second.key).unwrap();
        assert!(matches!(next(&mut rx).await, Reload::Loaded(_)));
        // Unchanged files: nothing more.
        tokio::time::sleep(poll * 5).await;
        assert!(rx.try_recv().is_err());
        reloader.abort();
    }

    #[test]
    fn in_dir_is_the_kubernetes_tls_secret_layout() {
        let files = TlsFiles::in_dir(Path::new("/s"));
        assert_eq!(files.cert, Path::new("/s/tls.crt"));
        assert_eq!(files.key, Path::new("/s/tls.key"));
    }
}
