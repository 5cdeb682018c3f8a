//! What a connection is doing (idle, reading a request head, serving requests), and a
//! stream wrapper that closes it when the current phase has lasted too long.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The phase of one connection, shared by its stream and its service.
#[derive(Debug)]
struct Phase {
    /// Requests whose response head is not yet produced.
    in_flight: usize,
    /// When the connection last became idle (accepted, or its last request answered).
    idle_since: Instant,
    /// When the first byte of the next request head arrived, while idle (HTTP/1).
    head_started: Option<Instant>,
    /// Whether the client spoke the HTTP/2 preface (its frames, e.g. pings, are not a
    /// request head); unknown until the first bytes.
    http2: Option<bool>,
}

/// Shared view of one connection's phase and its time limits.
#[derive(Debug)]
pub(crate) struct Activity {
    phase: Mutex<Phase>,
    header_read: Option<Duration>,
    idle: Option<Duration>,
}

impl Activity {
    pub(crate) fn new(header_read: Option<Duration>, idle: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                idle_since: Instant::now(),
                head_started: None,
                http2: None,
            }),
            header_read,
            idle,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Phase) -> T) -> T {
        // A panic elsewhere cannot leave the counters inconsistent in a way that matters
        // more than serving on: keep using the state.
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut phase)
    }

    /// When the connection must be closed, if nothing changes before then.
    fn deadline(&self) -> Option<Instant> {
        self.with(|p| {
            if p.in_flight > 0 {
                // Serving: the body deadline and the handler bound the time.
                return None;
            }
            let idle = self.idle.map(|d| p.idle_since + d);
            let head = match (p.http2, p.head_started, self.header_read) {
                (Some(false), Some(start), Some(d)) => Some(start + d),
                _ => None,
            };
            match (idle, head) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
    }

    fn bytes_read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.with(|p| {
            if p.http2.is_none() {
                p.http2 = Some(bytes.starts_with(b"PRI "));
            }
            if p.in_flight == 0 && p.head_started.is_none() {
                p.head_started = Some(Instant::now());
            }
        });
    }

    /// A request head was parsed and handed to the router.
    pub(crate) fn request_started(&self) {
        self.with(|p| {
            p.in_flight += 1;
            p.head_started = None;
        });
    }

    /// A request's response head is ready (or the request was dropped).
    pub(crate) fn request_finished(&self) {
        self.with(|p| {
            p.in_flight = p.in_flight.saturating_sub(1);
            if p.in_flight == 0 {
                p.idle_since = Instant::now();
                p.head_started = None;
            }
        });
    }
}

/// A connection's stream that fails reads and writes once the connection has been
/// idle, or reading a request head, for longer than allowed; hyper then closes it.
pub(crate) struct WatchedStream<S> {
    inner: S,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
    /// The connection's share of its address' cap, given back when the stream drops.
    _slot: Option<super::per_address::AddressSlot>,
}

impl<S> WatchedStream<S> {
    pub(crate) fn new(
        inner: S,
        activity: Arc<Activity>,
        slot: Option<super::per_address::AddressSlot>,
    ) -> Self {
        Self {
            inner,
            activity,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: None,
            _slot: slot,
        }
    }

    /// `Ready(error)` once the deadline passed; otherwise the timer wakes the task then.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(deadline) = self.activity.deadline() else {
            return Poll::Pending;
        };
        if self.armed_for != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed_for = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle or request head too slow",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.activity
                    .bytes_read(buf.filled().get(before..).unwrap_or_default());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.expired(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.expired(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.expired(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
