//! The console's credentials and its calls to the management API and vaults.
//!
//! Credentials are found as the other commands find them: an admin file (`--admin-file`,
//! `KEYLESS_ADMIN_FILE`, `$KEYLESS_DATA_DIR/admin.json` or `./keyless-data/admin.json`
//! when it exists), else the signed-in account of `keyless login`. Tokens stay in this
//! process; every call is made as that principal, so RBAC applies to what the page shows
//! and does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::account::session::Session as AccountSession;
use crate::manage::session::{
    AdminFile, admin_file_path, client_secret_token, http_client, token_endpoint, vault_access_at,
};

/// A token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// Most list items gathered by following `nextLink`s for one page request.
const MAX_LIST_ITEMS: usize = 5_000;
/// Most pages followed for one page request.
const MAX_PAGES: usize = 100;
/// Largest upstream reply relayed to the page.
const MAX_REPLY: usize = 8 * 1024 * 1024;
/// Key Vault data-plane API version.
const VAULT_API: &str = "7.6";

/// Where the credentials came from.
enum Source {
    /// A `keyless serve` admin file.
    Admin(Box<AdminFile>),
    /// The signed-in account (`keyless login`).
    Account(Box<AccountSession>),
}

/// What the page may know about the session: never a secret.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `admin file PATH` or `signed-in account`.
    pub source: String,
    /// Client id of the principal the console acts as.
    pub client_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Subscription shown.
    pub subscription: String,
    /// Token service base URL.
    pub authority_host: String,
}

/// A relayed reply: the upstream status and its JSON body (`null` when empty).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Parsed body, or an error object the console made.
    pub body: Value,
}

impl Reply {
    /// A console-made error in ARM's shape, so the page has one way to show errors.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": {"code": code, "message": message.into()}}),
        }
    }
}

/// Credentials, token cache and HTTP clients.
pub struct Upstream {
    source: Source,
    identity: Identity,
    arm_base: Url,
    arm_scope: String,
    ca_file: Option<PathBuf>,
    arm_http: reqwest::Client,
    /// scope → (token, renew after). A std mutex: never held across an await.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Upstream {
    /// Finds the credentials; signs in once so a wrong file fails at start, not in the
    /// browser.
    pub async fn open(explicit_admin: Option<&Path>, subscription: Option<String>) -> Result<Self> {
        let path = admin_file_path(explicit_admin, std::env::var_os("KEYLESS_DATA_DIR"));
        let use_admin = explicit_admin.is_some()
            || std::env::var_os("KEYLESS_DATA_DIR").is_some_and(|d| !d.is_empty())
            || path.is_file();
        let upstream = if use_admin {
            let admin = AdminFile::load(&path)?;
            let arm_http = admin.http_client()?;
            let identity = Identity {
                source: format!("admin file {}", path.display()),
                client_id: admin.client_id.clone(),
                tenant_id: admin.tenant_id.clone(),
                subscription: subscription.unwrap_or_else(|| admin.subscription_id.clone()),
                authority_host: admin.authority_host.clone(),
            };
            Self {
                arm_base: parse_base(&admin.resource_manager_url)?,
                arm_scope: admin.management_scope(),
                ca_file: admin.ca_file.clone(),
                arm_http,
                identity,
                source: Source::Admin(Box::new(admin)),
                tokens: Mutex::new(HashMap::new()),
            }
        } else {
            let session = AccountSession::load().context(
                "no admin file found and no signed-in account: start `keyless serve` here, \
                 pass --admin-file (or KEYLESS_DATA_DIR), or sign in with `keyless login`",
            )?;
            let p = &session.profile;
            let Some(subscription) =
                subscription.or_else(|| session.subscription().map(|s| s.id.clone()))
            else {
                bail!("the signed-in account has no subscription: pass --subscription");
            };
            let identity = Identity {
                source: "signed-in account".into(),
                client_id: p.client_id.clone(),
                tenant_id: p.tenant_id.clone(),
                subscription,
                authority_host: p.authority_host.clone(),
            };
            Self {
                arm_base: parse_base(&p.resource_manager_endpoint)?,
                arm_scope: keyless_credential::scope_for_resource(&p.resource_manager_resource),
                ca_file: p.ca_file.clone(),
                arm_http: http_client(p.ca_file.as_deref())?,
                identity,
                source: Source::Account(Box::new(session)),
                tokens: Mutex::new(HashMap::new()),
            }
        };
        let scope = upstream.arm_scope.clone();
        upstream.token(&scope).await?;
        Ok(upstream)
    }

    /// Who the console acts as.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// A token for `scope`, cached until shortly before it expires.
    async fn token(&self, scope: &str) -> Result<String> {
        let cached = self.tokens.lock().ok().and_then(|cache| {
            cache
                .get(scope)
                .filter(|(_, renew)| Instant::now() < *renew)
                .map(|(token, _)| token.clone())
        });
        if let Some(token) = cached {
            return Ok(token);
        }
        let (token, lifetime) = match &self.source {
            Source::Admin(admin) => {
                let endpoint = token_endpoint(&admin.authority_host, &admin.tenant_id)?;
                let t = client_secret_token(
                    &self.arm_http,
                    endpoint,
                    &admin.client_id,
                    &admin.client_secret,
                    scope,
                )
                .await?;
                (t.token, Duration::from_secs(t.expires_in))
            }
            Source::Account(session) => {
                let t = crate::account::tokens::token(session, scope).await?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let left = u64::try_from(t.expires_on_unix())
                    .unwrap_or_default()
                    .saturating_sub(now);
                (t.secret().to_owned(), Duration::from_secs(left))
            }
        };
        let renew = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        if let Ok(mut cache) = self.tokens.lock() {
            cache.insert(scope.to_owned(), (token.clone(), renew));
        }
        Ok(token)
    }

    /// Relays one management call. `path` starts with `/`; `query` is the page's query
    /// string (it carries `api-version`). GET lists are followed through `nextLink`
    /// here, so the page sees whole lists and never an upstream URL.
    pub async fn arm(&self, method: Method, path: &str, query: &str, body: Option<Value>) -> Reply {
        let url = match join(&self.arm_base, path, query) {
            Ok(url) => url,
            Err(e) => return Reply::error(400, "BadRequest", format!("{e:#}")),
        };
        let token = match self.token(&self.arm_scope).await {
            Ok(t) => t,
            Err(e) => return sign_in_failed(&e),
        };
        relay(&self.arm_http, method, url, &token, body).await
    }

    /// Relays one call to vault `vault`'s data plane (`path` under the vault, e.g.
    /// `/secrets`), with the operator's own vault token.
    pub async fn vault(
        &self,
        vault: &str,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> Reply {
        let access = match vault_access_at(
            &self.identity.authority_host,
            self.ca_file.as_deref(),
            vault,
        )
        .await
        {
            Ok(a) => a,
            Err(e) => return Reply::error(502, "UpstreamUnavailable", format!("{e:#}")),
        };
        let base = match Url::parse(&access.origin) {
            Ok(u) => u,
            Err(e) => return Reply::error(502, "UpstreamUnavailable", e.to_string()),
        };
        let query = if query.split('&').any(|p| p.starts_with("api-version=")) {
            query.to_owned()
        } else if query.is_empty() {
            format!("api-version={VAULT_API}")
        } else {
            format!("{query}&api-version={VAULT_API}")
        };
        let url = match join(&base, path, &query) {
            Ok(url) => url,
            Err(e) => return Reply::error(400, "BadRequest", format!("{e:#}")),
        };
        let token = match self.token(&format!("{}/.default", access.resource)).await {
            Ok(t) => t,
            Err(e) => return sign_in_failed(&e),
        };
        relay(&access.http, method, url, &token, body).await
    }
}

fn sign_in_failed(e: &anyhow::Error) -> Reply {
    Reply::error(
        502,
        "SignInFailed",
        format!("the console could not get a token: {e:#}"),
    )
}

fn parse_base(url: &str) -> Result<Url> {
    Url::parse(url.trim_end_matches('/'))
        .with_context(|| format!("resource manager URL '{url}' is not a URL"))
}

/// `base` + `path` + `?query`; the path must be absolute and stay a path.
fn join(base: &Url, path: &str, query: &str) -> Result<Url> {
    if !path.starts_with('/')
        || path.contains(['?', '#', '\\'])
        || path.to_ascii_lowercase().contains("%2e")
        || path
            .split('/')
            .skip(1)
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        bail!("'{path}' is not an absolute path without empty, '.' or '..' segments");
    }
    let mut url = Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
        .with_context(|| format!("'{path}' is not a valid path"))?;
    if url.origin() != base.origin() {
        bail!("'{path}' leaves the server");
    }
    url.set_query((!query.is_empty()).then_some(query));
    Ok(url)
}

/// Sends a request and relays the reply; follows `nextLink` on lists (same origin only:
/// the token must not go elsewhere).
async fn relay(
    http: &reqwest::Client,
    method: Method,
    url: Url,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let follow = method == Method::GET;
    let mut first = match send(http, method, url.clone(), token, body.as_ref()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !follow || !(200..300).contains(&first.status) {
        return first;
    }
    let mut pages = 0;
    while let Some(next) = take_next_link(&mut first.body) {
        pages += 1;
        let items = first
            .body
            .get("value")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if pages > MAX_PAGES || items >= MAX_LIST_ITEMS {
            break;
        }
        let Ok(next_url) = Url::parse(&next) else {
            break;
        };
        if next_url.origin() != url.origin() {
            break;
        }
        let page = match send(http, Method::GET, next_url, token, None).await {
            Ok(r) if (200..300).contains(&r.status) => r,
            Ok(r) | Err(r) => return r,
        };
        let mut page_body = page.body;
        let more = page_body
            .get_mut("value")
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        if let Some(values) = first.body.get_mut("value").and_then(Value::as_array_mut) {
            values.extend(more);
        }
        if let (Some(link), Some(object)) = (
            page_body.get("nextLink").cloned(),
            first.body.as_object_mut(),
        ) {
            object.insert("nextLink".into(), link);
        }
    }
    first
}

fn take_next_link(body: &mut Value) -> Option<String> {
    match body.as_object_mut()?.remove("nextLink")? {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

async fn send(
    http: &reqwest::Client,
    method: Method,
    url: Url,
    token: &str,
    body: Option<&Value>,
) -> Result<Reply, Reply> {
    let mut request = http
        .request(method.clone(), url.clone())
        .bearer_auth(token)
        .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string());
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|e| {
        let e = crate::manage::arm_client::describe_send_error(e, &method, &url);
        Reply::error(502, "UpstreamUnavailable", format!("{e:#}"))
    })?;
    let status = response.status().as_u16();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_REPLY as u64)
    {
        return Err(Reply::error(
            502,
            "ReplyTooLarge",
            "the server's reply is too large to show",
        ));
    }
    let bytes = response.bytes().await.map_err(|e| {
        Reply::error(
            502,
            "UpstreamUnavailable",
            format!("reading the reply: {e}"),
        )
    })?;
    if bytes.len() > MAX_REPLY {
        return Err(Reply::error(
            502,
            "ReplyTooLarge",
            "the server's reply is too large to show",
        ));
    }
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => {
                let text: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
                return Ok(Reply::error(
                    status.max(400),
                    "NotJson",
                    format!("the server answered HTTP {status}: {text}"),
                ));
            }
        }
    };
    Ok(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_on_the_server() {
        let Ok(base) = Url::parse("https://localhost:8443") else {
            unreachable!()
        };
        assert_eq!(
            join(&base, "/subscriptions/s", "api-version=1")
                .map(|u| u.to_string())
                .ok(),
            Some("https://localhost:8443/subscriptions/s?api-version=1".into())
        );
        assert!(join(&base, "//evil.test/x", "").is_err());
        assert!(join(&base, "subscriptions", "").is_err());
        assert!(join(&base, "/a?b", "").is_err());
    }
}
