//! The listener: plain HTTP/1.1 on a (normally loopback) address, with bounds on what
//! one local client can hold.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::protocol::{Protocol, Refusal};
use crate::sidecar::Sidecar;

/// Smallest read buffer hyper accepts; request heads (line and headers) must fit.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// What one client can hold of the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time to send a request head, and the longest a kept-alive connection may sit
    /// idle between requests.
    pub header_read: Duration,
    /// Longest time to answer one request (a token exchange, with the credential's
    /// retries, included); past it the answer is 503.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(60),
        }
    }
}

/// Serves `sidecar` on `listener` until `shutdown` resolves; connections in progress
/// are then left to finish on their own tasks.
pub async fn serve(
    listener: TcpListener,
    sidecar: Arc<Sidecar>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        // A permit before accepting: at the cap, new connections wait in the backlog
        // instead of taking memory here.
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let sidecar = sidecar.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let sidecar = sidecar.clone();
                async move {
                    let answer =
                        tokio::time::timeout(limits.request, sidecar.handle(request)).await;
                    Ok::<_, std::convert::Infallible>(answer.unwrap_or_else(|_| {
                        Refusal::new(
                            http::StatusCode::SERVICE_UNAVAILABLE,
                            "temporarily_unavailable",
                            "the token service did not answer in time",
                        )
                        .render(Protocol::Imds)
                    }))
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
