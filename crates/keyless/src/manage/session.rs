//! Where the CLI's credentials come from: the admin file `keyless serve` writes, an
//! HTTP client that trusts the server's CA, and a `client_credentials` token for the
//! resource manager.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Url;
use serde::Deserialize;

use super::args::CommonArgs;
use super::arm_client::{ArmClient, describe_send_error};

/// Name of the admin file inside the server's data directory.
const ADMIN_FILE_NAME: &str = "admin.json";
/// The server's default data directory (relative to the working directory).
const DEFAULT_DATA_DIR: &str = "keyless-data";
/// How long to wait for a TCP + TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The admin credential file written by `keyless serve` (`{data-dir}/admin.json`).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminFile {
    /// Tenant the admin principal lives in.
    pub tenant_id: String,
    /// Default subscription for management commands.
    pub subscription_id: String,
    /// The admin service principal's client id.
    pub client_id: String,
    /// The admin service principal's secret.
    pub client_secret: String,
    /// Token service base URL, e.g. `https://localhost:8443` (no trailing slash).
    pub authority_host: String,
    /// Management API base URL, e.g. `https://localhost:8443/` (trailing slash).
    pub resource_manager_url: String,
    /// PEM file of the CA that issued the server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for AdminFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret must never reach a log or an error message.
        f.debug_struct("AdminFile")
            .field("tenant_id", &self.tenant_id)
            .field("subscription_id", &self.subscription_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("authority_host", &self.authority_host)
            .field("resource_manager_url", &self.resource_manager_url)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl AdminFile {
    /// Reads and parses the admin file; the error tells the user how to get one.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
                "admin file {} not found: start the server with `keyless serve` (it writes \
                 {{data-dir}}/{ADMIN_FILE_NAME}), or point at the file with --admin-file, \
                 KEYLESS_ADMIN_FILE or KEYLESS_DATA_DIR",
                path.display()
            ),
            Err(e) => {
                return Err(
                    anyhow!(e).context(format!("cannot read admin file {}", path.display()))
                );
            }
        };
        let mut admin: Self = serde_json::from_str(&text).with_context(|| {
            format!(
                "admin file {} is not valid: expected JSON with tenantId, subscriptionId, \
                 clientId, clientSecret, authorityHost, resourceManagerUrl and caFile",
                path.display()
            )
        })?;
        if let Some(ca) = admin.ca_file.take() {
            admin.ca_file = Some(resolve_ca_path(&ca, path));
        }
        Ok(admin)
    }

    /// The token scope for the resource manager: `{resourceManagerUrl}.default`.
    pub fn management_scope(&self) -> String {
        let resource = &self.resource_manager_url;
        if resource.ends_with('/') {
            format!("{resource}.default")
        } else {
            format!("{resource}/.default")
        }
    }

    /// A client for vault `vault` of this server, with the vault's origin and its token
    /// resource. Vault hosts (`{vault}.vault.HOST`) are served by the same listener as
    /// the authority host, so they are resolved to its addresses: this works where
    /// `*.vault.localhost` names do not resolve.
    pub async fn vault_access(&self, vault: &str) -> Result<VaultAccess> {
        vault_access_at(&self.authority_host, self.ca_file.as_deref(), vault).await
    }

    /// An HTTP client that trusts exactly the admin file's CA (or the platform's roots
    /// when the file names none).
    pub fn http_client(&self) -> Result<reqwest::Client> {
        http_client(self.ca_file.as_deref())
    }
}

/// How to reach vault `vault` of the server whose token service is `authority_host`
/// (trusting `ca_file`): see [`AdminFile::vault_access`]. Shared with callers that hold
/// the signed-in account's profile rather than an admin file.
pub async fn vault_access_at(
    authority_host: &str,
    ca_file: Option<&Path>,
    vault: &str,
) -> Result<VaultAccess> {
    let authority =
        reqwest::Url::parse(authority_host).context("the authority host is not a URL")?;
    let host = authority
        .host_str()
        .context("the authority host has no host")?;
    let port = authority.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .collect();
    let public = keyless_core::PublicUrl {
        host: host.to_string(),
        port,
    };
    let http = http_client_builder(ca_file)?
        .resolve_to_addrs(&format!("{vault}.vault.{host}"), &addrs)
        .build()
        .context("cannot set up the HTTP client")?;
    Ok(VaultAccess {
        http,
        origin: public.vault_uri(vault).trim_end_matches('/').to_string(),
        resource: public.vault_resource(),
    })
}

/// How to reach one vault: see [`AdminFile::vault_access`].
pub struct VaultAccess {
    /// Trusts the server's CA and resolves the vault host to the server.
    pub http: reqwest::Client,
    /// `https://{vault}.vault.HOST[:PORT]`.
    pub origin: String,
    /// The token resource of vaults, `https://vault.HOST[:PORT]`.
    pub resource: String,
}

/// A relative `caFile` is taken as written when it exists from the working directory
/// (the server wrote it relative to its own), else relative to the admin file's folder.
fn resolve_ca_path(ca: &Path, admin_file: &Path) -> PathBuf {
    if ca.is_absolute() || ca.exists() {
        return ca.to_path_buf();
    }
    match admin_file.parent() {
        Some(dir) if dir.join(ca).exists() => dir.join(ca),
        _ => ca.to_path_buf(),
    }
}

/// Where the admin file is: `--admin-file`/`KEYLESS_ADMIN_FILE` if given, else
/// `$KEYLESS_DATA_DIR/admin.json`, else `./keyless-data/admin.json` — the same data
/// directory `keyless serve` uses by default.
pub fn admin_file_path(explicit: Option<&Path>, data_dir: Option<OsString>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    match data_dir.filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join(ADMIN_FILE_NAME),
        None => Path::new(DEFAULT_DATA_DIR).join(ADMIN_FILE_NAME),
    }
}

/// Builds an HTTP client. With a CA file, that CA is the only trusted root: the server
/// the admin file describes always presents a certificate from it, and trusting nothing
/// else keeps the admin secret from going anywhere else.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    http_client_builder(ca_file)?
        .build()
        .context("cannot set up the HTTP client")
}

/// The builder behind [`http_client`], for callers that add to it (e.g. vault host
/// resolution).
pub fn http_client_builder(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("keyless-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .https_only(true);
    if let Some(ca_file) = ca_file {
        let pem = std::fs::read(ca_file).with_context(|| {
            format!(
                "cannot read the CA certificate {} named by the admin file's caFile",
                ca_file.display()
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate", ca_file.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", ca_file.display());
        }
        builder = builder.tls_certs_only(certs);
    }
    Ok(builder)
}

/// An access token from the token service.
#[derive(Clone)]
pub struct AccessToken {
    /// The bearer token.
    pub token: String,
    /// Seconds until it expires, as the server said.
    pub expires_in: u64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The v2 token endpoint of a tenant: `{authorityHost}/{tenant}/oauth2/v2.0/token`.
pub fn token_endpoint(authority_host: &str, tenant: &str) -> Result<Url> {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        authority_host.trim_end_matches('/'),
        tenant
    );
    Url::parse(&url).with_context(|| format!("token endpoint '{url}' is not a valid URL"))
}

/// Gets a token with the `client_credentials` grant and a client secret.
pub async fn client_secret_token(
    http: &reqwest::Client,
    endpoint: Url,
    client_id: &str,
    client_secret: &str,
    scope: &str,
) -> Result<AccessToken> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("scope", scope),
    ];
    let method = reqwest::Method::POST;
    let response = http
        .post(endpoint.clone())
        .form(&form)
        .send()
        .await
        .map_err(|e| describe_send_error(e, &method, &endpoint))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the reply from {endpoint}"))?;
    if !status.is_success() {
        return Err(token_error(status.as_u16(), &body, &endpoint));
    }
    let parsed: TokenResponse = serde_json::from_str(&body)
        .with_context(|| format!("the token reply from {endpoint} has no access_token"))?;
    Ok(AccessToken {
        token: parsed.access_token,
        expires_in: parsed.expires_in,
    })
}

/// Entra's error shape: show its description, which carries the AADSTS code and text.
fn token_error(status: u16, body: &str, endpoint: &Url) -> anyhow::Error {
    match serde_json::from_str::<TokenError>(body) {
        Ok(TokenError {
            error_description: Some(description),
            ..
        }) => anyhow!("token request failed (HTTP {status}): {description}"),
        Ok(TokenError { error, .. }) => anyhow!("token request failed (HTTP {status}): {error}"),
        Err(_) => anyhow!(
            "token request to {endpoint} failed (HTTP {status}){}",
            if body.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", body.trim().chars().take(500).collect::<String>())
            }
        ),
    }
}

/// Everything a management command needs: the admin file, an authenticated ARM client
/// and the subscription to work in.
#[derive(Debug)]
pub struct Session {
    /// The admin file the session was opened from.
    #[allow(
        dead_code,
        reason = "for commands that need the tenant or authority, e.g. login"
    )]
    pub admin: AdminFile,
    /// Client for the management API, authenticated as the admin principal.
    pub arm: ArmClient,
    /// `--subscription`, else the admin file's subscription.
    pub subscription: String,
}

impl Session {
    /// Loads the admin file named by the common options, gets a management token and
    /// returns a ready client.
    pub async fn open(common: &CommonArgs) -> Result<Self> {
        let path = admin_file_path(
            common.admin_file.as_deref(),
            std::env::var_os("KEYLESS_DATA_DIR"),
        );
        let admin = AdminFile::load(&path)?;
        let http = admin.http_client()?;
        let endpoint = token_endpoint(&admin.authority_host, &admin.tenant_id)?;
        let token = client_secret_token(
            &http,
            endpoint,
            &admin.client_id,
            &admin.client_secret,
            &admin.management_scope(),
        )
        .await
        .with_context(|| {
            format!(
                "signing in with the admin credential from {}",
                path.display()
            )
        })?;
        let arm = ArmClient::new(http, &admin.resource_manager_url, token.token)?;
        let subscription = common
            .subscription
            .clone()
            .unwrap_or_else(|| admin.subscription_id.clone());
        Ok(Self {
            admin,
            arm,
            subscription,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "tenantId": "11111111-1111-1111-1111-111111111111",
        "subscriptionId": "22222222-2222-2222-2222-222222222222",
        "clientId": "33333333-3333-3333-3333-333333333333",
        "clientSecret": "s3cret-value",
        "authorityHost": "https://localhost:8443",
        "resourceManagerUrl": "https://localhost:8443/",
        "caFile": "ca.pem"
    }"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            unreachable!("writing {}: {e}", path.display());
        }
        path
    }

    fn tempdir() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn admin_path_precedence() {
        let explicit = Path::new("/x/admin.json");
        assert_eq!(
            admin_file_path(Some(explicit), Some("/data".into())),
            PathBuf::from("/x/admin.json")
        );
        assert_eq!(
            admin_file_path(None, Some("/data".into())),
            PathBuf::from("/data/admin.json")
        );
        assert_eq!(
            admin_file_path(None, Some(OsString::new())),
            PathBuf::from("keyless-data/admin.json")
        );
        assert_eq!(
            admin_file_path(None, None),
            PathBuf::from("keyless-data/admin.json")
        );
    }

    #[test]
    fn loads_the_admin_file_and_resolves_the_ca_next_to_it() {
        let dir = tempdir();
        let ca = write(dir.path(), "ca.pem", "not used here");
        let path = write(dir.path(), "admin.json", SAMPLE);
        let admin = match AdminFile::load(&path) {
            Ok(a) => a,
            Err(e) => unreachable!("{e:#}"),
        };
        assert_eq!(
            admin.subscription_id,
            "22222222-2222-2222-2222-222222222222"
        );
        assert_eq!(admin.ca_file, Some(ca));
        assert_eq!(admin.management_scope(), "https://localhost:8443/.default");
        let debug = format!("{admin:?}");
        assert!(!debug.contains("s3cret-value"), "{debug}");
    }

    #[test]
    fn a_missing_admin_file_says_to_run_serve() {
        let dir = tempdir();
        let Err(e) = AdminFile::load(&dir.path().join("admin.json")) else {
            unreachable!("should fail")
        };
        let msg = format!("{e:#}");
        assert!(msg.contains("keyless serve"), "{msg}");
        assert!(msg.contains("--admin-file"), "{msg}");
    }

    #[test]
    fn a_malformed_admin_file_is_named() {
        let dir = tempdir();
        let path = write(dir.path(), "admin.json", r#"{"tenantId": "t"}"#);
        let Err(e) = AdminFile::load(&path) else {
            unreachable!("should fail")
        };
        assert!(format!("{e:#}").contains("is not valid"));
    }

    #[test]
    fn scope_without_trailing_slash_still_names_the_resource() {
        let mut admin: AdminFile = match serde_json::from_str(SAMPLE) {
            Ok(a) => a,
            Err(e) => unreachable!("{e}"),
        };
        admin.resource_manager_url = "https://localhost:8443".into();
        assert_eq!(admin.management_scope(), "https://localhost:8443/.default");
    }

    #[test]
    fn token_endpoint_joins_cleanly() {
        assert_eq!(
            token_endpoint("https://localhost:8443/", "tid")
                .map(|u| u.to_string())
                .ok(),
            Some("https://localhost:8443/tid/oauth2/v2.0/token".to_owned())
        );
    }

    #[test]
    fn token_errors_show_the_description() {
        let endpoint = match token_endpoint("https://localhost:8443", "t") {
            Ok(u) => u,
            Err(e) => unreachable!("{e:#}"),
        };
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
        let msg = token_error(401, body, &endpoint).to_string();
        assert_eq!(
            msg,
            "token request failed (HTTP 401): AADSTS7000215: Invalid client secret provided."
        );
        let msg = token_error(502, "bad gateway", &endpoint).to_string();
        assert!(
            msg.contains("HTTP 502") && msg.contains("bad gateway"),
            "{msg}"
        );
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_rejected() {
        let dir = tempdir();
        let path = write(dir.path(), "ca.pem", "hello");
        assert!(http_client(Some(&path)).is_err());
        assert!(http_client(Some(&dir.path().join("missing.pem"))).is_err());
    }
}
