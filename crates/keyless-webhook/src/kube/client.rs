//! The three ServiceAccount calls the webhook makes, over reqwest: LIST (paged), WATCH
//! (a stream of newline-delimited JSON events) and GET.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::config::{Auth, ClusterConfig};
use crate::service_account::ServiceAccount;

/// Page size of LIST calls.
const PAGE_SIZE: u32 = 500;
/// Longest single watch event line accepted.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
/// Largest LIST page or GET body accepted.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Errors talking to the API server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built from the configuration.
    #[error("Kubernetes client configuration: {0}")]
    Setup(String),
    /// Connection, TLS or protocol failure.
    #[error("request to the Kubernetes API failed: {0}")]
    Transport(String),
    /// A non-success status.
    #[error("the Kubernetes API answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The `Status` message, or the body.
        message: String,
    },
    /// A body that is not the expected JSON.
    #[error("unexpected answer from the Kubernetes API: {0}")]
    Decode(String),
    /// The token file could not be read.
    #[error("reading the service account token {path}: {source}")]
    Token {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// Whether this is HTTP 410 Gone (the requested resourceVersion is too old).
    pub fn is_gone(&self) -> bool {
        matches!(self, ClientError::Status { status: 410, .. })
    }
}

/// A ServiceAccount watch event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Created (or present when the watch started).
    Added(ServiceAccount),
    /// Changed.
    Modified(ServiceAccount),
    /// Deleted.
    Deleted(ServiceAccount),
    /// Progress marker: the stream is current up to this resourceVersion.
    Bookmark(String),
    /// The server ended the watch with an error `Status` (410 means relist).
    Error {
        /// `Status.code`.
        code: u16,
        /// `Status.message`.
        message: String,
    },
}

/// A minimal Kubernetes API client for ServiceAccounts.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    server: String,
    auth: Auth,
}

impl ApiClient {
    /// Builds the client. Requests other than watches time out after `timeout`.
    pub fn new(config: &ClusterConfig) -> Result<ApiClient, ClientError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("keyless-webhook/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Setup(format!("certificate authority: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Setup(
                    "the certificate authority holds no certificate".to_owned(),
                ));
            }
            b = b.tls_certs_only(certs);
        }
        if config.insecure_skip_tls_verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &config.client_identity_pem {
            let id = reqwest::Identity::from_pem(pem)
                .map_err(|e| ClientError::Setup(format!("client certificate: {e}")))?;
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(ApiClient {
            http,
            server: config.server.clone(),
            auth: config.auth.clone(),
        })
    }

    async fn send(
        &self,
        path_and_query: &str,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .http
            .get(format!("{}{path_and_query}", self.server))
            .header("Accept", "application/json");
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Token(t) => req.bearer_auth(t),
            Auth::TokenFile(path) => {
                let t = super::config::read_capped(path)
                    .and_then(|b| {
                        String::from_utf8(b)
                            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                    })
                    .map_err(|source| ClientError::Token {
                        path: path.display().to_string(),
                        source,
                    })?;
                req.bearer_auth(t.trim())
            }
            Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
        Err(ClientError::Status { status, message })
    }

    async fn json(&self, path_and_query: &str, timeout: Duration) -> Result<Value, ClientError> {
        let mut resp = self.send(path_and_query, Some(timeout)).await?;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ClientError::Transport(error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ClientError::Decode("response too large".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// GET one ServiceAccount; `None` on 404.
    pub async fn get_service_account(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<ServiceAccount>, ClientError> {
        let path = format!(
            "/api/v1/namespaces/{}/serviceaccounts/{}",
            segment(namespace),
            segment(name)
        );
        match self.json(&path, timeout).await {
            Ok(v) => ServiceAccount::from_object(&v)
                .map(|mut sa| {
                    if sa.namespace.is_empty() {
                        namespace.clone_into(&mut sa.namespace);
                    }
                    Some(sa)
                })
                .ok_or_else(|| ClientError::Decode("not a ServiceAccount".to_owned())),
            Err(ClientError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// LISTs every ServiceAccount (all pages); returns them and the list's
    /// resourceVersion to watch from.
    pub async fn list_service_accounts(
        &self,
        timeout: Duration,
    ) -> Result<(Vec<ServiceAccount>, String), ClientError> {
        let mut all = Vec::new();
        let mut cont: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/serviceaccounts?limit={PAGE_SIZE}");
            if let Some(c) = &cont {
                path.push_str("&continue=");
                path.push_str(&query_value(c));
            }
            let page = self.json(&path, timeout).await?;
            let items = page
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| ClientError::Decode("a list without items".to_owned()))?;
            all.extend(items.iter().filter_map(ServiceAccount::from_object));
            let meta = page.get("metadata");
            let next = meta
                .and_then(|m| m.get("continue"))
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            match next {
                Some(c) => cont = Some(c.to_owned()),
                None => {
                    let rv = meta
                        .and_then(|m| m.get("resourceVersion"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    return Ok((all, rv));
                }
            }
        }
    }

    /// Starts a WATCH of every ServiceAccount from `resource_version`, with bookmarks;
    /// the server ends it after `timeout_seconds`.
    pub async fn watch_service_accounts(
        &self,
        resource_version: &str,
        timeout_seconds: u64,
    ) -> Result<WatchStream, ClientError> {
        let path = format!(
            "/api/v1/serviceaccounts?watch=1&allowWatchBookmarks=true&resourceVersion={}&timeoutSeconds={timeout_seconds}",
            query_value(resource_version)
        );
        let resp = self.send(&path, None).await?;
        Ok(WatchStream {
            resp,
            buf: Vec::new(),
            idle: Duration::from_secs(timeout_seconds.saturating_add(30)),
        })
    }
}

/// An open watch.
#[derive(Debug)]
pub struct WatchStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    idle: Duration,
}

impl WatchStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<WatchEvent>, ClientError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return parse_event(line).map(Some);
            }
            let chunk = tokio::time::timeout(self.idle, self.resp.chunk())
                .await
                .map_err(|_| ClientError::Transport("watch went silent".to_owned()))?
                .map_err(|e| ClientError::Transport(error_chain(&e)))?;
            match chunk {
                Some(c) => {
                    if self.buf.len() + c.len() > MAX_EVENT_BYTES {
                        return Err(ClientError::Decode("watch event too large".to_owned()));
                    }
                    self.buf.extend_from_slice(&c);
                }
                None => {
                    let rest = std::mem::take(&mut self.buf);
                    let rest = rest.trim_ascii();
                    return if rest.is_empty() {
                        Ok(None)
                    } else {
                        parse_event(rest).map(Some)
                    };
                }
            }
        }
    }
}

/// Parses one watch line: `{"type": ..., "object": ...}`.
pub fn parse_event(line: &[u8]) -> Result<WatchEvent, ClientError> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| ClientError::Decode(format!("watch event: {e}")))?;
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    let object = v.get("object").unwrap_or(&Value::Null);
    let sa = || {
        ServiceAccount::from_object(object)
            .ok_or_else(|| ClientError::Decode(format!("{kind} event without a ServiceAccount")))
    };
    match kind {
        "ADDED" => Ok(WatchEvent::Added(sa()?)),
        "MODIFIED" => Ok(WatchEvent::Modified(sa()?)),
        "DELETED" => Ok(WatchEvent::Deleted(sa()?)),
        "BOOKMARK" => Ok(WatchEvent::Bookmark(
            object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )),
        "ERROR" => Ok(WatchEvent::Error {
            code: object
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500),
            message: object
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        other => Err(ClientError::Decode(format!(
            "unknown watch event type {other:?}"
        ))),
    }
}

/// Every byte but RFC 3986's unreserved characters is escaped, which is safe in a path
/// segment and in a query value alike.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment (names are DNS subdomains; be safe anyway).
fn segment(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

/// Percent-encodes a query value (continue tokens and resource versions are opaque).
fn query_value(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_watch_events() {
        let added = parse_event(br#"{"type":"ADDED","object":{"kind":"ServiceAccount","metadata":{"name":"a","namespace":"n","resourceVersion":"5"}}}"#).unwrap();
        assert!(
            matches!(added, WatchEvent::Added(ref sa) if sa.name == "a" && sa.namespace == "n")
        );
        let bm = parse_event(
            br#"{"type":"BOOKMARK","object":{"kind":"ServiceAccount","metadata":{"resourceVersion":"9"}}}"#,
        )
        .unwrap();
        assert_eq!(bm, WatchEvent::Bookmark("9".into()));
        let gone = parse_event(br#"{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}}"#).unwrap();
        assert_eq!(
            gone,
            WatchEvent::Error {
                code: 410,
                message: "too old resource version".into()
            }
        );
        assert!(parse_event(b"{").is_err());
        assert!(parse_event(br#"{"type":"WHAT"}"#).is_err());
    }

    #[test]
    fn escapes_query_values() {
        assert_eq!(query_value("a b/c=d&e"), "a%20b%2Fc%3Dd%26e");
        assert_eq!(query_value("eyJ2-_.~"), "eyJ2-_.~");
        assert_eq!(query_value("ab+c/d=="), "ab%2Bc%2Fd%3D%3D");
        assert_eq!(segment("kube-system"), "kube-system");
        assert_eq!(segment("a/é"), "a%2F%C3%A9");
    }
}
