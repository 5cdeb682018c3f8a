//! A CA and a serving certificate for the webhook's Service (`<service>.<namespace>.svc`),
//! for clusters without cert-manager (`keyless webhook certs`).
//!
//! The CA is self-signed and used for nothing else; reusing it (pass it back in) keeps
//! the `caBundle` of the MutatingWebhookConfiguration unchanged when the serving
//! certificate is renewed.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};

/// Certificate generation errors.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A name is not usable in a certificate.
    #[error("{0:?} is not a valid DNS name")]
    Name(String),
}

/// PEM material for the webhook.
#[derive(Clone)]
pub struct WebhookCerts {
    /// The CA certificate (goes into `caBundle`).
    pub ca_cert_pem: String,
    /// The CA's private key (keep it to renew the serving certificate).
    pub ca_key_pem: String,
    /// The serving certificate (`tls.crt`).
    pub cert_pem: String,
    /// The serving key (`tls.key`).
    pub key_pem: String,
}

impl std::fmt::Debug for WebhookCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCerts").finish_non_exhaustive()
    }
}

/// The DNS names the API server may use for the Service.
///
/// ```
/// assert_eq!(keyless_webhook::certs::service_dns_names("wh", "sys"),
///     ["wh", "wh.sys", "wh.sys.svc", "wh.sys.svc.cluster.local"]);
/// ```
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// The CA's parameters: fixed, so a stored CA key re-creates the same issuer.
fn ca_params(not_before: OffsetDateTime) -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Keyless Webhook CA");
    dn.push(DnType::OrganizationName, "Keyless");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = not_before;
    p.not_after = not_before + Duration::days(3650);
    Ok(p)
}

/// Issues a serving certificate for the Service, valid `days` days, signed by
/// `existing_ca` (PEM certificate and key from an earlier run) or by a new CA.
pub fn generate(
    service: &str,
    namespace: &str,
    days: u32,
    existing_ca: Option<(&str, &str)>,
) -> Result<WebhookCerts, CertError> {
    let now = OffsetDateTime::now_utc();
    let not_before = now - Duration::hours(1);
    let (ca_key, ca_cert_pem) = match existing_ca {
        Some((cert, key)) => (KeyPair::from_pem(key)?, cert.to_owned()),
        None => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let cert = ca_params(not_before)?.self_signed(&key)?;
            (key, cert.pem())
        }
    };
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params(not_before)?, ca_key);

    let names = service_dns_names(service, namespace);
    let mut leaf = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{service}.{namespace}.svc"));
    leaf.distinguished_name = dn;
    leaf.subject_alt_names = names
        .iter()
        .map(|n| {
            n.clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| CertError::Name(n.clone()))
        })
        .collect::<Result<_, _>>()?;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.not_before = not_before;
    leaf.not_after = now + Duration::days(i64::from(days));
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(WebhookCerts {
        ca_cert_pem,
        ca_key_pem,
        cert_pem: cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_server::tls::{ServerPem, server_config};

    #[test]
    fn serving_pair_loads_and_ca_is_reused() {
        let first = generate("keyless-webhook", "keyless-system", 365, None).unwrap();
        server_config(&ServerPem {
            cert_chain: first.cert_pem.clone().into_bytes(),
            key: first.key_pem.clone().into_bytes(),
        })
        .unwrap();
        let second = generate(
            "keyless-webhook",
            "keyless-system",
            30,
            Some((&first.ca_cert_pem, &first.ca_key_pem)),
        )
        .unwrap();
        assert_eq!(second.ca_cert_pem, first.ca_cert_pem);
        assert_ne!(second.cert_pem, first.cert_pem);
    }
}
