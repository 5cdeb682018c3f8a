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
use super::per_address::{AddressSlots, PeerAddress};

/// Wraps an acceptor (TLS, or none): what it accepts is served under the limits.
#[derive(Clone)]
pub(crate) struct LimitedAcceptor<A> {
    inner: A,
    limits: ConnectionLimits,
    per_address: Option<Arc<AddressSlots>>,
}

impl<A> LimitedAcceptor<A> {
    pub(crate) fn new(inner: A, limits: ConnectionLimits) -> Self {
        Self {
            inner,
            limits,
            per_address: limits.max_connections_per_address.map(AddressSlots::new),
        }
    }
}

impl<A, I, S> Accept<I, S> for LimitedAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    I: PeerAddress,
{
    type Stream = WatchedStream<A::Stream>;
    type Service = LimitedService<A::Service>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        // Checked before the handshake, so a refused connection costs no crypto.
        let slot = match (&self.per_address, stream.peer_ip()) {
            (Some(slots), Some(ip)) => match slots.acquire(ip) {
                Some(slot) => Some(slot),
                None => {
                    // Dropping the stream closes it. Not logged per connection: that
                    // would let the flood write the log.
                    return Box::pin(async {
                        Err(io::Error::other("too many connections from this address"))
                    });
                }
            },
            _ => None,
        };
        let accepting = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            // The idle clock starts once the handshake is done.
            let activity = Activity::new(limits.header_read, limits.idle);
            Ok((
                WatchedStream::new(stream, Arc::clone(&activity), slot),
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
