//! A small authenticated client for the ARM-compatible management API.
//!
//! Knows how ARM speaks (api-version query, `{"error":{"code","message"}}` errors,
//! `{"value":[...],"nextLink"}` pages) and nothing about particular resources, so the
//! resource commands here — and later ones such as keyvault or login — share it.

use std::fmt;

use anyhow::{Context, Result, anyhow, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Upper bound on pages followed by [`ArmClient::list`], so a server that keeps handing
/// out the same `nextLink` cannot make the CLI loop forever.
const MAX_PAGES: usize = 10_000;

/// How much of an unrecognised error body to show.
const MAX_BODY_IN_ERROR: usize = 500;

/// An error the management API returned in ARM's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    /// HTTP status of the response.
    pub status: u16,
    /// ARM error code, e.g. `ResourceNotFound` or `AuthorizationFailed`.
    pub code: String,
    /// The server's human-readable message.
    pub message: String,
}

impl fmt::Display for ArmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same first line as az, so users can search for the code.
        write!(f, "({}) {}", self.code, self.message)
    }
}

impl std::error::Error for ArmError {}

/// What a DELETE found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The resource existed and is gone (200/202).
    Deleted,
    /// There was nothing to delete (204).
    NotFound,
}

/// An authenticated ARM client: base URL, bearer token and an HTTP client.
#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the bearer token.
        f.debug_struct("ArmClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl ArmClient {
    /// Creates a client for `base_url` (e.g. `https://localhost:8443/`; a trailing slash
    /// is optional) that sends `token` as its bearer token.
    pub fn new(http: reqwest::Client, base_url: &str, token: impl Into<String>) -> Result<Self> {
        let trimmed = base_url.trim_end_matches('/');
        let base = Url::parse(trimmed)
            .with_context(|| format!("resource manager URL '{base_url}' is not a valid URL"))?;
        if base.query().is_some() || base.fragment().is_some() {
            bail!("resource manager URL '{base_url}' must not have a query or fragment");
        }
        Ok(Self {
            http,
            base,
            token: token.into(),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The absolute URL of `path` (which must start with `/`) under the base URL.
    pub fn url(&self, path: &str) -> Result<Url> {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            bail!("internal error: ARM path '{path}' must start with '/' and have no query");
        }
        let joined = format!("{}{path}", self.base_url());
        Url::parse(&joined).with_context(|| format!("'{joined}' is not a valid URL"))
    }

    /// GETs one resource.
    pub async fn get(&self, path: &str, api_version: &str) -> Result<Value> {
        self.send(Method::GET, path, api_version, &[], None).await
    }

    /// PUTs (creates or replaces) a resource and returns the server's representation.
    pub async fn put(&self, path: &str, api_version: &str, body: &Value) -> Result<Value> {
        self.send(Method::PUT, path, api_version, &[], Some(body))
            .await
    }

    /// PATCHes a resource and returns the server's representation.
    #[allow(
        dead_code,
        reason = "part of the client's surface; first used by vault updates"
    )]
    pub async fn patch(&self, path: &str, api_version: &str, body: &Value) -> Result<Value> {
        self.send(Method::PATCH, path, api_version, &[], Some(body))
            .await
    }

    /// DELETEs a resource; 204 means it did not exist, which ARM does not treat as an
    /// error.
    pub async fn delete(&self, path: &str, api_version: &str) -> Result<Deleted> {
        let url = self.url(path)?;
        let response = self
            .execute(Method::DELETE, url, Some(api_version), &[], None)
            .await?;
        let status = response.status();
        // The body of a successful delete carries nothing we use; still read it so the
        // connection can be reused.
        let _ = response.bytes().await;
        Ok(if status == StatusCode::NO_CONTENT {
            Deleted::NotFound
        } else {
            Deleted::Deleted
        })
    }

    /// GETs a collection and follows `nextLink` until the last page; returns every item.
    pub async fn list(&self, path: &str, api_version: &str) -> Result<Vec<Value>> {
        self.list_with_query(path, api_version, &[]).await
    }

    /// Like [`ArmClient::list`], with extra query parameters (e.g. `$filter`) on the first
    /// request; later pages use the server's `nextLink` as is.
    pub async fn list_with_query(
        &self,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>> {
        self.list_at_most(path, api_version, query, usize::MAX)
            .await
    }

    /// Like [`ArmClient::list_with_query`], stopping once `max` items are read (the
    /// newest rows of a log, not all of it).
    pub async fn list_at_most(
        &self,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
        max: usize,
    ) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut page = self
            .send(Method::GET, path, api_version, query, None)
            .await?;
        for _ in 0..MAX_PAGES {
            let Value::Object(mut object) = page else {
                bail!("the server's reply to GET {path} is not a list (no \"value\" array)");
            };
            match object.remove("value") {
                Some(Value::Array(values)) => items.extend(values),
                _ => bail!("the server's reply to GET {path} has no \"value\" array"),
            }
            if items.len() >= max {
                items.truncate(max);
                return Ok(items);
            }
            let next = match object.remove("nextLink") {
                Some(Value::String(next)) if !next.is_empty() => next,
                _ => return Ok(items),
            };
            let next = self.same_origin(&next)?;
            // The nextLink already carries api-version and any paging token.
            let response = self.execute(Method::GET, next, None, &[], None).await?;
            page = read_body(response).await?;
        }
        bail!("GET {path}: gave up after {MAX_PAGES} pages of nextLink")
    }

    /// Sends one request with `api-version` (and `query`) and returns the parsed JSON
    /// body (`null` when empty), or the server's error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = self.url(path)?;
        let response = self
            .execute(method, url, Some(api_version), query, body)
            .await?;
        read_body(response).await
    }

    /// A `nextLink` is followed with our bearer token, so it must point back at the
    /// server we authenticated to.
    fn same_origin(&self, link: &str) -> Result<Url> {
        let url = Url::parse(link).with_context(|| format!("nextLink '{link}' is not a URL"))?;
        if url.origin() != self.base.origin() {
            bail!(
                "the server's nextLink '{link}' points away from {}; not sending the token there",
                self.base_url()
            );
        }
        Ok(url)
    }

    /// Sends the request and turns any non-2xx answer into an error.
    async fn execute(
        &self,
        method: Method,
        url: Url,
        api_version: Option<&str>,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        let mut url = url;
        if api_version.is_some() || !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            if let Some(api_version) = api_version {
                pairs.append_pair("api-version", api_version);
            }
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token)
            // Lets a user match a failure with the server's log line.
            .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| describe_send_error(e, &method, &url))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_from_response(response, &method, &url).await)
    }
}

/// Reads a success body as JSON; an empty body is `null`.
async fn read_body(response: reqwest::Response) -> Result<Value> {
    let url = response.url().clone();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the reply from {url}"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the reply from {url} is not JSON: {}",
            excerpt(&String::from_utf8_lossy(&bytes))
        )
    })
}

async fn error_from_response(
    response: reqwest::Response,
    method: &Method,
    url: &Url,
) -> anyhow::Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match parse_arm_error(status.as_u16(), &text) {
        // The server's message names the resource, so it stands alone, as in az.
        Some(error) => anyhow::Error::new(error),
        None => anyhow!(
            "{method} {} failed (HTTP {status}): {}",
            url.path(),
            if text.trim().is_empty() {
                "empty reply".to_owned()
            } else {
                excerpt(&text)
            }
        ),
    }
}

/// Parses ARM's `{"error":{"code","message"}}`.
pub fn parse_arm_error(status: u16, body: &str) -> Option<ArmError> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    let code = error.get("code")?.as_str()?.to_owned();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some(ArmError {
        status,
        code,
        message,
    })
}

/// Explains a failure to get any reply at all (refused, TLS, timeout), pointing at the
/// likely fix rather than only at reqwest's error chain (which is kept as the cause).
pub fn describe_send_error(error: reqwest::Error, method: &Method, url: &Url) -> anyhow::Error {
    let origin = url.origin().ascii_serialization();
    let what = match failure_kind(&error) {
        SendFailure::Refused => format!(
            "could not connect to {origin} ({method} {url}): connection refused; is `keyless serve` running there?"
        ),
        SendFailure::Tls => format!(
            "TLS handshake with {origin} failed ({method} {url}): its certificate is not trusted; the admin file's caFile must be the CA of that server"
        ),
        SendFailure::Timeout => {
            format!("{method} {url} timed out: {origin} did not answer in time")
        }
        SendFailure::OtherConnect => format!(
            "could not connect to {origin} ({method} {url}); is `keyless serve` running there?"
        ),
        SendFailure::Other => format!("{method} {url} failed"),
    };
    anyhow::Error::new(error).context(what)
}

#[derive(Debug, PartialEq, Eq)]
enum SendFailure {
    Refused,
    Tls,
    Timeout,
    OtherConnect,
    Other,
}

fn failure_kind(error: &reqwest::Error) -> SendFailure {
    if error.is_timeout() {
        return SendFailure::Timeout;
    }
    // The useful detail sits deep in the source chain: an io::Error that is either a
    // refused connection or wraps (through more io::Errors) the rustls error of a
    // failed handshake; io::Error::source() skips its payload, so look inside by hand.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        let mut inner: Option<&(dyn std::error::Error + 'static)> = Some(current);
        while let Some(candidate) = inner {
            if candidate.is::<rustls::Error>() {
                return SendFailure::Tls;
            }
            let Some(io) = candidate.downcast_ref::<std::io::Error>() else {
                break;
            };
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return SendFailure::Refused;
            }
            inner = io
                .get_ref()
                .map(|payload| payload as &(dyn std::error::Error + 'static));
        }
        source = current.source();
    }
    if error.is_connect() {
        SendFailure::OtherConnect
    } else {
        SendFailure::Other
    }
}

fn excerpt(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.chars().count() <= MAX_BODY_IN_ERROR {
        trimmed.to_owned()
    } else {
        let cut: String = trimmed.chars().take(MAX_BODY_IN_ERROR).collect();
        format!("{cut}…")
    }
}

/// Checks a resource name supplied by the user before it becomes a path segment, and
/// percent-encodes it, so a name can never change which resource a request addresses.
pub fn path_segment(kind: &str, name: &str) -> Result<String> {
    if name.is_empty() {
        bail!("the {kind} name is empty");
    }
    // URL parsing would collapse these into a parent path.
    if name == "." || name == ".." {
        bail!("'{name}' is not a valid {kind} name");
    }
    Ok(utf8_percent_encode(name, SEGMENT_ESCAPED).to_string())
}

/// Escaped in a path segment: everything but RFC 3986's unreserved characters and the
/// parentheses ARM names may contain (kept readable; they are sub-delimiters, which
/// never split a segment).
const SEGMENT_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'(')
    .remove(b')');

/// Normalises a user-supplied ARM scope or resource id: leading `/`, no trailing `/`,
/// no query, no `.`/`..` segments.
pub fn normalize_scope(scope: &str) -> Result<String> {
    let trimmed = scope.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        bail!("the scope is empty; give e.g. /subscriptions/<id>");
    }
    if trimmed.contains(['?', '#']) {
        bail!("scope '{scope}' must be a resource path, without '?' or '#'");
    }
    let with_slash = if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    };
    if with_slash
        .split('/')
        .skip(1)
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        bail!("scope '{scope}' has an empty, '.' or '..' segment");
    }
    Ok(with_slash)
}

/// The subscription id in a scope such as `/subscriptions/{s}/resourceGroups/...`.
pub fn subscription_of_scope(scope: &str) -> Option<&str> {
    let mut parts = scope.trim_start_matches('/').split('/');
    let first = parts.next()?;
    if !first.eq_ignore_ascii_case("subscriptions") {
        return None;
    }
    parts.next().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> ArmClient {
        match ArmClient::new(reqwest::Client::new(), base, "tok") {
            Ok(c) => c,
            Err(e) => unreachable!("{e:#}"),
        }
    }

    #[test]
    fn base_url_drops_the_trailing_slash() {
        let c = client("https://localhost:8443/");
        assert_eq!(c.base_url(), "https://localhost:8443");
        assert_eq!(
            c.url("/subscriptions/s").map(|u| u.to_string()).ok(),
            Some("https://localhost:8443/subscriptions/s".to_owned())
        );
        assert!(c.url("subscriptions").is_err());
        assert!(c.url("/a?b=c").is_err());
    }

    #[test]
    fn base_url_with_a_path_prefix_is_kept() {
        let c = client("https://example.test/arm/");
        assert_eq!(
            c.url("/subscriptions").map(|u| u.to_string()).ok(),
            Some("https://example.test/arm/subscriptions".to_owned())
        );
    }

    #[test]
    fn next_link_must_stay_on_the_same_origin() {
        let c = client("https://localhost:8443/");
        assert!(
            c.same_origin("https://localhost:8443/x?api-version=1&$skiptoken=2")
                .is_ok()
        );
        assert!(c.same_origin("https://evil.test/x").is_err());
        assert!(c.same_origin("http://localhost:8443/x").is_err());
        assert!(c.same_origin("https://localhost:9443/x").is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let c = client("https://localhost:8443/");
        assert!(!format!("{c:?}").contains("tok\""));
    }

    #[tokio::test]
    async fn a_refused_connection_says_to_start_the_server() {
        // A port that was just free: nothing listens on it.
        let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(e) => unreachable!("{e}"),
        };
        let c = client(&format!("https://127.0.0.1:{port}/"));
        let Err(e) = c.get("/subscriptions", "2022-12-01").await else {
            unreachable!("nothing listens there")
        };
        let msg = format!("{e:#}");
        assert!(msg.contains("connection refused"), "{msg}");
        assert!(msg.contains("keyless serve"), "{msg}");
        assert!(msg.contains(&format!("https://127.0.0.1:{port}")), "{msg}");
    }

    #[test]
    fn arm_errors_parse() {
        let body =
            r#"{"error":{"code":"ResourceNotFound","message":"The identity 'x' was not found."}}"#;
        let e = parse_arm_error(404, body);
        assert_eq!(
            e.as_ref().map(ToString::to_string).as_deref(),
            Some("(ResourceNotFound) The identity 'x' was not found.")
        );
        assert_eq!(e.map(|e| e.status), Some(404));
        assert_eq!(parse_arm_error(500, "oops"), None);
        assert_eq!(parse_arm_error(500, r#"{"error":"x"}"#), None);
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(
            path_segment("identity", "app-1_x").ok().as_deref(),
            Some("app-1_x")
        );
        assert_eq!(
            path_segment("group", "rg.(1)").ok().as_deref(),
            Some("rg.(1)")
        );
        assert_eq!(
            path_segment("identity", "a/b?c").ok().as_deref(),
            Some("a%2Fb%3Fc")
        );
        assert_eq!(
            path_segment("identity", "é").ok().as_deref(),
            Some("%C3%A9")
        );
        assert_eq!(
            path_segment("group", "rg&x=other+1%").ok().as_deref(),
            Some("rg%26x%3Dother%2B1%25")
        );
        assert!(path_segment("identity", "").is_err());
        assert!(path_segment("identity", "..").is_err());
        assert!(path_segment("identity", ".").is_err());
    }

    #[test]
    fn scopes_normalise() {
        assert_eq!(
            normalize_scope("/subscriptions/s/").ok().as_deref(),
            Some("/subscriptions/s")
        );
        assert_eq!(
            normalize_scope("subscriptions/s").ok().as_deref(),
            Some("/subscriptions/s")
        );
        assert!(normalize_scope("").is_err());
        assert!(normalize_scope("/").is_err());
        assert!(normalize_scope("/subscriptions//x").is_err());
        assert!(normalize_scope("/subscriptions/s/../t").is_err());
        assert!(normalize_scope("/subscriptions/s?x=1").is_err());
    }

    #[test]
    fn subscription_is_read_from_a_scope() {
        assert_eq!(
            subscription_of_scope("/subscriptions/abc/resourceGroups/rg"),
            Some("abc")
        );
        assert_eq!(subscription_of_scope("/Subscriptions/abc"), Some("abc"));
        assert_eq!(subscription_of_scope("/providers/x"), None);
        assert_eq!(subscription_of_scope("/subscriptions/"), None);
    }
}
