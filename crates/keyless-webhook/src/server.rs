//! The webhook's two listeners:
//!
//! - HTTPS (`--listen`): `POST /mutate-v1-pod` (any query, e.g. `?timeout=10s`, is
//!   ignored), `GET /healthz`, `GET /readyz`;
//! - plain HTTP (`--metrics-listen`): `GET /metrics`, `/healthz`, `/readyz`.
//!
//! `/healthz` answers 200 while the process runs; `/readyz` only once the TLS material
//! is loaded and the ServiceAccount cache has synced. Every decodable review gets HTTP
//! 200 with the verdict inside; a body that is not an `AdmissionReview` (or larger than
//! [`MAX_BODY_BYTES`]) gets HTTP 400 with a message.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use axum_server::tls_rustls::RustlsConfig;
use keyless_tls::reload::{Reload, TlsFiles, spawn_reloader, wait_for_files};

use crate::admission::Admitter;

/// Largest review body accepted: etcd stores objects up to 1.5 MiB, and a review carries
/// one pod (no old object on CREATE) plus a small envelope.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Readiness inputs.
#[derive(Debug, Default)]
pub struct Health {
    tls_ready: AtomicBool,
}

impl Health {
    /// Marks the TLS material as loaded.
    pub fn set_tls_ready(&self) {
        self.tls_ready.store(true, Ordering::Release);
    }
}

#[derive(Clone)]
struct AppState {
    admitter: Arc<Admitter>,
    health: Arc<Health>,
}

impl AppState {
    fn not_ready(&self) -> Option<&'static str> {
        if !self.health.tls_ready.load(Ordering::Acquire) {
            Some("TLS certificate not loaded yet")
        } else if !self.admitter.lookup.is_ready() {
            Some("service account cache not synced yet")
        } else {
            None
        }
    }
}

/// The HTTPS router.
pub fn webhook_router(admitter: Arc<Admitter>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/mutate-v1-pod", post(mutate_pod))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { admitter, health })
}

/// The plain-HTTP metrics and health router.
pub fn metrics_router(admitter: Arc<Admitter>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { admitter, health })
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

async fn mutate_pod(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        state.admitter.metrics.malformed_review();
        bad_request(format!(
            "the request body is larger than the {MAX_BODY_BYTES} bytes an AdmissionReview can be"
        ))
    };
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    match state.admitter.review(&bytes).await {
        Ok(review) => axum::Json(review).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.not_ready() {
        None => "ok\n".into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.admitter.metrics.render(),
    )
        .into_response()
}

/// Where and how to serve.
#[derive(Debug)]
pub struct Listeners {
    /// Bound HTTPS listener.
    pub webhook: TcpListener,
    /// Bound plain-HTTP listener.
    pub metrics: TcpListener,
    /// Certificate files.
    pub tls: TlsFiles,
    /// How often the files are checked for changes.
    pub tls_poll: Duration,
    /// Connection limits of both listeners.
    pub limits: keyless_http::ConnectionLimits,
}

/// Runs both servers until `shutdown` resolves: metrics and health at once; HTTPS once
/// the certificate loads. Calls `on_ready` (with the two bound addresses) once the
/// webhook is ready (TLS loaded, cache synced).
pub async fn run(
    admitter: Arc<Admitter>,
    listeners: Listeners,
    on_ready: impl FnOnce(SocketAddr, SocketAddr) + Send,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let webhook_addr = listeners.webhook.local_addr()?;
    let metrics_addr = listeners.metrics.local_addr()?;
    let metrics_app = metrics_router(admitter.clone(), health.clone());
    let metrics_task = tokio::spawn(keyless_http::serve_plain(
        listeners.metrics,
        metrics_app,
        listeners.limits,
        stopped(stop_rx.clone()),
    ));

    let loaded = tokio::select! {
        loaded = wait_for_files(&listeners.tls, listeners.tls_poll) => Some(loaded),
        () = stopped(stop_rx.clone()) => None,
    };
    let Some((pem, config)) = loaded else {
        let _ = metrics_task.await;
        return Ok(());
    };
    health.set_tls_ready();
    let rustls = RustlsConfig::from_config(config);
    // New connections get a reloaded certificate; open ones keep theirs.
    let reloader = spawn_reloader(listeners.tls.clone(), pem, listeners.tls_poll, {
        let (rustls, metrics) = (rustls.clone(), admitter.metrics.clone());
        move |reload| match reload {
            Reload::Loaded(config) => {
                rustls.reload_from_config(config);
                metrics.tls_reload(true);
            }
            Reload::Failed(_) => metrics.tls_reload(false),
        }
    });

    let app = webhook_router(admitter.clone(), health.clone());
    // The same limits as `keyless serve`: a pod that trickles bytes at the webhook
    // must not hold it (with failurePolicy Fail, a stuck webhook blocks pod creation).
    let server_task = tokio::spawn(keyless_http::serve_tls(
        listeners.webhook,
        rustls,
        app,
        listeners.limits,
        stopped(stop_rx.clone()),
    ));

    // Ready once the cache has synced (or never, if shut down first).
    let lookup = admitter.lookup.clone();
    let wait_synced = async move {
        while !lookup.is_ready() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = wait_synced => on_ready(webhook_addr, metrics_addr),
        () = stopped(stop_rx.clone()) => {}
    }

    let served = server_task.await;
    reloader.abort();
    let _ = metrics_task.await;
    match served {
        Ok(result) => result,
        Err(e) => Err(std::io::Error::other(e)),
    }
}
