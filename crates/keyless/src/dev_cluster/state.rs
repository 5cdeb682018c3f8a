//! The issuer's persistent state: `{data_dir}/issuer-state.json`, mode 0600, replaced
//! atomically (temp file + rename) on every change, so a restart (or `dev-cluster
//! mint` in another process) sees the same keys and uids.
//!
//! ```json
//! {
//!   "version": 1,
//!   "issuer": "https://localhost:8444",
//!   "uidSeed": "<base64url, 32 bytes>",
//!   "keys": [
//!     {"kid": "…", "createdAt": 1750000000, "retiredAt": null,
//!      "privateKey": "-----BEGIN PRIVATE KEY-----\n…"}
//!   ]
//! }
//! ```
//!
//! Keys are oldest first; the last is current. `privateKey` is PKCS#8 PEM (so
//! `jq -r '.keys[-1].privateKey' | openssl pkey -pubout` works); `kid` is informative
//! only and is recomputed from the key on load.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::issuer::{Issuer, IssuerKey};

/// File name of the state inside the data directory.
pub const STATE_FILE: &str = "issuer-state.json";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile {
    version: u32,
    #[serde(default)]
    issuer: Option<String>,
    uid_seed: String,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyEntry {
    #[serde(default)]
    kid: String,
    created_at: i64,
    retired_at: Option<i64>,
    private_key: String,
}

/// What a data directory holds: keys, uid seed, and the issuer URL last served.
#[derive(Debug)]
pub struct Stored {
    /// The issuer URL of the last server start, if any.
    pub issuer: Option<String>,
    /// Seed of the object uids.
    pub uid_seed: [u8; 32],
    /// Keys, oldest first.
    pub keys: Vec<IssuerKey>,
}

/// Path of the state file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Reads the state, or `None` if the file does not exist yet.
pub fn load(dir: &Path) -> Result<Option<Stored>> {
    let path = path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let invalid = || format!("{} is not a valid dev-cluster state file", path.display());
    let file: StateFile = serde_json::from_slice(&bytes).with_context(invalid)?;
    if file.version != 1 {
        bail!(
            "{} has version {}; this keyless understands version 1",
            path.display(),
            file.version
        );
    }
    let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&file.uid_seed)
        .ok()
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .with_context(|| format!("{}: uidSeed must be 32 bytes of base64url", invalid()))?;
    let keys = file
        .keys
        .iter()
        .map(|k| {
            let der = PrivatePkcs8KeyDer::from_pem_slice(k.private_key.as_bytes())
                .map_err(|e| anyhow::anyhow!("{e}"))
                .and_then(|der| {
                    IssuerKey::from_pkcs8(der.secret_pkcs8_der(), k.created_at, k.retired_at)
                })
                .with_context(|| format!("{}: key '{}'", invalid(), k.kid))?;
            Ok(der)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Stored {
        issuer: file.issuer,
        uid_seed: seed,
        keys,
    }))
}

/// Writes the state of `issuer` (mode 0600, atomic).
pub fn save(dir: &Path, issuer: &Issuer) -> Result<()> {
    save_parts(dir, Some(issuer.url()), issuer.uid_seed(), issuer.keys())
}

/// Writes the state from its parts (mode 0600, atomic).
pub fn save_parts(
    dir: &Path,
    issuer: Option<&str>,
    uid_seed: &[u8; 32],
    keys: &[IssuerKey],
) -> Result<()> {
    let file = StateFile {
        version: 1,
        issuer: issuer.map(str::to_owned),
        uid_seed: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uid_seed),
        keys: keys
            .iter()
            .map(|k| KeyEntry {
                kid: k.kid().to_owned(),
                created_at: k.created_at(),
                retired_at: k.retired_at(),
                private_key: pkcs8_pem(k.signing_key().pkcs8_der()),
            })
            .collect(),
    };
    let path = path(dir);
    let json = serde_json::to_vec_pretty(&file)?;
    keyless_tls::files::write_private(&path, &json)
        .with_context(|| format!("writing {}", path.display()))
}

fn pkcs8_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    pem.push_str("-----BEGIN PRIVATE KEY-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        pem.push_str(line);
        pem.push('\n');
        rest = tail;
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trips_keys_seed_and_issuer_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let mut issuer = Issuer::new(
            "https://localhost:1/x".into(),
            [3; 32],
            vec![IssuerKey::generate(100).unwrap()],
        )
        .unwrap();
        issuer.rotate(IssuerKey::generate(200).unwrap(), 200);
        save(dir.path(), &issuer).unwrap();

        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.contains(r"-----BEGIN PRIVATE KEY-----\n"));

        let stored = load(dir.path()).unwrap().unwrap();
        assert_eq!(stored.issuer.as_deref(), Some("https://localhost:1/x"));
        assert_eq!(stored.uid_seed, [3; 32]);
        let kids: Vec<_> = stored.keys.iter().map(IssuerKey::kid).collect();
        let want: Vec<_> = issuer.keys().iter().map(IssuerKey::kid).collect();
        assert_eq!(kids, want);
        assert_eq!(stored.keys[0].retired_at(), Some(200));
        assert_eq!(stored.keys[1].created_at(), 200);
        assert_eq!(stored.keys[1].retired_at(), None);
    }

    #[test]
    fn refuses_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), b"{").unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("issuer-state.json"), "{err}");
        std::fs::write(
            path(dir.path()),
            br#"{"version":1,"uidSeed":"AA","keys":[]}"#,
        )
        .unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("uidSeed"), "{err}");
    }
}
