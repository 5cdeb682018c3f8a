//! The change feed: `LISTEN keyless_changes` on a dedicated connection, forwarded as
//! [`Change`]s.
//!
//! Every write transaction of [`super::PgStore`] runs `pg_notify('keyless_changes', ...)`
//! with the change's key as payload ([`Change::encode`]), which PostgreSQL delivers when
//! (and only if) the transaction commits. A background task per feed holds a
//! [`PgListener`] and forwards each payload, parsed ([`Change::parse`]: anything unknown
//! or oversized is [`Change::Everything`]), into a channel of [`QUEUE`] places. When the
//! consumer falls behind and the channel is full, further notifications are dropped and
//! one [`Change::Everything`] is queued as soon as there is room: the consumer reloads
//! once instead of the task buffering without bound.
//!
//! The task sends [`Change::Everything`] every time it starts listening: right after the
//! first `LISTEN` (anything committed between the caller's initial load and that moment
//! would otherwise be missed) and after every reconnection (notifications are not queued
//! for a disconnected listener). A lost connection is re-established with exponential
//! backoff ([`MIN_BACKOFF`] to [`MAX_BACKOFF`]). A connection that goes silent without an
//! error (a network partition: no RST, no FIN) is caught by a heartbeat: after
//! [`HEARTBEAT`] without a notification the task runs `SELECT 1` on the listening
//! connection and reconnects when that does not answer within [`PING_TIMEOUT`].
//!
//! The process that writes also receives its own notifications (its listener is just
//! another session); that costs one redundant refresh of the key it changed.
//!
//! Each payload's write generation (`g<n>|`, see [`super::generation`]) is recorded in
//! the feed's [`Generations`]: right after every `LISTEN` the task reads the sequence on
//! the listening connection and starts counting from there, and while it is not
//! listening every check asks for a reload.
//!
//! The task ends when the receiver is dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyless_store::Change;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::generation::{Generations, split_payload};

/// The notification channel every write notifies.
pub(super) const CHANNEL: &str = "keyless_changes";

/// First delay before reconnecting a lost listener; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Quiet time after which the listening connection is checked with a round trip.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long that check may take before the connection is considered dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Changes queued for a slow consumer before the feed falls back to one
/// [`Change::Everything`].
pub const QUEUE: usize = 1024;

/// Starts the listener task and returns the change receiver.
pub(super) fn spawn(
    options: PgConnectOptions,
    connect_timeout: Duration,
    generations: Arc<Mutex<Generations>>,
) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        run(options, connect_timeout, &tx, &generations).await;
        record(&generations, Generations::stopped);
    });
    rx
}

/// Updates the feed's bookkeeping (never held across an await).
fn record(generations: &Mutex<Generations>, update: impl FnOnce(&mut Generations)) {
    if let Ok(mut g) = generations.lock() {
        update(&mut g);
    }
}

/// Why [`pump`] returned.
enum Stop {
    /// The receiver is gone: the task ends.
    Closed,
    /// The connection is lost: reconnect.
    Lost(String),
}

async fn run(
    options: PgConnectOptions,
    connect_timeout: Duration,
    tx: &mpsc::Sender<Change>,
    generations: &Mutex<Generations>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen(&options, connect_timeout).await {
            Ok((mut listener, now)) => {
                backoff = MIN_BACKOFF;
                record(generations, |g| g.listening(now));
                // Changes committed while nobody listened are unknown: reload once. This
                // one must arrive, so it waits for room.
                if tx.send(Change::Everything).await.is_err() {
                    return;
                }
                let stop = pump(&mut listener, tx, generations).await;
                record(generations, Generations::stopped);
                match stop {
                    Stop::Closed => return,
                    Stop::Lost(why) => {
                        tracing::warn!(error = %why, "change feed: connection lost; reconnecting");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "change feed: cannot listen");
            }
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects a fresh listener (on its own one-connection pool, so reconnecting never
/// competes with the store's pool), subscribes, and reads the write generation as it
/// stands once the subscription is in effect.
async fn listen(
    options: &PgConnectOptions,
    connect_timeout: Duration,
) -> Result<(PgListener, u64), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(connect_timeout)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // Reconnection is done here, explicitly (a new listener), so that a reconnection is
    // always followed by a signal; the listener never reconnects by itself.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    let now = super::current_generation(&mut listener).await?;
    Ok((listener, now))
}

/// Forwards notifications until the connection is lost or the receiver is dropped.
async fn pump(
    listener: &mut PgListener,
    tx: &mpsc::Sender<Change>,
    generations: &Mutex<Generations>,
) -> Stop {
    // Set when a change could not be queued: one `Everything` is owed to the consumer
    // and sent as soon as there is room; changes arriving meanwhile are covered by it.
    let mut owed = false;
    loop {
        // `try_recv` only waits for the next message here (the listener never reconnects
        // by itself), which sqlx keeps cancel-safe, so a timeout, a closed receiver or
        // room in the channel may interrupt it.
        let next = tokio::select! {
            _ = tx.closed() => return Stop::Closed,
            permit = tx.reserve(), if owed => {
                match permit {
                    Ok(permit) => {
                        permit.send(Change::Everything);
                        owed = false;
                        continue;
                    }
                    Err(_) => return Stop::Closed,
                }
            }
            next = tokio::time::timeout(HEARTBEAT, listener.try_recv()) => next,
        };
        match next {
            Ok(Ok(Some(notification))) => {
                let (generation, change) = split_payload(notification.payload());
                if let Some(n) = generation {
                    // Told, even when the change itself is covered by an owed reload.
                    record(generations, |g| g.told(n));
                }
                if owed {
                    continue;
                }
                match tx.try_send(Change::parse(change)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => owed = true,
                    Err(TrySendError::Closed(_)) => return Stop::Closed,
                }
            }
            Ok(Ok(None)) => return Stop::Lost("connection closed".into()),
            Ok(Err(e)) => return Stop::Lost(e.to_string()),
            Err(_quiet) => {
                let ping = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(PING_TIMEOUT, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Stop::Lost(e.to_string()),
                    Err(_) => return Stop::Lost("no answer to the heartbeat".into()),
                }
            }
        }
    }
}
