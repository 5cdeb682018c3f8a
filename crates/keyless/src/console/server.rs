//! The console's HTTP listener and the guards in front of everything it serves.
//!
//! Every request passes [`guard`]: the `Host` must name this listener (a DNS-rebinding
//! page reaches us under its own name), an `Origin` must be exactly our own (no other
//! page may drive the API; no CORS headers are ever sent), API calls must carry the
//! launch secret in `X-Keyless-Console` (compared in constant time: other local users
//! can connect to loopback too), and state-changing calls must be JSON. Every reply gets
//! a strict Content-Security-Policy and no-sniff / no-referrer / no-framing headers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::upstream::Upstream;

/// The header the page sends the launch secret in.
pub const SECRET_HEADER: &str = "x-keyless-console";
/// Largest request body (a secret value is at most 25 KiB in Key Vault; a JWT pasted
/// into "test a token" at most 16 KiB).
const MAX_BODY: usize = 256 * 1024;
/// The page may load only what this server serves, and nothing may frame it.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One console: its address, launch secret and upstream credentials.
pub struct Console {
    /// `Host` values this listener answers to: `127.0.0.1:PORT`, `localhost:PORT` (and
    /// `[::1]:PORT` on IPv6).
    hosts: Vec<String>,
    secret: String,
    /// Who the console acts as, and how.
    pub upstream: Upstream,
}

impl Console {
    /// A console bound to `addr` whose page must present `secret`.
    pub fn new(addr: SocketAddr, secret: String, upstream: Upstream) -> Self {
        let port = addr.port();
        let mut hosts = vec![format!("localhost:{port}"), addr.to_string()];
        if addr.is_ipv4() {
            hosts.push(format!("127.0.0.1:{port}"));
        } else {
            hosts.push(format!("[::1]:{port}"));
        }
        hosts.dedup();
        Self {
            hosts,
            secret,
            upstream,
        }
    }

    fn secret_matches(&self, presented: Option<&HeaderValue>) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            self.secret.as_bytes(),
        )
        .is_ok()
    }
}

/// The console's router: assets, the JSON API, and the guard around both.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}

async fn dispatch(State(console): State<Arc<Console>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/api/") {
        super::api::handle(&console, request).await
    } else {
        super::assets::serve(&path)
    }
}

/// A JSON error in ARM's shape (`{"error":{"code","message"}}`), which the page shows.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// A JSON reply.
pub fn json_reply(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = match check(&console, &request, is_api) {
        Ok(()) => next.run(request).await,
        Err(refused) => *refused,
    };
    with_security_headers(response, is_api)
}

/// The request's checks, in order: host, origin, secret, method and content type.
fn check(console: &Console, request: &Request, is_api: bool) -> Result<(), Box<Response>> {
    check_inner(console, request, is_api).map_err(Box::new)
}

#[allow(
    clippy::result_large_err,
    reason = "boxed once by `check`; every refusal here is a whole response"
)]
fn check_inner(console: &Console, request: &Request, is_api: bool) -> Result<(), Response> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let Some(host) = host.filter(|h| console.hosts.iter().any(|a| a == h)) else {
        return Err(json_error(
            StatusCode::MISDIRECTED_REQUEST,
            "WrongHost",
            &format!(
                "This console answers only to http://{}/ (the Host header names another server).",
                console.hosts.last().map_or("127.0.0.1", String::as_str)
            ),
        ));
    };
    let foreign_origin = headers
        .get(header::ORIGIN)
        .is_some_and(|origin| origin.as_bytes() != format!("http://{host}").as_bytes());
    if foreign_origin || cross_site(headers) {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "ForeignOrigin",
            "Requests from other web pages are refused.",
        ));
    }
    let method = request.method();
    if !is_api {
        if method == Method::GET || method == Method::HEAD {
            return Ok(());
        }
        return Err(json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The console's pages are read with GET.",
        ));
    }
    if !console.secret_matches(headers.get(SECRET_HEADER)) {
        return Err(json_error(
            StatusCode::UNAUTHORIZED,
            "ConsoleSecretRequired",
            "This API needs the console's launch secret: open the URL `keyless console` printed (the part after #).",
        ));
    }
    match *method {
        Method::GET | Method::HEAD => Ok(()),
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH => {
            if is_json(headers) {
                Ok(())
            } else {
                Err(json_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "JsonRequired",
                    "State-changing calls must be sent as application/json.",
                ))
            }
        }
        _ => Err(json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Use GET, POST, PUT, PATCH or DELETE.",
        )),
    }
}

/// A browser that says the request comes from another site (Fetch Metadata).
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.eq_ignore_ascii_case("cross-site") || v.eq_ignore_ascii_case("same-site")
        })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn with_security_headers(mut response: Response, is_api: bool) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    // API replies carry operator data; assets are tiny and change with the binary.
    set(
        h,
        header::CACHE_CONTROL,
        if is_api { "no-store" } else { "no-cache" },
    );
    // Never CORS: nothing here is for another origin.
    h.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_counts_as_json() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json(&h));
    }

    #[test]
    fn cross_site_fetches_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
    }
}
