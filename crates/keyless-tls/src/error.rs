//! The one error type of TLS set-up.

use std::path::{Path, PathBuf};

/// TLS set-up errors.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A name is neither an IP address nor usable as a DNS name in a certificate.
    #[error("{0:?} is not a valid DNS name")]
    Name(String),
    /// The PEM files are not a usable certificate chain and key.
    #[error("invalid TLS material: {0}")]
    Invalid(String),
}

/// Maps an IO error on `path` to [`TlsError::Io`].
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}
