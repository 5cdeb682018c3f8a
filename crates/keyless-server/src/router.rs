//! The application router: token service routes, the management API behind them, and
//! the layers every request goes through (path normalisation, body limits, tracing).

use std::sync::Arc;

use axum::Router;
use axum::http::Uri;
use axum::routing::{get, post};
use keyless_core::Keyless;

use crate::throttle::{RateLimits, Throttle};
use crate::{arm, sts};

/// Largest request body accepted anywhere (the token endpoint has a smaller one).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The domain.
    pub keyless: Arc<Keyless>,
    /// The request rate limits.
    pub throttle: Arc<Throttle>,
}

impl AppState {
    /// State for `keyless` under the rate `limits`.
    pub fn new(keyless: Arc<Keyless>, limits: &RateLimits) -> Self {
        Self {
            keyless,
            throttle: Arc::new(Throttle::new(limits)),
        }
    }
}

/// Builds the router for `keyless serve`.
pub fn build_router(state: AppState) -> Router {
    let sts = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(sts::token::token::<true>),
        )
        .route("/{tenant}/oauth2/token", post(sts::token::token::<false>))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(sts::discovery::openid_configuration::<true>),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(sts::discovery::openid_configuration::<false>),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(sts::discovery::jwks))
        .route("/{tenant}/discovery/keys", get(sts::discovery::jwks))
        .layer(axum::extract::DefaultBodyLimit::max(
            sts::token::MAX_FORM_BYTES,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        // Anonymous, like discovery: `az cloud register` and Terraform read it before
        // they have a token.
        .route("/metadata/endpoints", get(arm::cloud_metadata::endpoints))
        .merge(sts)
        .fallback(arm::dispatch::handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            protocol_error_shapes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            vault_hosts,
        ))
        // Outside the vault dispatch, so vault requests are counted too; inside the
        // error shapes, so its own answers need none.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::throttle::limit_failures,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(
            tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
                axum::http::header::AUTHORIZATION,
            ]),
        )
        .with_state(state)
}

/// Collapses repeated slashes in the path (MSAL builds `/{tenant}//v2.0/...` from an
/// authority with a trailing slash). Applied before routing.
pub fn normalize_path<B>(mut req: axum::http::Request<B>) -> axum::http::Request<B> {
    let uri = req.uri();
    let path = uri.path();
    if path.contains("//") {
        let mut collapsed = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && collapsed.ends_with('/')) {
                collapsed.push(c);
            }
        }
        let pq = match uri.query() {
            Some(q) => format!("{collapsed}?{q}"),
            None => collapsed,
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(new) = Uri::from_parts(parts) {
                *req.uri_mut() = new;
            }
        }
    }
    req
}

/// Whether a path belongs to the token service (and so gets Entra's error shape).
pub(crate) fn is_token_service_path(path: &str) -> bool {
    path.contains("/oauth2/") || path.contains("/.well-known/") || path.contains("/discovery/")
}

/// Gives every error the protocol's documented shape, including those produced by
/// layers and extractors (body too large, method not allowed, bad path) that would
/// otherwise answer in plain text.
async fn protocol_error_shapes(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let token_service = is_token_service_path(req.uri().path());
    let correlation = crate::errors::correlation_id(req.headers());
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let message = match status.as_u16() {
        413 => format!(
            "The request body is larger than the {} bytes accepted here.",
            if token_service {
                sts::token::MAX_FORM_BYTES
            } else {
                MAX_BODY_BYTES
            }
        ),
        405 => "The HTTP method is not supported for this resource.".to_string(),
        _ => format!("The request could not be processed ({status})."),
    };
    if token_service {
        let err = keyless_core::grant::GrantError::new(
            keyless_core::grant::OAuthError::InvalidRequest,
            900144,
            message,
        );
        let mut shaped = crate::errors::oauth_error(
            &err,
            &state.keyless.settings().public.authority(),
            &correlation,
            state.keyless.now(),
        );
        *shaped.status_mut() = status;
        shaped
    } else {
        let code = match status.as_u16() {
            413 => "RequestEntityTooLarge",
            405 => "MethodNotAllowed",
            _ => "BadRequest",
        };
        crate::errors::ArmResponseError::new(status, code, message).into_response()
    }
}

/// `GET /metrics` on the main listener: Prometheus text for an authenticated caller
/// allowed `Keyless/metrics/read` at `/` (Reader and Owner are). Nothing is anonymous
/// there except discovery, JWKS, the token endpoint and health; for an unauthenticated
/// scraper, serve metrics on a separate listener (`metrics_router`).
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let authorized = crate::arm::auth::authenticate(&state.keyless, &headers).and_then(|caller| {
        state
            .keyless
            .authorize(&caller, "/", "Keyless/metrics/read")
            .map_err(Into::into)
    });
    match authorized {
        Ok(()) => prometheus_text(&state).into_response(),
        Err(e) => e.into_response(),
    }
}

fn prometheus_text(state: &AppState) -> impl axum::response::IntoResponse + use<> {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        format!(
            "{}{}",
            state.keyless.render_metrics(),
            state.throttle.render_metrics()
        ),
    )
}

/// The router of the optional plain-HTTP metrics listener (`--metrics-listen`): `/metrics`
/// and `/healthz` without authentication, for a Prometheus scraper on a private network.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(
                |axum::extract::State(state): axum::extract::State<AppState>| async move {
                    prometheus_text(&state)
                },
            ),
        )
        .with_state(state)
}

/// The host the client called (`:authority` on HTTP/2, `Host` on HTTP/1.1).
pub(crate) fn request_host<B>(req: &axum::http::Request<B>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
}

/// Sends requests for vault hosts to the vault data plane; everything else goes on to
/// the token service and management API.
async fn vault_hosts(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let public_host = state.keyless.settings().public.host.clone();
    let Some(host) = request_host(&req) else {
        return next.run(req).await;
    };
    let Some(vault) = crate::vault::vault_name_from_host(&host, &public_host) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return crate::errors::ArmResponseError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!(
                    "The request body is larger than the {MAX_BODY_BYTES} bytes accepted here."
                ),
            )
            .into_response();
        }
    };
    crate::vault::handle(
        state,
        vault,
        host,
        parts.method,
        parts.uri,
        parts.headers,
        bytes,
    )
    .await
}
