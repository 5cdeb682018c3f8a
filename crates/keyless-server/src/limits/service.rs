//! The acceptor and per-connection service that apply the time limits: the stream is
//! watched for idle and slow-head time, and the service tells the stream when
//! requests start and finish.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Request;
use axum_server::accept::Accept;
use tower::Service;

use super::ConnectionLimits;
use super::activity::{Activity, WatchedStream};

/// Wraps an acceptor (TLS, or none): what it accepts is served under the limits.
#[derive(Clone)]
pub(crate) struct LimitedAcceptor<A> {
    inner: A,
    limits: ConnectionLimits,
}

impl<A> LimitedAcceptor<A> {
    pub(crate) fn new(inner: A, limits: ConnectionLimits) -> Self {
        Self { inner, limits }
    }
}

impl<A, I, S> Accept<I, S> for LimitedAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
{
    type Stream = WatchedStream<A::Stream>;
    type Service = LimitedService<A::Service>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepting = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            // The idle clock starts once the handshake is done.
            let activity = Activity::new(limits.header_read, limits.idle);
            Ok((
                WatchedStream::new(stream, Arc::clone(&activity)),
                LimitedService {
                    inner: service,
                    activity,
                },
            ))
        })
    }
}

/// A connection's service: keeps the connection's phase up to date.
#[derive(Clone)]
pub(crate) struct LimitedService<S> {
    inner: S,
    activity: Arc<Activity>,
}

/// Marks a request finished when its response future completes or is dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

impl<S, B> Service<Request<B>> for LimitedService<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.activity.request_started();
        let in_flight = InFlight(Arc::clone(&self.activity));
        let responding = self.inner.call(request);
        Box::pin(async move {
            let response = responding.await;
            drop(in_flight);
            response
        })
    }
}
