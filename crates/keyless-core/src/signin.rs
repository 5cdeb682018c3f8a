//! The sign-in log: every token request is recorded without slowing the hot path. The
//! handler pushes onto a bounded channel (never blocks; overflow is counted as
//! dropped); a background task writes batches to the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keyless_store::{SignInRecord, Store};
use tokio::sync::mpsc;

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
}

impl SignInLog {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> SignInLog {
        let (tx, mut rx) = mpsc::channel::<SignInRecord>(CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let (d, w) = (dropped.clone(), written.clone());
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
        }
    }

    /// Queues a record; never waits.
    pub fn record(&self, r: SignInRecord) {
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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
