//! The sign-in log: every token request is recorded without slowing the hot path. The
//! handler pushes onto a bounded channel (never blocks; overflow is counted as
//! dropped); a background task writes batches to the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keyless_store::{SignInRecord, Store};
use tokio::sync::{mpsc, watch};

/// Most records waiting to be written.
pub const CAPACITY: usize = 10_000;
const BATCH: usize = 500;
const RETRIES: u32 = 14;

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
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> SignInLog {
        let (tx, mut rx) = mpsc::channel::<SignInRecord>(CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let settled = Arc::new(watch::Sender::new(0u64));
        let (d, w, s) = (dropped.clone(), written.clone(), settled.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let n = batch.len() as u64;
                // While the database is unreachable the batch is retried with backoff
                // and new records wait in the channel; only after about five minutes of
                // failures is the batch counted as dropped.
                let mut delay = std::time::Duration::from_millis(500);
                let mut attempt = 0;
                loop {
                    match store.insert_signins(&batch).await {
                        Ok(()) => {
                            w.fetch_add(n, Ordering::Relaxed);
                            s.send_modify(|v| *v += n);
                            break;
                        }
                        Err(e) if attempt < RETRIES => {
                            attempt += 1;
                            tracing::warn!(error = %e, records = n, attempt, "sign-in log write failed; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(std::time::Duration::from_secs(30));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, records = n, "sign-in log write failed; records dropped");
                            d.fetch_add(n, Ordering::Relaxed);
                            s.send_modify(|v| *v += n);
                            break;
                        }
                    }
                }
                batch.clear();
            }
        });
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

    /// Records written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}
