//! The application router: token service routes, the management API behind them, and
//! the layers every request goes through (path normalisation, body limits, tracing).

use std::sync::Arc;

use axum::Router;
use axum::http::Uri;
use axum::routing::{get, post};
use keyless_core::Keyless;

use crate::{arm, sts};

/// Largest request body accepted anywhere (the token endpoint has a smaller one).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The domain.
    pub keyless: Arc<Keyless>,
}

/// Builds the router for `keyless serve`.
pub fn build_router(state: AppState) -> Router {
    let sts = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(sts::token::token_v2))
        .route("/{tenant}/oauth2/token", post(sts::token::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(sts::discovery::openid_configuration_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(sts::discovery::openid_configuration_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(sts::discovery::jwks))
        .route("/{tenant}/discovery/keys", get(sts::discovery::jwks))
        .layer(axum::extract::DefaultBodyLimit::max(
            sts::token::MAX_FORM_BYTES,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(sts)
        .fallback(arm::dispatch::handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
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
