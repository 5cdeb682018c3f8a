//! A CA and a serving certificate for the webhook's Service (`<service>.<namespace>.svc`),
//! for clusters without cert-manager (`keyless webhook certs`).
//!
//! The CA is self-signed and used for nothing else; reusing it (pass it back in) keeps
//! the `caBundle` of the MutatingWebhookConfiguration unchanged when the serving
//! certificate is renewed.

use keyless_tls::TlsError;
use keyless_tls::ca::{Ca, CaProfile, Validity};

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

// The keys must never reach a log line.
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

/// Issues a serving certificate for the Service, valid `days` days, signed by
/// `existing_ca` (PEM certificate and key from an earlier run) or by a new CA valid ten
/// years.
pub fn generate(
    service: &str,
    namespace: &str,
    days: u32,
    existing_ca: Option<(&str, &str)>,
) -> Result<WebhookCerts, TlsError> {
    let validity = Validity::days_from_now(days);
    // Ten years from the same start as the serving certificate.
    let ca_validity = Validity {
        not_before: validity.not_before,
        not_after: validity.not_before + time::Duration::days(3650),
    };
    let profile = CaProfile::new("Keyless Webhook CA", ca_validity);
    let ca = match existing_ca {
        Some((cert, key)) => Ca::from_pem(&profile, cert.to_owned(), key)?,
        None => Ca::generate(&profile)?,
    };
    let leaf = ca.issue(
        &format!("{service}.{namespace}.svc"),
        &service_dns_names(service, namespace),
        validity,
    )?;
    Ok(WebhookCerts {
        ca_cert_pem: ca.cert_pem().to_owned(),
        ca_key_pem: ca.key_pem(),
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_tls::{ServerPem, server_config};

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
