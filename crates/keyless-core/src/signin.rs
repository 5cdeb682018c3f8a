//! The sign-in log: every token request is recorded without slowing the hot path. The
//! handler pushes onto a bounded channel (never blocks; overflow is counted as
//! dropped); a background task writes batches to the store.
//!
//! The log is bounded twice over (issue 12). The writer folds identical failures (same
//! tenant, client id, address and error code) arriving within
//! [`LogSettings::aggregation_window`] into one row with a `count`, so a client repeating
//! a bad request adds one row per window, not one per request; successes are never
//! folded. Housekeeping ([`enforce_bounds`]) deletes rows past the retention and the
//! oldest rows beyond the row cap.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyless_store::{SignInRecord, Store, StoreError};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Most records waiting to be written.
pub const CAPACITY: usize = 10_000;
const BATCH: usize = 500;
/// How long the writer lets records gather after the first of a batch arrives. Under
/// load this turns one transaction (and one hand-off to the database's thread) per
/// exchange into one per batch, which profiling showed to be a fifth of an exchange's
/// CPU; when idle it only delays a row's visibility by this much.
const LINGER: Duration = Duration::from_millis(10);
const RETRIES: u32 = 14;
// Most distinct failures folded at once: beyond it a failure is written on its own, so
// memory stays bounded whatever an attacker varies.
const MAX_OPEN: usize = CAPACITY;

/// Bounds of the sign-in log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// Rows older than this many seconds are deleted by housekeeping.
    pub retention_secs: i64,
    /// Most rows kept (all tenants); housekeeping deletes the oldest beyond it.
    pub max_rows: u64,
    /// Identical failures within this window become one row; it is also how long a
    /// failure may wait before it is visible in the log.
    pub aggregation_window: Duration,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            retention_secs: 30 * 86_400,
            max_rows: 1_000_000,
            aggregation_window: Duration::from_secs(3),
        }
    }
}

/// Rows deleted per statement by housekeeping: small enough that the database's
/// writer is held for milliseconds, so sign-in rows and management writes interleave
/// with a large purge instead of waiting behind it.
pub const DELETE_CHUNK: u32 = 5_000;

/// Applies the retention and the row cap, [`DELETE_CHUNK`] rows at a time; returns the
/// rows deleted by each. Run by housekeeping, never by a request.
pub async fn enforce_bounds(
    store: &dyn Store,
    now: i64,
    settings: &LogSettings,
) -> Result<(u64, u64), StoreError> {
    let cutoff = now.saturating_sub(settings.retention_secs);
    let expired = in_chunks(|| store.delete_signins_before(cutoff, DELETE_CHUNK)).await?;
    let trimmed = in_chunks(|| store.trim_signins(settings.max_rows, DELETE_CHUNK)).await?;
    Ok((expired, trimmed))
}

/// Repeats a chunked delete until a chunk comes back short; returns the total.
async fn in_chunks<F, Fut>(mut delete: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let n = delete().await?;
        total += n;
        if n < u64::from(DELETE_CHUNK) {
            return Ok(total);
        }
        // Let queued writers (sign-in batches, management writes) in between chunks.
        tokio::task::yield_now().await;
    }
}

/// Handle used by request handlers.
#[derive(Debug)]
pub struct SignInLog {
    tx: mpsc::Sender<SignInRecord>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    // Records settled (written or dropped) so far, for those who must wait for the log
    // to catch up: the writer is asynchronous.
    settled: Arc<watch::Sender<u64>>,
}

impl SignInLog {
    /// Starts the writer task on the current runtime; identical failures within
    /// `aggregation_window` are written as one row.
    pub fn start(store: Arc<dyn Store>, aggregation_window: Duration) -> SignInLog {
        let (tx, rx) = mpsc::channel::<SignInRecord>(CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let settled = Arc::new(watch::Sender::new(0u64));
        let writer = Writer {
            store,
            window: aggregation_window,
            batch: Vec::with_capacity(BATCH),
            open: HashMap::new(),
            order: VecDeque::new(),
            dropped: dropped.clone(),
            written: written.clone(),
            settled: settled.clone(),
        };
        tokio::spawn(writer.run(rx));
        SignInLog {
            tx,
            dropped,
            written,
            settled,
        }
    }

    /// Queues a record; never waits.
    pub fn record(&self, r: SignInRecord) {
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.settled.send_modify(|v| *v += 1);
        }
    }

    /// Waits until at least `n` records queued since start have been written or
    /// dropped. The log is written in the background; whoever must read what was
    /// logged (a shutdown path, a test) awaits this instead of sleeping.
    pub async fn settled(&self, n: u64) {
        let mut rx = self.settled.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = rx.wait_for(|v| *v >= n).await;
    }

    /// Records lost to overflow or write failures.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records written (a row standing for several requests counts each).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// What makes two failures "the same" for folding.
type FailureKey = (String, String, Option<String>, Option<u32>);

/// The background writer: owns the channel's receiving end and the folded failures.
struct Writer {
    store: Arc<dyn Store>,
    window: Duration,
    /// Rows ready to be written.
    batch: Vec<SignInRecord>,
    /// Failures being folded, by key.
    open: HashMap<FailureKey, SignInRecord>,
    /// When each open failure closes, oldest first (the window is fixed, so opening
    /// order is closing order).
    order: VecDeque<(Instant, FailureKey)>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    settled: Arc<watch::Sender<u64>>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<SignInRecord>) {
        loop {
            // Wait for a record, or for the oldest folded failure to close.
            let next = match self.order.front() {
                None => rx.recv().await,
                Some((deadline, _)) => match tokio::time::timeout_at(*deadline, rx.recv()).await {
                    Ok(next) => next,
                    Err(_elapsed) => {
                        self.close(false);
                        self.flush().await;
                        continue;
                    }
                },
            };
            let Some(first) = next else { break };
            self.take(first);
            tokio::time::sleep(LINGER).await;
            for _ in 1..BATCH {
                match rx.try_recv() {
                    Ok(r) => self.take(r),
                    Err(_) => break,
                }
            }
            self.close(false);
            self.flush().await;
        }
        // Shutting down: nothing more can be folded.
        self.close(true);
        self.flush().await;
    }

    fn take(&mut self, r: SignInRecord) {
        if r.success {
            self.batch.push(r);
            return;
        }
        let key = (
            r.tenant_id.clone(),
            r.client_id.clone(),
            r.client_ip.clone(),
            r.error_code,
        );
        if let Some(open) = self.open.get_mut(&key) {
            open.count = open.count.saturating_add(r.count.max(1));
        } else if self.open.len() < MAX_OPEN {
            self.order
                .push_back((Instant::now() + self.window, key.clone()));
            self.open.insert(key, r);
        } else {
            self.batch.push(r);
        }
    }

    /// Moves folded failures whose window has ended (all of them with `all`) to the
    /// batch.
    fn close(&mut self, all: bool) {
        let now = Instant::now();
        while let Some((deadline, _)) = self.order.front() {
            if !all && *deadline > now {
                break;
            }
            if let Some((_, key)) = self.order.pop_front()
                && let Some(r) = self.open.remove(&key)
            {
                self.batch.push(r);
            }
        }
    }

    async fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let n: u64 = self
            .batch
            .iter()
            .map(|r| u64::try_from(r.count).unwrap_or(1))
            .sum();
        // While the database is unreachable the batch is retried with backoff and new
        // records wait in the channel; only after about five minutes of failures is
        // the batch counted as dropped.
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            match self.store.insert_signins(&self.batch).await {
                Ok(()) => {
                    self.written.fetch_add(n, Ordering::Relaxed);
                    self.settled.send_modify(|v| *v += n);
                    break;
                }
                Err(e) if attempt < RETRIES => {
                    attempt += 1;
                    tracing::warn!(error = %e, records = n, attempt, "sign-in log write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::warn!(error = %e, records = n, "sign-in log write failed; records dropped");
                    self.dropped.fetch_add(n, Ordering::Relaxed);
                    self.settled.send_modify(|v| *v += n);
                    break;
                }
            }
        }
        self.batch.clear();
    }
}
