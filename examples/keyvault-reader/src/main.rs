//! keyvault-reader: a workload that reads one Key Vault secret, periodically, with the
//! identity the platform gives it — the Rust counterpart of azure-workload-identity's
//! msal-go example, on `keyless-credential`.
//!
//! Configuration is the environment the workload identity webhook injects
//! (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_AUTHORITY_HOST`) plus `KEYVAULT_URL` and `SECRET_NAME`. It authenticates to the
//! vault as the Azure SDKs do: a first request without a token, whose 401 challenge
//! (`WWW-Authenticate: Bearer authorization="…", resource="…"`) names the resource to get
//! a token for. Each read logs `successfully got secret`; a failure logs
//! `failed to get secret from keyvault` and exits 1.
//!
//! Run `keyvault-reader --help` for the flags.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keyless_credential::{
    CredentialOptions, ENV_TENANT_ID, WorkloadIdentityCredential, WorkloadIdentityOptions,
    scope_for_resource,
};
use reqwest::{StatusCode, Url};
use serde_json::Value;

/// The Key Vault data-plane API version sent.
const API_VERSION: &str = "7.6";

/// Reads a Key Vault secret as a workload identity, every INTERVAL seconds.
#[derive(Debug, Parser)]
#[command(name = "keyvault-reader", version, about)]
struct Args {
    /// The vault, e.g. https://my-vault.vault.azure.net/
    #[arg(long, env = "KEYVAULT_URL")]
    vault_url: String,
    /// The secret to read.
    #[arg(long, env = "SECRET_NAME")]
    secret_name: String,
    /// Seconds between two reads.
    #[arg(long, env = "READ_INTERVAL", default_value_t = 60)]
    interval: u64,
    /// Read once, then exit (0 on success).
    #[arg(long)]
    once: bool,
    /// A CA certificate (PEM) to trust, instead of the system roots, for the token
    /// service and the vault — e.g. a Keyless server's ca.pem. Without it the system
    /// roots are used, which honour SSL_CERT_FILE.
    #[arg(long, env = "KEYVAULT_READER_CA_FILE", value_name = "PATH")]
    ca_file: Option<PathBuf>,
    /// FOR LOCAL TESTING ONLY: connect to this IP address for the vault's host name
    /// instead of resolving it (the port stays the vault URL's). Useful where
    /// `*.vault.localhost` does not resolve; in a real deployment DNS does this.
    #[arg(long, env = "KEYVAULT_RESOLVE_TO", value_name = "IP")]
    resolve_vault_to: Option<IpAddr>,
    /// Include the secret's value in the log line, as the msal-go example does. Off by
    /// default: secrets do not belong in logs.
    #[arg(long)]
    show_value: bool,
}

/// What the vault's 401 challenge says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    /// The scope to ask a token for (`scope`, else `resource` + `/.default`).
    scope: String,
    /// The tenant of the `authorization` URI, if any.
    tenant: Option<String>,
}

/// Parses `WWW-Authenticate: Bearer authorization="…", resource="…"` (or `scope="…"`,
/// `authorization_uri="…"`) the way the Azure SDKs do.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut resource = None;
    let mut scope = None;
    let mut authorization = None;
    for item in params.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "resource" => resource = Some(value.to_owned()),
            "scope" => scope = Some(value.to_owned()),
            "authorization" | "authorization_uri" => authorization = Some(value.to_owned()),
            _ => {}
        }
    }
    let scope = scope.filter(|s| !s.is_empty()).or_else(|| {
        resource
            .filter(|r| !r.is_empty())
            .map(|r| scope_for_resource(r.trim_end_matches('/')))
    })?;
    let tenant = authorization
        .and_then(|a| Url::parse(&a).ok())
        .and_then(|u| {
            u.path_segments()?
                .find(|s| !s.is_empty())
                .map(str::to_owned)
        });
    Some(Challenge { scope, tenant })
}

/// The vault resource when there is no challenge: the vault URL's host minus its first
/// label (`my-vault.vault.azure.net` → `https://vault.azure.net`), with the port.
fn derived_resource(vault: &Url) -> Option<String> {
    let host = vault.host_str()?;
    let (_, parent) = host.split_once('.')?;
    Some(match vault.port() {
        Some(port) => format!("https://{parent}:{port}"),
        None => format!("https://{parent}"),
    })
}

/// The challenge's resource must be a parent domain of the vault (as the SDKs check), so
/// a look-alike vault cannot obtain a token for another resource.
fn check_resource(vault: &Url, scope: &str) -> Result<(), String> {
    let vault_host = vault.host_str().unwrap_or_default().to_ascii_lowercase();
    let resource_host = Url::parse(scope)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .ok_or_else(|| format!("the challenge's resource '{scope}' is not a URL"))?;
    if vault_host.ends_with(&format!(".{resource_host}")) {
        Ok(())
    } else {
        Err(format!(
            "the challenge's resource '{scope}' does not match the vault's host '{vault_host}'"
        ))
    }
}

/// A vault client: one HTTP client, the credential, and the scope from the challenge.
struct Reader {
    http: reqwest::Client,
    credential: WorkloadIdentityCredential,
    secret_url: Url,
    show_value: bool,
}

impl Reader {
    fn new(args: &Args) -> Result<Self, String> {
        let vault = Url::parse(args.vault_url.trim())
            .map_err(|e| format!("KEYVAULT_URL '{}' is not a URL: {e}", args.vault_url))?;
        if vault.scheme() != "https" {
            return Err(format!("KEYVAULT_URL '{vault}' must be https"));
        }
        let host = vault
            .host_str()
            .ok_or_else(|| format!("KEYVAULT_URL '{vault}' has no host"))?
            .to_owned();
        let name = args.secret_name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "SECRET_NAME '{name}' is not a secret name (letters, digits and '-')"
            ));
        }
        let secret_url = vault
            .join(&format!("secrets/{name}?api-version={API_VERSION}"))
            .map_err(|e| format!("cannot build the secret's URL: {e}"))?;

        let mut options = CredentialOptions::new();
        let mut http = reqwest::Client::builder()
            .https_only(true)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30));
        if let Some(ca) = &args.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{} is not PEM: {e}", ca.display()))?;
            http = http.tls_certs_only(certs);
            options = options.ca_pem(pem);
        }
        if let Some(ip) = args.resolve_vault_to {
            // Port 0: the URL's port is used.
            http = http.resolve(&host, std::net::SocketAddr::new(ip, 0));
        }
        let http = http
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        // AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST.
        let credential =
            WorkloadIdentityCredential::new(WorkloadIdentityOptions::new().options(options))
                .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            credential,
            secret_url,
            show_value: args.show_value,
        })
    }

    /// The first, unauthenticated request: its 401 challenge names the resource.
    async fn challenge(&self) -> Result<String, String> {
        let response = self
            .http
            .get(self.secret_url.clone())
            .send()
            .await
            .map_err(|e| format!("cannot reach the vault: {}", chain(&e)))?;
        let header = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response.status() != StatusCode::UNAUTHORIZED {
            return Err(format!(
                "the vault answered an unauthenticated request with HTTP {} instead of a 401 challenge",
                response.status()
            ));
        }
        let scope = match header.as_deref().and_then(parse_challenge) {
            Some(challenge) => {
                let configured = std::env::var(ENV_TENANT_ID).unwrap_or_default();
                if let Some(tenant) = &challenge.tenant
                    && !tenant.eq_ignore_ascii_case(configured.trim())
                {
                    return Err(format!(
                        "the vault belongs to tenant {tenant}, not to {ENV_TENANT_ID} '{configured}'"
                    ));
                }
                challenge.scope
            }
            None => {
                let resource = derived_resource(&self.secret_url).ok_or(
                    "the vault sent no usable challenge and its resource cannot be derived",
                )?;
                eprintln!(
                    "no usable WWW-Authenticate challenge ({header:?}); using the derived resource {resource}"
                );
                scope_for_resource(&resource)
            }
        };
        check_resource(&self.secret_url, &scope)?;
        Ok(scope)
    }

    /// One read: a token (cached by the credential), then GET the secret.
    async fn read(&self, scope: &str) -> Result<(), String> {
        let token = self
            .credential
            .get_token(scope)
            .await
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .get(self.secret_url.clone())
            .header("authorization", token.authorization_header())
            .send()
            .await
            .map_err(|e| format!("cannot reach the vault: {}", chain(&e)))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("the vault answered HTTP {status} without JSON: {e}"))?;
        if !status.is_success() {
            // Key Vault's shape: {"error": {"code", "message", "innererror": {"code"}}}.
            let error = &body["error"];
            let mut code = error["code"].as_str().unwrap_or("Error").to_owned();
            if let Some(inner) = error["innererror"]["code"].as_str() {
                code = format!("{code}/{inner}");
            }
            let message = error["message"].as_str().unwrap_or_default();
            let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(format!("HTTP {status} ({code}) {message}"));
        }
        let version = body["id"]
            .as_str()
            .and_then(|id| id.rsplit('/').next())
            .unwrap_or_default();
        let name = self
            .secret_url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        match (self.show_value, body["value"].as_str()) {
            (true, Some(value)) => println!(
                "successfully got secret name={name:?} version={version:?} value={value:?}"
            ),
            (false, Some(value)) => println!(
                "successfully got secret name={name:?} version={version:?} length={}",
                value.chars().count()
            ),
            (_, None) => return Err("the vault's answer has no value".to_owned()),
        }
        Ok(())
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        cause = c.source();
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let fail = |what: &str, e: String| {
        eprintln!("failed to get secret from keyvault: {what}: {e}");
        ExitCode::FAILURE
    };
    let reader = match Reader::new(&args) {
        Ok(r) => r,
        Err(e) => return fail("configuration", e),
    };
    let scope = match reader.challenge().await {
        Ok(s) => s,
        Err(e) => return fail("challenge", e),
    };
    loop {
        if let Err(e) = reader.read(&scope).await {
            return fail(&args.secret_name, e);
        }
        if args.once {
            return ExitCode::SUCCESS;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_like_the_sdks() {
        let c = parse_challenge(
            r#"Bearer authorization="https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#,
        );
        assert_eq!(
            c,
            Some(Challenge {
                scope: "https://vault.azure.net/.default".into(),
                tenant: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
            })
        );
        let c = parse_challenge(
            r#"Bearer authorization_uri="https://h:8443/t", scope="https://vault.localhost:8443/.default""#,
        );
        assert_eq!(
            c.map(|c| c.scope),
            Some("https://vault.localhost:8443/.default".into())
        );
        assert_eq!(parse_challenge("Basic realm=x"), None);
        assert_eq!(parse_challenge("Bearer"), None);
        assert_eq!(
            parse_challenge(r#"Bearer authorization="https://h/t""#),
            None
        );
    }

    #[test]
    fn resources_are_derived_and_checked_against_the_vault_host() {
        let vault = Url::parse("https://my-vault.vault.localhost:8443/secrets/x").ok();
        let vault = vault.as_ref().map(derived_resource);
        assert_eq!(vault, Some(Some("https://vault.localhost:8443".into())));
        let kv = Url::parse("https://my-vault.vault.azure.net/").ok();
        assert_eq!(
            kv.as_ref().and_then(derived_resource).as_deref(),
            Some("https://vault.azure.net")
        );
        let Some(kv) = kv else { return };
        assert!(check_resource(&kv, "https://vault.azure.net/.default").is_ok());
        assert!(check_resource(&kv, "https://management.azure.com/.default").is_err());
        assert!(check_resource(&kv, "https://evil-vault.azure.net/.default").is_err());
    }
}
