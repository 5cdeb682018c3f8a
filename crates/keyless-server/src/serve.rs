//! Serving the application router: paths normalised before routing, under the
//! connection limits of `keyless-http`.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use keyless_http::ConnectionLimits;
use tower::ServiceExt;

use crate::router::normalize_path;

/// Serves `router` on `listener` with `tls` under `limits` until `shutdown` resolves,
/// then drains open connections for up to 10 seconds.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Normalise the path before routing (a router layer would run after it).
    let service = router.map_request(normalize_path);
    keyless_http::serve_tls(
        listener,
        RustlsConfig::from_config(tls),
        service,
        limits,
        shutdown,
    )
    .await
}

/// Serves `router` over plain HTTP (the metrics listener) under `limits`.
pub async fn serve_plain(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    keyless_http::serve_plain(listener, router, limits, std::future::pending()).await
}
