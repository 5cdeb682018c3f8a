//! TLS material: a local CA and a server certificate generated on first start (kept in
//! the data directory and reused), or operator-provided PEM files; and the rustls
//! server configuration (aws-lc-rs, TLS 1.3 preferred, 1.2 allowed).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};

use crate::files::{write_private, write_public};

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
    /// The PEM files are not a usable certificate chain and key.
    #[error("invalid TLS material: {0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// PEM certificate chain and private key of the server.
#[derive(Clone)]
pub struct ServerPem {
    /// Certificate chain, leaf first.
    pub cert_chain: Vec<u8>,
    /// Private key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for ServerPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPem").finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Keyless Local CA");
    dn.push(DnType::OrganizationName, "Keyless");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

/// The names the generated server certificate covers.
pub fn server_names(public_host: &str) -> Vec<String> {
    let mut names = vec![
        public_host.to_string(),
        format!("*.vault.{public_host}"),
        format!("vault.{public_host}"),
    ];
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
/// server certificate covers `public_host`; (re)issues the server certificate from the
/// stored CA when the names changed. Returns the server PEM and the CA path.
pub fn ensure_generated(dir: &Path, public_host: &str) -> Result<(ServerPem, PathBuf), TlsError> {
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server-key.pem");
    let names_path = dir.join("server-names.json");
    let names = server_names(public_host);

    let ca_key = if ca_key_path.exists() && ca_path.exists() {
        let pem = std::fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
        KeyPair::from_pem(&pem)?
    } else {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes()).map_err(io(&ca_key_path))?;
        write_public(&ca_path, cert.pem().as_bytes()).map_err(io(&ca_path))?;
        key
    };

    let current: Option<Vec<String>> = std::fs::read(&names_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if current.as_ref() != Some(&names) || !cert_path.exists() || !key_path.exists() {
        let issuer = Issuer::new(ca_params()?, ca_key);
        let mut leaf = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, public_host);
        leaf.distinguished_name = dn;
        leaf.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()?;
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.not_before = rcgen::date_time_ymd(2025, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = leaf.signed_by(&leaf_key, &issuer)?;
        write_private(&key_path, leaf_key.serialize_pem().as_bytes()).map_err(io(&key_path))?;
        write_public(&cert_path, cert.pem().as_bytes()).map_err(io(&cert_path))?;
        let names_json =
            serde_json::to_vec(&names).map_err(|e| TlsError::Invalid(e.to_string()))?;
        write_public(&names_path, &names_json).map_err(io(&names_path))?;
    }
    let pem = ServerPem {
        cert_chain: std::fs::read(&cert_path).map_err(io(&cert_path))?,
        key: std::fs::read(&key_path).map_err(io(&key_path))?,
    };
    Ok((pem, ca_path))
}

/// Reads operator-provided PEM files.
pub fn load_files(cert: &Path, key: &Path) -> Result<ServerPem, TlsError> {
    Ok(ServerPem {
        cert_chain: std::fs::read(cert).map_err(io(cert))?,
        key: std::fs::read(key).map_err(io(key))?,
    })
}

/// Builds the rustls server configuration (aws-lc-rs provider, h2 + http/1.1).
pub fn server_config(pem: &ServerPem) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.cert_chain)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Invalid(format!("certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Invalid(
            "the certificate file holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem.key)
        .map_err(|e| TlsError::Invalid(format!("private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
