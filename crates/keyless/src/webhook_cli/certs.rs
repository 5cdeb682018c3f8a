//! `keyless webhook certs`: CA + serving certificate for the webhook's Service, and the
//! Secret and MutatingWebhookConfiguration that use them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use keyless_tls::files::{write_private, write_public};
use keyless_webhook::certs::generate;
use keyless_webhook::manifests::{
    DEFAULT_NAMESPACE, DEFAULT_SERVICE, WebhookLocation, mutating_webhook_configuration, tls_secret,
};

use crate::process::create_private_dir;

/// Options of `keyless webhook certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Name of the webhook's Service.
    #[arg(long, default_value = DEFAULT_SERVICE)]
    service: String,
    /// Namespace of the webhook.
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// Directory for `ca.crt`, `ca.key`, `tls.crt`, `tls.key` (keys mode 0600). An
    /// existing `ca.crt` + `ca.key` there is reused, so renewing keeps the CA bundle.
    #[arg(long, default_value = "./keyless-webhook-certs")]
    out_dir: PathBuf,
    /// Validity of the serving certificate, days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
}

fn read_pair(dir: &Path) -> Result<Option<(String, String)>> {
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if !(cert.exists() && key.exists()) {
        return Ok(None);
    }
    let c =
        std::fs::read_to_string(&cert).with_context(|| format!("reading {}", cert.display()))?;
    let k = std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
    Ok(Some((c, k)))
}

/// Runs `keyless webhook certs`.
pub fn run(args: CertsArgs) -> Result<()> {
    create_private_dir(&args.out_dir)?;
    let existing = read_pair(&args.out_dir)?;
    let certs = generate(
        &args.service,
        &args.namespace,
        args.days,
        existing.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
    )
    .context("a stored ca.key must be the PEM key this command wrote")?;
    let dir = &args.out_dir;
    let write = |name: &str, data: &str, private: bool| -> Result<()> {
        let path = dir.join(name);
        let r = if private {
            write_private(&path, data.as_bytes())
        } else {
            write_public(&path, data.as_bytes())
        };
        r.with_context(|| format!("writing {}", path.display()))
    };
    write("ca.crt", &certs.ca_cert_pem, false)?;
    write("ca.key", &certs.ca_key_pem, true)?;
    write("tls.crt", &certs.cert_pem, false)?;
    write("tls.key", &certs.key_pem, true)?;
    let at = WebhookLocation {
        service: args.service.clone(),
        namespace: args.namespace.clone(),
    };
    let docs = [
        tls_secret(&at, &certs),
        mutating_webhook_configuration(&at, Some(&certs.ca_cert_pem)),
    ];
    print!("{}", keyless_webhook::yaml::documents(&docs)?);
    eprintln!(
        "wrote {dir}/ca.crt, ca.key, tls.crt, tls.key ({reuse}); apply the YAML above with `kubectl apply -f -`",
        dir = dir.display(),
        reuse = if existing.is_some() {
            "CA reused"
        } else {
            "new CA"
        }
    );
    Ok(())
}
