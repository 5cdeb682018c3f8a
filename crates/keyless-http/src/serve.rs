//! Serving a service over TLS (or plain HTTP) on an already-bound listener, under
//! [`ConnectionLimits`], with graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::http::Request;
use axum::response::Response;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper::body::Incoming;
use tower::Service;

use crate::limits::{BodyDeadline, ConnectionCap, ConnectionLimits, LimitedAcceptor};

/// What can be served: an axum `Router`, or a router behind request mapping (bodies
/// arrive under the body deadline, as axum bodies).
pub trait Served:
    Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S> Served for S where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

/// Serves `service` on `listener` with `tls` (reloadable) under `limits` until
/// `shutdown` resolves, then drains open connections for up to 10 seconds. Handlers
/// see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve_tls(
    listener: TcpListener,
    tls: RustlsConfig,
    service: impl Served,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let handle = drain_on(shutdown);
    // TCP_NODELAY: a response (or an HTTP/2 frame train) goes out at once instead of
    // waiting for the peer's delayed ACK (40 ms stalls under HTTP/2).
    let tls = RustlsAcceptor::new(tls)
        .handshake_timeout(limits.tls_handshake)
        .acceptor(NoDelayAcceptor::new());
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(LimitedAcceptor::new(tls, limits))
        .handle(handle);
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(limits.max_http2_streams);
    server.serve(make_service(service, limits)).await
}

/// Serves `service` over plain HTTP (metrics listeners) under `limits` until
/// `shutdown` resolves.
pub async fn serve_plain(
    listener: TcpListener,
    service: impl Served,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let handle = drain_on(shutdown);
    let plain = NoDelayAcceptor::new();
    axum_server::from_tcp(listener)?
        .acceptor(LimitedAcceptor::new(plain, limits))
        .handle(handle)
        .serve(make_service(service, limits))
        .await
}

/// A server handle that, once `shutdown` resolves, stops accepting and drains open
/// connections for up to 10 seconds.
fn drain_on(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> axum_server::Handle<SocketAddr> {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    handle
}

/// The service as a capped make-service that knows each peer's address.
fn make_service<S: Served>(
    service: S,
    limits: ConnectionLimits,
) -> ConnectionCap<IntoMakeServiceWithConnectInfo<BodyDeadline<S>, SocketAddr>> {
    let service = BodyDeadline::new(service, limits.body_read);
    let make = axum::ServiceExt::<Request<Incoming>>::into_make_service_with_connect_info::<
        SocketAddr,
    >(service);
    ConnectionCap::new(make, limits.max_connections)
}
