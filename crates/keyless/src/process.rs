//! Process plumbing shared by the long-running commands (`serve`, `dev-cluster`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Installs SIGTERM and SIGINT handlers now and returns a future that resolves on the
/// first signal. Installing before the ready line makes a supervisor's SIGTERM right
/// after readiness a clean shutdown instead of a kill.
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

/// `p` made absolute (for paths written into files other programs read).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Creates a directory readable only by its owner (keys live there); an existing one is
/// left as it is (it may be a directory the user named for other things too).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Creates a data directory readable only by its owner, or tightens an existing one to
/// 0700 with a warning: a directory others can list or enter exposes the names and,
/// through any file created with a looser mode, the contents of keys. A directory that
/// cannot be changed (a read-only mount of a Secret) is used as it is.
pub fn private_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        return create_private_dir(dir);
    }
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read data directory {}", dir.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "the data directory {} is not a directory",
        dir.display()
    );
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            Ok(()) => tracing::warn!(
                dir = %dir.display(),
                "the data directory was mode {mode:o}, open to other users: tightened to 0700"
            ),
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "the data directory is mode {mode:o}, open to other users, and could not be tightened to 0700"
            ),
        }
    }
    Ok(())
}
