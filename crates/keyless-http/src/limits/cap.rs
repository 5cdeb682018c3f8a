//! A cap on connections served at once, applied before a connection is accepted.
//!
//! axum-server asks the make-service to be ready before it turns an accepted socket
//! into a connection task. While all permits are taken, the accept loop waits there:
//! one accepted socket waits with it, the rest stay in the kernel's accept backlog
//! (and are refused by the kernel once the backlog is full). A permit is released when
//! the last clone of the connection's service is dropped, i.e. when the connection ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tower::Service;

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A make-service that hands out at most `max` connection services at once.
pub(crate) struct ConnectionCap<M> {
    inner: M,
    semaphore: Option<Arc<Semaphore>>,
    acquiring: Option<Acquire>,
    permit: Option<OwnedSemaphorePermit>,
}

impl<M> ConnectionCap<M> {
    /// `max = None`: no cap.
    pub(crate) fn new(inner: M, max: Option<usize>) -> Self {
        Self {
            inner,
            semaphore: max.map(|n| Arc::new(Semaphore::new(n))),
            acquiring: None,
            permit: None,
        }
    }
}

/// A connection's service holding its share of the connection cap.
#[derive(Clone)]
pub(crate) struct Permitted<S> {
    inner: S,
    _permit: Option<Arc<OwnedSemaphorePermit>>,
}

impl<M, T> Service<T> for ConnectionCap<M>
where
    M: Service<T>,
    M::Future: Send + 'static,
{
    type Response = Permitted<M::Response>;
    type Error = M::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, M::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), M::Error>> {
        if let (Some(semaphore), None) = (&self.semaphore, &self.permit) {
            let acquiring = self
                .acquiring
                .get_or_insert_with(|| Box::pin(Arc::clone(semaphore).acquire_owned()));
            match acquiring.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(permit) => {
                    self.acquiring = None;
                    // The semaphore is never closed; were it, serving uncapped beats
                    // refusing every connection.
                    self.permit = permit.ok();
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, target: T) -> Self::Future {
        let permit = self.permit.take().map(Arc::new);
        let made = self.inner.call(target);
        Box::pin(async move {
            Ok(Permitted {
                inner: made.await?,
                _permit: permit,
            })
        })
    }
}

impl<S, R> Service<R> for Permitted<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}
