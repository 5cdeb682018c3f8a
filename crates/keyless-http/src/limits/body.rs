//! A request body that must arrive in full before a deadline, and the service that
//! answers 408 when it does not.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::time::Sleep;
use tower::Service;

/// Boxed error of a request body (what axum's `Body` accepts).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body did not arrive within the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub(crate) struct BodyTimedOut(Duration);

/// Wraps a request body: one deadline for the whole body (not per frame, so a
/// client dripping a byte at a time cannot stretch it), and a flag the service reads
/// to answer 408 instead of whatever the handler made of the truncated body.
pub(crate) struct DeadlineBody<B> {
    inner: B,
    timer: Pin<Box<Sleep>>,
    limit: Duration,
    timed_out: Arc<AtomicBool>,
}

impl<B> DeadlineBody<B> {
    pub(crate) fn new(inner: B, limit: Duration, timed_out: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            timer: Box::pin(tokio::time::sleep(limit)),
            limit,
            timed_out,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit)))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Gives each request body of the wrapped service one deadline, counted from the end
/// of the request head.
#[derive(Clone)]
pub(crate) struct BodyDeadline<S> {
    inner: S,
    limit: Option<Duration>,
}

impl<S> BodyDeadline<S> {
    /// `limit = None`: bodies may take any time.
    pub(crate) fn new(inner: S, limit: Option<Duration>) -> Self {
        Self { inner, limit }
    }
}

impl<S> Service<Request<Incoming>> for BodyDeadline<S>
where
    S: Service<Request<axum::body::Body>, Response = Response<axum::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<axum::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let timed_out = Arc::new(AtomicBool::new(false));
        let request = match self.limit {
            Some(limit) => {
                let flag = Arc::clone(&timed_out);
                request.map(|b| axum::body::Body::new(DeadlineBody::new(b, limit, flag)))
            }
            None => request.map(axum::body::Body::new),
        };
        let responding = self.inner.call(request);
        Box::pin(async move {
            let response = responding.await?;
            if timed_out.load(Ordering::Relaxed) {
                // Whatever the handler made of a truncated body is not an answer.
                return Ok(request_timeout());
            }
            Ok(response)
        })
    }
}

/// 408, and the connection closes: its remaining bytes are not worth reading.
fn request_timeout() -> Response<axum::body::Body> {
    let mut response = Response::new(axum::body::Body::from(
        "the request body was not received in time; send it at once and retry\n",
    ));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
