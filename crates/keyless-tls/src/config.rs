//! The rustls server configuration built from a PEM certificate chain and key.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{TlsError, io};

/// PEM certificate chain and private key of a server.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerPem {
    /// Certificate chain, leaf first.
    pub cert_chain: Vec<u8>,
    /// Private key.
    pub key: Vec<u8>,
}

// The key must never reach a log line.
impl std::fmt::Debug for ServerPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPem").finish_non_exhaustive()
    }
}

/// Reads a PEM certificate chain and key from files (operator-provided, or a mounted
/// Secret); [`server_config`] checks that they are usable.
pub fn load_files(cert: &Path, key: &Path) -> Result<ServerPem, TlsError> {
    Ok(ServerPem {
        cert_chain: std::fs::read(cert).map_err(io(cert))?,
        key: std::fs::read(key).map_err(io(key))?,
    })
}

/// Builds the rustls server configuration: aws-lc-rs provider (whatever the process
/// default is), TLS 1.3 and 1.2, ALPN h2 + http/1.1.
pub fn server_config(pem: &ServerPem) -> Result<Arc<rustls::ServerConfig>, TlsError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Ca, CaProfile, Validity};

    fn pair() -> ServerPem {
        let validity = Validity::days_from_now(1);
        let ca = Ca::generate(&CaProfile::new("Test CA", validity)).unwrap();
        let leaf = ca
            .issue("localhost", &["localhost".to_owned()], validity)
            .unwrap();
        leaf.server_pem()
    }

    #[test]
    fn config_speaks_h2_and_http1() {
        let config = server_config(&pair()).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn unusable_material_is_refused_with_a_reason() {
        let good = pair();
        let no_cert = ServerPem {
            cert_chain: Vec::new(),
            key: good.key.clone(),
        };
        let err = server_config(&no_cert).unwrap_err().to_string();
        assert!(err.contains("holds no certificate"), "{err}");
        let no_key = ServerPem {
            cert_chain: good.cert_chain.clone(),
            key: b"not a key".to_vec(),
        };
        let err = server_config(&no_key).unwrap_err().to_string();
        assert!(err.contains("private key"), "{err}");
        // A key of another certificate does not match this one.
        let other = pair();
        let mismatched = ServerPem {
            cert_chain: good.cert_chain,
            key: other.key,
        };
        assert!(server_config(&mismatched).is_err());
    }

    #[test]
    fn files_are_read_or_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let pem = pair();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, &pem.cert_chain).unwrap();
        std::fs::write(&key, &pem.key).unwrap();
        assert!(load_files(&cert, &key).unwrap() == pem);
        let missing = dir.path().join("missing.pem");
        let err = load_files(&cert, &missing).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }
}
