//! A data directory's own CA and server certificate, generated on first start, kept and
//! reused; the server certificate is re-issued from the stored CA when the names it
//! must cover change. Layout (kept stable: clients and scripts point at `ca.pem`):
//!
//! | file | what |
//! |---|---|
//! | `ca.pem`, `ca-key.pem` | the local CA clients trust (key 0600) |
//! | `server.pem`, `server-key.pem` | the HTTPS certificate (key 0600) |
//! | `server-names.json` | the names `server.pem` covers (JSON array) |
//! | `ca-scope.json` | the CA's name constraints ([`NameScope`], JSON) |
//!
//! The CA carries critical name constraints: the hosts it was made for and loopback,
//! nothing else. When the names to cover leave that scope (a new public host), or the
//! stored CA predates constraints (no `ca-scope.json`), a new CA is generated and the
//! old one is no longer trusted by anything Keyless serves: clients must trust the new
//! `ca.pem` (a warning says so). A read-only directory keeps what it has.

use std::path::{Path, PathBuf};

use crate::ca::{Ca, CaProfile, Validity};
use crate::config::{ServerPem, load_files};
use crate::error::{TlsError, io};
use crate::files::{write_private, write_public};
use crate::name_scope::NameScope;

/// The local CA: fixed dates, so a stored key re-creates the same issuer on every start.
fn ca_profile(scope: NameScope) -> CaProfile {
    CaProfile::new(
        "Keyless Local CA",
        Validity {
            not_before: rcgen::date_time_ymd(2025, 1, 1),
            not_after: rcgen::date_time_ymd(2045, 1, 1),
        },
    )
    .constrained_to(scope)
}

/// The stored CA, when there is one whose recorded scope covers every name.
fn stored_ca(
    ca_path: &Path,
    ca_key_path: &Path,
    scope_path: &Path,
    names: &[String],
) -> Result<Option<Ca>, TlsError> {
    if !(ca_key_path.exists() && ca_path.exists()) {
        return Ok(None);
    }
    let recorded: Option<NameScope> = std::fs::read(scope_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(scope) = recorded.filter(|s| names.iter().all(|n| s.covers(n))) else {
        return Ok(None);
    };
    let key = std::fs::read_to_string(ca_key_path).map_err(io(ca_key_path))?;
    let cert = std::fs::read_to_string(ca_path).map_err(io(ca_path))?;
    Ca::from_pem(&ca_profile(scope), cert, &key).map(Some)
}

/// Server certificates of the local CA: fixed dates, well inside the CA's.
fn server_validity() -> Validity {
    Validity {
        not_before: rcgen::date_time_ymd(2025, 1, 1),
        not_after: rcgen::date_time_ymd(2036, 1, 1),
    }
}

/// Ensures `{dir}/ca.pem`, `ca-key.pem`, `server.pem`, `server-key.pem` exist and the
/// server certificate (subject `common_name`) covers exactly `names` (DNS names,
/// wildcards, IP addresses); (re)issues it from the stored CA when the names changed.
/// Returns the server PEM and the path of the CA certificate.
pub fn ensure_generated(
    dir: &Path,
    common_name: &str,
    names: &[String],
) -> Result<(ServerPem, PathBuf), TlsError> {
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server-key.pem");
    let names_path = dir.join("server-names.json");
    let scope_path = dir.join("ca-scope.json");

    let mut new_ca = false;
    let ca = match stored_ca(&ca_path, &ca_key_path, &scope_path, names)? {
        Some(ca) => ca,
        None => {
            let replacing = ca_path.exists();
            let scope = NameScope::for_names(names);
            let ca = Ca::generate(&ca_profile(scope.clone()))?;
            let scope_json =
                serde_json::to_vec(&scope).map_err(|e| TlsError::Invalid(e.to_string()))?;
            write_private(&ca_key_path, ca.key_pem().as_bytes()).map_err(io(&ca_key_path))?;
            write_public(&ca_path, ca.cert_pem().as_bytes()).map_err(io(&ca_path))?;
            write_public(&scope_path, &scope_json).map_err(io(&scope_path))?;
            if replacing {
                tracing::warn!(
                    ca = %ca_path.display(),
                    "generated a new local CA constrained to {names:?}: the previous one did not cover these names or had no name constraints; clients must trust the new ca.pem"
                );
            }
            new_ca = true;
            ca
        }
    };

    let current: Option<Vec<String>> = std::fs::read(&names_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if new_ca || current.as_deref() != Some(names) || !cert_path.exists() || !key_path.exists() {
        let leaf = ca.issue(common_name, names, server_validity())?;
        write_private(&key_path, leaf.key_pem.as_bytes()).map_err(io(&key_path))?;
        write_public(&cert_path, leaf.cert_pem.as_bytes()).map_err(io(&cert_path))?;
        let names_json = serde_json::to_vec(names).map_err(|e| TlsError::Invalid(e.to_string()))?;
        write_public(&names_path, &names_json).map_err(io(&names_path))?;
    }
    Ok((load_files(&cert_path, &key_path)?, ca_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(host: &str) -> Vec<String> {
        vec![host.to_owned(), "127.0.0.1".to_owned()]
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn first_start_writes_the_layout_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, ca) = ensure_generated(dir.path(), "h", &names("h")).unwrap();
        assert_eq!(ca, dir.path().join("ca.pem"));
        crate::server_config(&pem).unwrap();
        for key in ["ca-key.pem", "server-key.pem"] {
            assert_eq!(mode(&dir.path().join(key)), 0o600, "{key}");
        }
        for public in ["ca.pem", "server.pem", "server-names.json"] {
            // 0644 less the umask: never more than that.
            assert_eq!(mode(&dir.path().join(public)) & !0o644, 0, "{public}");
        }
        let recorded = std::fs::read_to_string(dir.path().join("server-names.json")).unwrap();
        assert_eq!(recorded, r#"["h","127.0.0.1"]"#);
    }

    #[test]
    fn same_names_reuse_everything_new_names_reissue_from_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = ensure_generated(dir.path(), "h", &names("h")).unwrap();
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        let (again, _) = ensure_generated(dir.path(), "h", &names("h")).unwrap();
        assert!(again == first);
        // New names inside the CA's scope (a subdomain): a new leaf, the same CA.
        let (renamed, _) = ensure_generated(dir.path(), "k.h", &names("k.h")).unwrap();
        assert!(renamed.cert_chain != first.cert_chain);
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
    }

    #[test]
    fn a_host_outside_the_cas_scope_gets_a_new_constrained_ca() {
        let dir = tempfile::tempdir().unwrap();
        ensure_generated(dir.path(), "h.example", &names("h.example")).unwrap();
        let first_ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        // A subdomain is inside: same CA.
        ensure_generated(dir.path(), "a.h.example", &names("a.h.example")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), first_ca);
        // Another host is not: a new CA, whose scope covers it.
        ensure_generated(dir.path(), "k.example", &names("k.example")).unwrap();
        assert_ne!(std::fs::read(dir.path().join("ca.pem")).unwrap(), first_ca);
        let scope: NameScope =
            serde_json::from_slice(&std::fs::read(dir.path().join("ca-scope.json")).unwrap())
                .unwrap();
        assert!(scope.covers("k.example") && !scope.covers("h.example"));
    }

    #[test]
    fn an_unconstrained_ca_from_an_earlier_version_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        ensure_generated(dir.path(), "h", &names("h")).unwrap();
        let first_ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        // Earlier versions wrote no scope file.
        std::fs::remove_file(dir.path().join("ca-scope.json")).unwrap();
        let (pem, _) = ensure_generated(dir.path(), "h", &names("h")).unwrap();
        assert_ne!(std::fs::read(dir.path().join("ca.pem")).unwrap(), first_ca);
        assert!(dir.path().join("ca-scope.json").exists());
        crate::server_config(&pem).unwrap();
    }

    #[test]
    fn an_ip_address_as_public_host_gets_a_working_certificate() {
        let dir = tempfile::tempdir().unwrap();
        // What the server covers when its public host is an IP address.
        let names: Vec<String> = ["127.0.0.1", "localhost", "*.vault.localhost", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (pem, ca) = ensure_generated(dir.path(), "127.0.0.1", &names).unwrap();
        let ca_pem = std::fs::read(&ca).unwrap();
        crate::ca::tests_support::verify_pem(&ca_pem, &pem.cert_chain, "127.0.0.1").unwrap();
        crate::ca::tests_support::verify_pem(&ca_pem, &pem.cert_chain, "localhost").unwrap();
    }

    #[test]
    fn a_missing_server_key_is_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = ensure_generated(dir.path(), "h", &names("h")).unwrap();
        std::fs::remove_file(dir.path().join("server-key.pem")).unwrap();
        let (second, _) = ensure_generated(dir.path(), "h", &names("h")).unwrap();
        assert!(second.key != first.key);
        crate::server_config(&second).unwrap();
    }
}
