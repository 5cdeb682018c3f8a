//! `keyless serviceaccount manifest`: a workload ServiceAccount annotated for workload
//! identity, as YAML; with a managed-identity endpoint mode, followed (as YAML comments,
//! so the output still applies as is) by what the workload's pod template needs, since
//! the webhook reads those annotations from the pod.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use keyless_webhook::keys::TRUST_CA_ANNOTATION;
use keyless_webhook::keys::{MAX_TOKEN_EXPIRATION, MIN_TOKEN_EXPIRATION};
use keyless_webhook::manifests::{ManagedIdentityEndpoint, service_account, workload_pod_template};

/// `keyless serviceaccount ...`.
#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Print a ServiceAccount annotated with an identity's client id (and optionally
    /// tenant and token lifetime), for `kubectl apply -f -`.
    Manifest(ManifestArgs),
}

/// Options of `keyless serviceaccount manifest`.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// ServiceAccount name.
    #[arg(long)]
    name: String,
    /// Namespace.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Client id of the identity the pods use (a GUID, `clientId` of `keyless identity show`).
    #[arg(long)]
    client_id: String,
    /// Tenant id (default: the webhook's).
    #[arg(long)]
    tenant_id: Option<String>,
    /// Lifetime of the projected token: seconds (3600–86400), or with a unit `h`, `m`, `s`
    /// (e.g. `24h`). Default: the webhook's default (3600 s); only written when given.
    #[arg(long, value_name = "DURATION", value_parser = parse_expiration)]
    token_expiration: Option<u64>,
    /// The pods' apps use ManagedIdentityCredential / IMDS clients: also print the pod
    /// template annotation for the Keyless mode (`keyless imds` as a native sidecar,
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` in the app containers; no privilege).
    #[arg(long, conflicts_with = "inject_proxy_sidecar")]
    managed_identity_endpoint: bool,
    /// Like `--managed-identity-endpoint`, but the reference's proxy mode, for apps that
    /// hard-code 169.254.169.254 (an iptables init container that needs NET_ADMIN).
    #[arg(long)]
    inject_proxy_sidecar: bool,
    /// The sidecar's loopback port (default 8000), with either mode.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    proxy_sidecar_port: Option<u16>,
}

fn parse_expiration(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, 'h')) => (s.get(..i).unwrap_or_default(), 3600),
        Some((i, 'm')) => (s.get(..i).unwrap_or_default(), 60),
        Some((i, 's')) => (s.get(..i).unwrap_or_default(), 1),
        _ => (s, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a duration: use seconds (e.g. 7200) or 2h, 90m"))?;
    let secs = n.saturating_mul(unit);
    if (MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!(
            "{secs} s is out of range: the token lifetime must be {MIN_TOKEN_EXPIRATION} to {MAX_TOKEN_EXPIRATION} s (1 h to 24 h)"
        ))
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Runs `keyless serviceaccount ...`.
pub fn run(cmd: ServiceAccountCommand) -> Result<()> {
    let ServiceAccountCommand::Manifest(args) = cmd;
    if !is_guid(&args.client_id) {
        bail!(
            "--client-id '{}' is not a GUID: use the identity's clientId (`keyless identity show ... --query clientId -o tsv`)",
            args.client_id
        );
    }
    if let Some(t) = &args.tenant_id
        && !is_guid(t)
    {
        bail!("--tenant-id '{t}' is not a GUID");
    }
    let sa = service_account(
        &args.name,
        &args.namespace,
        &args.client_id,
        args.tenant_id.as_deref(),
        args.token_expiration,
    );
    let endpoint = match (args.managed_identity_endpoint, args.inject_proxy_sidecar) {
        (true, _) => Some(ManagedIdentityEndpoint::Keyless),
        (false, true) => Some(ManagedIdentityEndpoint::Proxy),
        (false, false) => None,
    };
    if args.proxy_sidecar_port.is_some() && endpoint.is_none() {
        bail!("--proxy-sidecar-port needs --managed-identity-endpoint or --inject-proxy-sidecar");
    }
    let mut out = keyless_webhook::yaml::documents(&[sa])?;
    if let Some(endpoint) = endpoint {
        let template = workload_pod_template(&args.name, Some(endpoint), args.proxy_sidecar_port);
        out.push_str(&pod_template_guidance(&template, endpoint)?);
    }
    print!("{out}");
    Ok(())
}

/// The pod template fragment as YAML comments: the output stays one appliable document,
/// and the fragment uncommented is valid YAML to merge into `spec.template`.
fn pod_template_guidance(
    template: &serde_json::Value,
    endpoint: ManagedIdentityEndpoint,
) -> Result<String> {
    let what = match endpoint {
        ManagedIdentityEndpoint::Keyless => {
            "# the Keyless mode (keyless imds as a native sidecar; IDENTITY_ENDPOINT and\n\
             # IDENTITY_HEADER in the app containers; no privilege):\n"
        }
        ManagedIdentityEndpoint::Proxy => {
            "# the proxy mode (keyless imds plus an init container that redirects\n\
             # 169.254.169.254:80 to it with iptables; needs NET_ADMIN, not for hostNetwork):\n"
        }
    };
    let yaml = keyless_webhook::yaml::documents(std::slice::from_ref(template))?;
    let mut out = String::from(
        "# The webhook reads the managed-identity endpoint annotations from the pods: add this\n\
         # to the pod template of the workloads that use this ServiceAccount (e.g. a\n\
         # Deployment's spec.template) for\n",
    );
    out.push_str(what);
    for line in yaml.lines().filter(|l| *l != "---") {
        out.push_str("#   ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "# Annotate it {TRUST_CA_ANNOTATION}: 'true' too when Keyless' certificate is from a private CA\n\
         # (the sidecar must trust it).\n"
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_units_and_range() {
        assert_eq!(parse_expiration("3600"), Ok(3600));
        assert_eq!(parse_expiration("24h"), Ok(86400));
        assert_eq!(parse_expiration("90m"), Ok(5400));
        assert_eq!(parse_expiration("7200s"), Ok(7200));
        assert!(
            parse_expiration("25h")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse_expiration("1d")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_expiration("h").is_err());
    }

    #[test]
    fn guid_check() {
        assert!(is_guid("0b7a3f55-0000-4000-8000-000000000001"));
        assert!(!is_guid("0b7a3f55-0000-4000-8000-00000000000"));
        assert!(!is_guid("not-a-guid"));
    }
}
