//! Serving a router over TLS on an already-bound listener, with graceful shutdown.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tower::ServiceExt;

use crate::limits::{BodyDeadline, ConnectionCap, ConnectionLimits, LimitedAcceptor};
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
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let tls =
        RustlsAcceptor::new(RustlsConfig::from_config(tls)).handshake_timeout(limits.tls_handshake);
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(LimitedAcceptor::new(tls, limits))
        .handle(handle);
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(limits.max_http2_streams);
    server.serve(make_service(router, limits)).await
}

/// Serves `router` over plain HTTP (the metrics listener) under `limits`.
pub async fn serve_plain(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let plain = axum_server::accept::DefaultAcceptor::new();
    axum_server::from_tcp(listener)?
        .acceptor(LimitedAcceptor::new(plain, limits))
        .serve(make_service(router, limits))
        .await
}

/// The router as a capped make-service that knows each peer's address.
fn make_service(
    router: Router,
    limits: ConnectionLimits,
) -> ConnectionCap<
    axum::extract::connect_info::IntoMakeServiceWithConnectInfo<
        impl tower::Service<
            axum::http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future = impl Send + 'static,
        > + Clone
        + Send
        + 'static,
        std::net::SocketAddr,
    >,
> {
    // Normalise the path before routing (a router layer would run after it).
    let service = BodyDeadline::new(router.map_request(normalize_path), limits.body_read);
    let make = axum::ServiceExt::<axum::http::Request<hyper::body::Incoming>>::into_make_service_with_connect_info::<std::net::SocketAddr>(service);
    ConnectionCap::new(make, limits.max_connections)
}
