//! The server's TLS material: what its generated certificate covers (the public host and
//! the vault hosts under it, plus loopback). Generation, the data directory layout and
//! the rustls configuration are in [`keyless_tls`].

use std::path::{Path, PathBuf};

use keyless_tls::{ServerPem, TlsError};

/// The names the generated server certificate covers.
pub fn server_names(public_host: &str) -> Vec<String> {
    let mut names = vec![public_host.to_string()];
    // Vault hosts are DNS names below the public host; under an IP address there are
    // none (`vault.10.0.0.1` is no host name, and a certificate naming it would not
    // pass a name-constrained CA).
    if public_host.parse::<std::net::IpAddr>().is_err() {
        names.push(format!("*.vault.{public_host}"));
        names.push(format!("vault.{public_host}"));
    }
    for extra in [
        "localhost",
        "*.vault.localhost",
        "vault.localhost",
        "127.0.0.1",
        "::1",
    ] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_string());
        }
    }
    names
}

/// Ensures `{dir}/ca.pem`, `ca-key.pem`, `server.pem`, `server-key.pem` exist and the
/// server certificate covers `public_host` ([`server_names`]); (re)issues the server
/// certificate from the stored CA when the names changed. Returns the server PEM and
/// the CA path.
pub fn ensure_generated(dir: &Path, public_host: &str) -> Result<(ServerPem, PathBuf), TlsError> {
    keyless_tls::local_ca::ensure_generated(dir, public_host, &server_names(public_host))
}
