//! TLS material for Keyless' HTTPS listeners, shared by the server (`keyless serve`,
//! `keyless dev-cluster`) and the admission webhook without pulling either into the
//! other:
//!
//! - [`config`]: PEM certificate chain + key → rustls server configuration (aws-lc-rs,
//!   TLS 1.3 and 1.2, h2 + http/1.1).
//! - [`ca`]: a CA (new, or re-created from its stored key) and the server certificates
//!   it issues; one implementation, parametrised by names and validity.
//! - [`local_ca`]: a data directory holding a local CA and a server certificate,
//!   generated on first start and re-issued when the names change.
//! - [`reload`]: certificate and key files polled for changes, with the new
//!   configuration handed to the caller.
//! - [`files`]: secret and public files written atomically with fixed modes.
//! - [`name_scope`]: the name constraints of a generated CA.
#![warn(missing_docs)]

pub mod ca;
pub mod config;
pub mod error;
pub mod files;
pub mod local_ca;
pub mod name_scope;
pub mod reload;

pub use config::{ServerPem, load_files, server_config};
pub use error::TlsError;
