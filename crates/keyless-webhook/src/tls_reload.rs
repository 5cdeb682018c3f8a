//! Serving certificate from files, reloaded when they change on disk.
//!
//! The files are polled (contents compared), which works with Kubernetes Secret
//! volumes, where an update swaps a `..data` symlink and inotify on the file sees
//! nothing. A changed pair that does not load (say, the certificate was replaced but the
//! key not yet) is ignored and retried at the next poll; the previous certificate keeps
//! serving. New connections get the new certificate; open ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use keyless_server::tls::{ServerPem, TlsError, server_config};

use crate::metrics::Metrics;

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
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        Ok(ServerPem {
            cert_chain: read(&self.cert)?,
            key: read(&self.key)?,
        })
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
pub async fn wait_for_files(files: &TlsFiles, interval: Duration) -> (ServerPem, RustlsConfig) {
    let mut last_error = String::new();
    loop {
        match files.load() {
            Ok((pem, config)) => return (pem, RustlsConfig::from_config(config)),
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

/// Polls the files every `interval` and reloads `rustls` when they changed and load.
pub fn spawn_reloader(
    files: TlsFiles,
    current: ServerPem,
    rustls: RustlsConfig,
    interval: Duration,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut current = current;
        // The last pair that failed to load, so a bad pair is reported once.
        let mut failed: Option<ServerPem> = None;
        loop {
            tokio::time::sleep(interval).await;
            let Ok(pem) = files.read() else { continue };
            if same(&pem, &current) || failed.as_ref().is_some_and(|f| same(f, &pem)) {
                continue;
            }
            match server_config(&pem) {
                Ok(config) => {
                    rustls.reload_from_config(config);
                    metrics.tls_reload(true);
                    tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                    current = pem;
                    failed = None;
                }
                Err(e) => {
                    metrics.tls_reload(false);
                    tracing::warn!(error = %e, "changed TLS files do not load; keeping the previous certificate");
                    failed = Some(pem);
                }
            }
        }
    })
}

fn same(a: &ServerPem, b: &ServerPem) -> bool {
    a.cert_chain == b.cert_chain && a.key == b.key
}
