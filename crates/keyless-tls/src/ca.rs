//! A certificate authority and the server certificates it issues: P-256 keys, a CA
//! constrained to issue only leaf certificates, leaves for server authentication.
//!
//! The CA's parameters are fixed by its [`CaProfile`], so a stored CA key re-creates the
//! same issuer: renewing a server certificate keeps the CA (and whatever trusts it).
//!
//! ```
//! use keyless_tls::ca::{Ca, CaProfile, Validity};
//! let validity = Validity::days_from_now(30);
//! let ca = Ca::generate(&CaProfile::new("Example CA", validity))?;
//! let leaf = ca.issue("svc.example", &["svc.example".into(), "127.0.0.1".into()], validity)?;
//! keyless_tls::server_config(&leaf.server_pem())?;
//! # Ok::<(), keyless_tls::TlsError>(())
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::config::ServerPem;
use crate::error::TlsError;
use crate::name_scope::NameScope;

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First instant of validity.
    pub not_before: OffsetDateTime,
    /// Last instant of validity.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago (clocks of clients drift) until `days` days from now.
    pub fn days_from_now(days: u32) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }
}

/// What a CA certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaProfile {
    /// Subject common name (the organisation is always `Keyless`).
    pub common_name: String,
    /// Validity of the CA certificate.
    pub validity: Validity,
    /// Name constraints: the only names the CA may vouch for (`None`: unconstrained).
    pub scope: Option<NameScope>,
}

impl CaProfile {
    /// A profile with this common name and validity, without name constraints.
    pub fn new(common_name: impl Into<String>, validity: Validity) -> CaProfile {
        CaProfile {
            common_name: common_name.into(),
            validity,
            scope: None,
        }
    }

    /// The same profile, constrained to `scope` (critical name constraints).
    pub fn constrained_to(mut self, scope: NameScope) -> CaProfile {
        self.scope = Some(scope);
        self
    }

    fn params(&self) -> Result<CertificateParams, TlsError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.common_name.as_str());
        dn.push(DnType::OrganizationName, "Keyless");
        p.distinguished_name = dn;
        // Path length 0: the CA signs server certificates, never another CA.
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = self.validity.not_before;
        p.not_after = self.validity.not_after;
        p.name_constraints = self.scope.as_ref().map(NameScope::to_rcgen);
        Ok(p)
    }
}

/// A CA that can issue server certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

// The key must never reach a log line.
impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA: a fresh P-256 key and a self-signed certificate.
    pub fn generate(profile: &CaProfile) -> Result<Ca, TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert_pem = profile.params()?.self_signed(&key)?.pem();
        Ok(Ca {
            issuer: Issuer::new(profile.params()?, key),
            cert_pem,
        })
    }

    /// A CA from an earlier run: its PEM certificate (kept as is) and PEM key. The
    /// profile must be the one it was generated with (the issuer name comes from it).
    pub fn from_pem(profile: &CaProfile, cert_pem: String, key_pem: &str) -> Result<Ca, TlsError> {
        Ok(Ca {
            issuer: Issuer::new(profile.params()?, KeyPair::from_pem(key_pem)?),
            cert_pem,
        })
    }

    /// The CA certificate, PEM (what clients trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PEM (keep it, mode 0600, to issue again later).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a server certificate with a fresh P-256 key for `common_name`, covering
    /// `names`: IP addresses become IP SANs, everything else DNS SANs (wildcards allowed).
    pub fn issue(
        &self,
        common_name: &str,
        names: &[String],
        validity: Validity,
    ) -> Result<IssuedCert, TlsError> {
        let mut leaf = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        leaf.distinguished_name = dn;
        leaf.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| TlsError::Name(n.clone())),
            })
            .collect::<Result<_, _>>()?;
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.not_before = validity.not_before;
        leaf.not_after = validity.not_after;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = leaf.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A server certificate and its key, PEM.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate (the leaf alone; clients trust the CA).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

// The key must never reach a log line.
impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// The pair as [`ServerPem`], for [`server_config`](crate::server_config).
    pub fn server_pem(&self) -> ServerPem {
        ServerPem {
            cert_chain: self.cert_pem.clone().into_bytes(),
            key: self.key_pem.clone().into_bytes(),
        }
    }
}

/// Client-side verification for the tests of this crate.
#[cfg(test)]
pub(crate) mod tests_support {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// Verifies the PEM leaf `leaf` for `name` against the PEM CA `ca` as a TLS client.
    pub(crate) fn verify_pem(ca: &[u8], leaf: &[u8], name: &str) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                CertificateDer::from_pem_slice(ca)
                    .map_err(|e| rustls::Error::General(e.to_string()))?,
            )
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        let end_entity = CertificateDer::from_pem_slice(leaf)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier
            .verify_server_cert(&end_entity, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    fn profile() -> CaProfile {
        CaProfile::new("Test CA", Validity::days_from_now(10))
    }

    /// Verifies `leaf` for `name` against `ca` as a TLS client would.
    fn verify(ca: &str, leaf: &IssuedCert, name: &str) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let end_entity = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
        verifier
            .verify_server_cert(
                &end_entity,
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn issued_certificate_covers_dns_names_and_ips() {
        let ca = Ca::generate(&profile()).unwrap();
        let names = [
            "svc.ns.svc".to_owned(),
            "*.vault.localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let leaf = ca
            .issue("svc.ns.svc", &names, Validity::days_from_now(1))
            .unwrap();
        for ok in ["svc.ns.svc", "a.vault.localhost", "127.0.0.1", "::1"] {
            verify(ca.cert_pem(), &leaf, ok).expect(ok);
        }
        for not in ["other.ns.svc", "a.b.vault.localhost", "127.0.0.2"] {
            assert!(verify(ca.cert_pem(), &leaf, not).is_err(), "{not}");
        }
    }

    #[test]
    fn stored_ca_issues_certificates_its_certificate_verifies() {
        let first = Ca::generate(&profile()).unwrap();
        let again =
            Ca::from_pem(&profile(), first.cert_pem().to_owned(), &first.key_pem()).unwrap();
        assert_eq!(again.cert_pem(), first.cert_pem());
        assert_eq!(again.key_pem(), first.key_pem());
        let leaf = again
            .issue("h", &["h".to_owned()], Validity::days_from_now(1))
            .unwrap();
        verify(first.cert_pem(), &leaf, "h").unwrap();
        // Another CA does not vouch for it.
        let other = Ca::generate(&profile()).unwrap();
        assert!(verify(other.cert_pem(), &leaf, "h").is_err());
    }

    #[test]
    fn a_name_that_is_no_dns_name_is_refused() {
        let ca = Ca::generate(&profile()).unwrap();
        let err = ca
            .issue(
                "x",
                &["bücher.example".to_owned()],
                Validity::days_from_now(1),
            )
            .unwrap_err();
        assert!(matches!(err, TlsError::Name(_)), "{err}");
    }

    #[test]
    fn a_constrained_ca_cannot_vouch_for_names_outside_its_scope() {
        let scope = NameScope::for_names(&["keyless.example".to_owned(), "10.1.2.3".to_owned()]);
        let ca = Ca::generate(&profile().constrained_to(scope)).unwrap();
        let inside = ca
            .issue(
                "keyless.example",
                &[
                    "keyless.example".to_owned(),
                    "*.vault.keyless.example".to_owned(),
                    "127.0.0.1".to_owned(),
                    "10.1.2.3".to_owned(),
                ],
                Validity::days_from_now(1),
            )
            .unwrap();
        for ok in [
            "keyless.example",
            "v1.vault.keyless.example",
            "127.0.0.1",
            "10.1.2.3",
        ] {
            verify(ca.cert_pem(), &inside, ok).expect(ok);
        }
        // What a thief with the CA key would issue: refused by a client, by DNS name
        // and by IP address alike.
        for (name, host) in [
            ("login.microsoftonline.com", "login.microsoftonline.com"),
            ("keyless.example.evil.test", "keyless.example.evil.test"),
            ("8.8.8.8", "8.8.8.8"),
            ("10.1.2.4", "10.1.2.4"),
        ] {
            let forged = ca
                .issue(name, &[name.to_owned()], Validity::days_from_now(1))
                .unwrap();
            assert!(
                verify(ca.cert_pem(), &forged, host).is_err(),
                "a constrained CA vouched for {host}"
            );
        }
    }

    #[test]
    fn a_key_that_is_no_pem_is_refused() {
        assert!(Ca::from_pem(&profile(), String::new(), "nonsense").is_err());
    }
}
