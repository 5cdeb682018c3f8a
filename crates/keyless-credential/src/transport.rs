//! Sending one token request: the HTTP client, retries with backoff and `Retry-After`,
//! bounded reading, and turning the answer into a grant or a [`ServiceError`].

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::error::{Error, ServiceError};
use crate::options::{CaSource, CredentialOptions, RetryPolicy};

/// Statuses retried, as azure-core and MSAL do.
const RETRYABLE_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];
/// Largest response body read; token responses are a few kilobytes.
const MAX_BODY: usize = 1024 * 1024;
/// Connect (TCP + TLS) timeout of the built-in client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest error text kept from a response.
const MAX_ERROR_TEXT: usize = 4000;
/// Longest non-JSON body kept in an error.
const MAX_BODY_EXCERPT: usize = 500;
/// `User-Agent` of the built-in client.
const USER_AGENT: &str = concat!("keyless-credential/", env!("CARGO_PKG_VERSION"));

/// What a successful token response grants.
#[derive(Debug)]
pub(crate) struct Grant {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Duration,
    pub refresh_in: Option<Duration>,
}

/// Sends token requests.
#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl Transport {
    pub(crate) fn new(options: &CredentialOptions) -> Result<Self, Error> {
        Ok(Self {
            http: build_client(options)?,
            retry: options.retry,
            clock: options.clock.clone(),
        })
    }

    /// POSTs `form` to `endpoint`, retrying transient failures.
    pub(crate) async fn request(
        &self,
        endpoint: &Url,
        form: &[(&str, &str)],
    ) -> Result<Grant, Error> {
        // One id for the logical request, so the service's log ties the retries together.
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut attempts: u32 = 0;
        loop {
            let retry_index = attempts;
            attempts = attempts.saturating_add(1);
            let may_retry = retry_index < self.retry.retries();
            let sent = self
                .http
                .post(endpoint.clone())
                .header(ACCEPT, "application/json")
                .header("client-request-id", &request_id)
                .header("return-client-request-id", "true")
                .form(form)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) if may_retry && is_transient(&e) => {
                    tokio::time::sleep(self.retry.backoff(retry_index, fastrand::f64())).await;
                    continue;
                }
                Err(e) => return Err(transport_error(endpoint, attempts, e)),
            };
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers(), self.clock.now());
            let body = match read_bounded(response).await {
                Ok(body) => body,
                Err(e) if may_retry && is_transient(&e) => {
                    tokio::time::sleep(self.retry.backoff(retry_index, fastrand::f64())).await;
                    continue;
                }
                Err(e) => return Err(transport_error(endpoint, attempts, e)),
            };
            if (200..300).contains(&status) {
                return parse_grant(&body, self.clock.now()).map_err(|reason| {
                    Error::InvalidResponse {
                        endpoint: endpoint.to_string(),
                        status,
                        reason,
                    }
                });
            }
            if may_retry && RETRYABLE_STATUSES.contains(&status) {
                let wait =
                    retry_after.unwrap_or_else(|| self.retry.backoff(retry_index, fastrand::f64()));
                if wait <= self.retry.max_retry_after_wait() {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(service_error(
                endpoint,
                status,
                &body,
                &request_id,
                retry_after,
                attempts,
            ));
        }
    }
}

/// The built-in HTTP client: https only, no redirects (a redirected POST would carry the
/// secret elsewhere), bounded timeouts, optionally a private CA.
fn build_client(options: &CredentialOptions) -> Result<reqwest::Client, Error> {
    if let Some(client) = &options.http_client {
        if options.ca.is_some() {
            return Err(Error::invalid(
                "CA certificate",
                "it cannot be combined with a caller-supplied HTTP client; add the CA to that client",
            ));
        }
        return Ok(client.clone());
    }
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT.min(options.timeout))
        .timeout(options.timeout)
        .user_agent(USER_AGENT);
    if let Some(ca) = &options.ca {
        let (pem, origin) = match ca {
            CaSource::Pem(pem) => (pem.clone(), "the PEM given in the options".to_owned()),
            CaSource::File(path) => match std::fs::read(path) {
                Ok(pem) => (pem, path.display().to_string()),
                Err(e) => {
                    return Err(Error::invalid(
                        "CA certificate",
                        format!("cannot read {}: {e}", path.display()),
                    ));
                }
            },
        };
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::invalid(
                "CA certificate",
                format!("{origin} is not PEM: {}", chain(&e)),
            )
        })?;
        if certs.is_empty() {
            return Err(Error::invalid(
                "CA certificate",
                format!("{origin} holds no PEM certificate"),
            ));
        }
        builder = if options.trust_system_roots {
            builder.tls_certs_merge(certs)
        } else {
            builder.tls_certs_only(certs)
        };
    }
    builder
        .build()
        .map_err(|e| Error::invalid("HTTP client", chain(&e)))
}

fn transport_error(endpoint: &Url, attempts: u32, e: reqwest::Error) -> Error {
    let mut message = chain(&e);
    if is_tls_problem(&e) {
        message.push_str(
            " (a TLS or certificate problem: trust the server's CA with CredentialOptions::ca_file, or SSL_CERT_FILE)",
        );
    }
    Error::Transport {
        endpoint: endpoint.to_string(),
        attempts,
        message,
        source: Arc::new(e),
    }
}

/// Connection failures, timeouts and broken connections heal; TLS and certificate
/// problems, and requests that could not be built, do not.
fn is_transient(e: &reqwest::Error) -> bool {
    !e.is_builder()
        && !is_tls_problem(e)
        && (e.is_connect() || e.is_timeout() || e.is_request() || e.is_body())
}

fn is_tls_problem(e: &reqwest::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = current {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // `io::Error::source` skips the error it wraps (and TLS errors come wrapped in
        // two of them): step into the wrapped error itself.
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => err.source(),
        };
    }
    false
}

/// An error and its causes on one line, without repeating a cause already included.
pub(crate) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut current = e.source();
    while let Some(cause) = current {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = cause.source();
    }
    text
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok(body)
}

/// The wait the service asked for: `retry-after-ms` / `x-ms-retry-after-ms` (Azure),
/// else `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP-date>` (RFC 9110 §10.2.3). A date in
/// the past means no wait; a number too large to represent means "too long".
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    httpdate::parse_http_date(value)
        .ok()
        .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads a token response leniently: integer or numeric-string `expires_in` (v1 sends
/// strings), `expires_on` when `expires_in` is absent, integer `refresh_in` only (as
/// MSAL requires), unknown fields ignored.
pub(crate) fn parse_grant(body: &[u8], now: SystemTime) -> Result<Grant, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        if body.len() >= MAX_BODY {
            format!("the body is larger than {MAX_BODY} bytes")
        } else {
            format!("the body is not JSON ({e})")
        }
    })?;
    let Value::Object(object) = value else {
        return Err("the body is not a JSON object".to_owned());
    };
    let access_token = match object.get("access_token") {
        Some(Value::String(token)) if !token.trim().is_empty() => token.trim().to_owned(),
        Some(Value::String(_)) => return Err("access_token is empty".to_owned()),
        Some(_) => return Err("access_token is not a string".to_owned()),
        None => return Err("it has no access_token".to_owned()),
    };
    let token_type = object
        .get("token_type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("Bearer")
        .to_owned();
    let expires_in = match object.get("expires_in").and_then(seconds) {
        Some(secs) => secs,
        None => match object.get("expires_on").and_then(seconds) {
            Some(on) => on.saturating_sub(unix(now)),
            None => return Err("it has no numeric expires_in (or expires_on)".to_owned()),
        },
    };
    if expires_in <= 0 {
        return Err(format!(
            "expires_in is {expires_in}: the token is already expired"
        ));
    }
    let refresh_in = object
        .get("refresh_in")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .map(|r| Duration::from_secs(r.unsigned_abs()));
    Ok(Grant {
        access_token,
        token_type,
        expires_in: Duration::from_secs(expires_in.unsigned_abs()),
        refresh_in,
    })
}

fn seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

/// Entra's error body, read field by field so a partial or non-standard body still
/// yields everything it has.
pub(crate) fn service_error(
    endpoint: &Url,
    status: u16,
    body: &[u8],
    request_id: &str,
    retry_after: Option<Duration>,
    attempts: u32,
) -> Error {
    Error::Service(Box::new(service_error_parts(
        endpoint.to_string(),
        status,
        body,
        Some(request_id),
        retry_after,
        attempts,
    )))
}

/// [`service_error`]'s parsing; the correlation id falls back to `request_id`.
pub(crate) fn service_error_parts(
    endpoint: String,
    status: u16,
    body: &[u8],
    request_id: Option<&str>,
    retry_after: Option<Duration>,
    attempts: u32,
) -> ServiceError {
    let object: Option<Map<String, Value>> = match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    };
    let text = |name: &str| -> Option<String> {
        object
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| clip_to(s, MAX_ERROR_TEXT))
    };
    let error = text("error");
    let error_description = text("error_description");
    let mut error_codes: Vec<u64> = object
        .as_ref()
        .and_then(|o| o.get("error_codes"))
        .and_then(Value::as_array)
        .map(|codes| codes.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if error_codes.is_empty()
        && let Some(code) = error_description.as_deref().and_then(aadsts_prefix)
    {
        error_codes.push(code);
    }
    let body_excerpt = if error.is_none() && error_description.is_none() {
        let lossy = String::from_utf8_lossy(body);
        Some(clip_to(lossy.trim(), MAX_BODY_EXCERPT))
    } else {
        None
    };
    ServiceError {
        endpoint,
        status,
        error,
        error_description,
        error_codes,
        correlation_id: text("correlation_id").or_else(|| request_id.map(str::to_owned)),
        trace_id: text("trace_id"),
        timestamp: text("timestamp"),
        error_uri: text("error_uri"),
        body: body_excerpt,
        retry_after,
        attempts,
    }
}

/// The code of a description starting `AADSTS<digits>:`.
fn aadsts_prefix(description: &str) -> Option<u64> {
    let rest = description.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || !rest.get(digits.len()..).is_some_and(|r| r.starts_with(':')) {
        return None;
    }
    digits.parse().ok()
}

fn clip_to(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max_chars).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::MAX)
        );
        let in_two_minutes = httpdate::fmt_http_date(now() + Duration::from_secs(120));
        assert_eq!(
            parse_retry_after(&in_two_minutes, now()),
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date(now() - Duration::from_secs(120));
        assert_eq!(parse_retry_after(&past, now()), Some(Duration::ZERO));
        for junk in ["", "soon", "-5", "1.5", "Mon, 99 Foo 2024"] {
            assert_eq!(parse_retry_after(junk, now()), None, "{junk:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, reqwest::header::HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers, now()), Some(Duration::from_secs(3)));
        headers.insert(
            "retry-after-ms",
            reqwest::header::HeaderValue::from_static("250"),
        );
        assert_eq!(
            retry_after(&headers, now()),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn v2_and_v1_token_responses_parse() {
        let g = parse_grant(
            br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"a.b.c"}"#,
            now(),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(g.access_token, "a.b.c");
        assert_eq!(g.expires_in, Duration::from_secs(3599));
        assert_eq!(g.refresh_in, None);
        let g = parse_grant(
            br#"{"expires_in":"3600","expires_on":"1","access_token":"t","refresh_in":1800}"#,
            now(),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(g.expires_in, Duration::from_secs(3600));
        assert_eq!(g.refresh_in, Some(Duration::from_secs(1800)));
        assert_eq!(g.token_type, "Bearer");
        let g = parse_grant(br#"{"expires_on":1700000600,"access_token":"t"}"#, now())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(g.expires_in, Duration::from_secs(600));
        // A string refresh_in (which crashes MSAL) is ignored, not an error.
        let g = parse_grant(
            br#"{"expires_in":60,"access_token":"t","refresh_in":"30"}"#,
            now(),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(g.refresh_in, None);
    }

    #[test]
    fn unusable_token_responses_are_named() {
        let cases: [(&[u8], &str); 8] = [
            (b"<html>", "not JSON"),
            (b"[]", "not a JSON object"),
            (br#"{"expires_in":1}"#, "no access_token"),
            (br#"{"expires_in":1,"access_token":""}"#, "empty"),
            (br#"{"expires_in":1,"access_token":7}"#, "not a string"),
            (br#"{"access_token":"t"}"#, "no numeric expires_in"),
            (
                br#"{"access_token":"t","expires_in":"soon"}"#,
                "no numeric expires_in",
            ),
            (br#"{"access_token":"t","expires_in":0}"#, "already expired"),
        ];
        for (body, needle) in cases {
            match parse_grant(body, now()) {
                Ok(g) => unreachable!("{} parsed: {g:?}", String::from_utf8_lossy(body)),
                Err(e) => assert!(e.contains(needle), "{e}"),
            }
        }
    }

    fn endpoint() -> Url {
        Url::parse("https://login.example/t/oauth2/v2.0/token")
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn entra_error_bodies_keep_every_field() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS700213: No matching federated identity record found for presented assertion subject 'x'. Trace ID: tr Correlation ID: co Timestamp: 2024-06-04 11:40:28Z","error_codes":[700213],"timestamp":"2024-06-04 11:40:28Z","trace_id":"tr","correlation_id":"co","error_uri":"https://login.example/error?code=700213"}"#;
        let e = service_error(&endpoint(), 401, body, "req", None, 1);
        let Some(s) = e.service_error() else {
            unreachable!("{e}")
        };
        assert_eq!(s.error.as_deref(), Some("invalid_client"));
        assert_eq!(s.error_codes, vec![700213]);
        assert_eq!(s.correlation_id.as_deref(), Some("co"));
        assert_eq!(s.trace_id.as_deref(), Some("tr"));
        assert_eq!(s.timestamp.as_deref(), Some("2024-06-04 11:40:28Z"));
        assert!(s.error_uri.is_some());
        assert_eq!(s.body, None);
        let msg = e.to_string();
        assert!(
            msg.contains("HTTP 401 invalid_client: AADSTS700213: No matching"),
            "{msg}"
        );
        assert!(!msg.contains("(correlation id"), "{msg}");
    }

    #[test]
    fn partial_and_foreign_error_bodies_still_explain() {
        // No error_codes: the code is read from the description.
        let e = service_error(
            &endpoint(),
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#,
            "req-1",
            None,
            1,
        );
        assert_eq!(e.aadsts_codes(), &[90002]);
        assert!(e.to_string().ends_with("(correlation id req-1)"), "{e}");
        // A proxy's HTML page.
        let e = service_error(
            &endpoint(),
            502,
            b"<html>Bad gateway</html>",
            "req-2",
            Some(Duration::from_secs(5)),
            4,
        );
        let msg = e.to_string();
        assert!(msg.contains("HTTP 502: <html>Bad gateway</html>"), "{msg}");
        assert!(
            msg.contains("after 4 attempts") && msg.contains("retry after 5 s"),
            "{msg}"
        );
        assert!(e.aadsts_codes().is_empty());
        // Huge bodies are clipped.
        let e = service_error(
            &endpoint(),
            500,
            "x".repeat(10_000).as_bytes(),
            "r",
            None,
            1,
        );
        assert!(e.to_string().len() < 1000);
        assert_eq!(aadsts_prefix("AADSTS12: x"), Some(12));
        assert_eq!(aadsts_prefix("AADSTS: x"), None);
        assert_eq!(aadsts_prefix("AADSTS12 x"), None);
    }

    #[test]
    fn built_in_client_refuses_bad_ca_input() {
        let opts = CredentialOptions::new().ca_pem("not a certificate");
        assert!(matches!(
            build_client(&opts),
            Err(Error::InvalidSetting { .. })
        ));
        let opts = CredentialOptions::new().ca_file("/nonexistent/ca.pem");
        let Err(e) = build_client(&opts) else {
            unreachable!()
        };
        assert!(
            e.to_string().contains("cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        let opts = CredentialOptions::new()
            .http_client(reqwest::Client::new())
            .ca_pem("x");
        assert!(build_client(&opts).is_err());
    }
}
