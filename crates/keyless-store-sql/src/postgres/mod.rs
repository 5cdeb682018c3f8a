//! PostgreSQL backend: one database shared by several `keyless serve` replicas.
//!
//! It is held to exactly the behaviour of the SQLite backend by the
//! [`conformance`](keyless_store::conformance) suite. What differs is how that behaviour survives
//! concurrent writers in *different processes*, where SQLite relies on its single writer
//! connection:
//!
//! * **Transactions.** Every method is one transaction at READ COMMITTED (each statement
//!   sees what committed before it started). Races are excluded with explicit locks, not
//!   with SERIALIZABLE (which would push retry loops into every method):
//!   - a write under a parent first locks the parent row, which also proves the parent
//!     exists: identities lock their resource group, federated credentials their
//!     identity, secrets their vault, resource groups their subscription (`FOR NO KEY
//!     UPDATE`: it serialises the writers under one parent but not the foreign-key checks
//!     of other tables). So the credential count limit and the check-then-write of every
//!     upsert are race-free, and a concurrent upsert of the same name updates the row the
//!     first one created instead of failing;
//!   - the row an upsert updates or a delete removes is locked when it is read
//!     (`FOR NO KEY UPDATE` / `FOR UPDATE`), so it cannot vanish or change in between;
//!   - trusted issuers have no parent row: a transaction-scoped advisory lock on
//!     (tenant, name) serialises writers of one registration;
//!   - deletes that cascade into role assignments (resource group, identity, vault) take
//!     `SHARE ROW EXCLUSIVE` on `role_assignments`, so no assignment can be added at a
//!     scope (or for a principal) while it is being deleted: the cascade is atomic with
//!     respect to every other write, as with SQLite.
//!
//!   Uniqueness rules are enforced by unique indexes, never by a read: the locks above
//!   only decide *which* of two writers sees the other's row.
//! * **Names.** Case-insensitive names (SQLite `COLLATE NOCASE`) have a generated
//!   `*_key` column, `lower(name)` under the "C" collation (A-Z only, like NOCASE); keys,
//!   unique rules and foreign keys use it, and the column itself keeps the first casing.
//!   Queries bind `fold(name)`, which folds identically. Every text column is
//!   `COLLATE "C"`, so sorting and comparison are bytewise whatever the database locale.
//! * **Errors.** A unique violation is [`StoreError::Conflict`], a foreign-key violation
//!   [`StoreError::ParentNotFound`], anything else (including an unreachable database)
//!   [`StoreError::Database`].
//! * **Change feed.** Every write that changes something runs
//!   `pg_notify('keyless_changes', <change>)` inside its transaction (the change's key,
//!   [`Change::encode`], e.g. `identity:<sub>/<group>/<name>`), so the notification
//!   is delivered exactly when the write commits (never for a rolled-back write). See
//!   [`feed`] for the listener. Sign-in log appends do not notify: the log is not part of
//!   any replica's in-memory view, and notifying on it would make every replica reload
//!   after every batch of token requests.
//! * **Write generations.** A trigger on every counted table (all but the sign-in log)
//!   gives each changing transaction one number from the `keyless_generation` sequence,
//!   and its notifications carry it (`g<n>|<change>`). The feed records which numbers it
//!   was told, so the periodic resync reloads only when one was missed (a hand edit, an
//!   older replica): see [`generation`].
//! * **Pool.** At most [`MAX_CONNECTIONS`] connections per process; acquiring one waits
//!   at most [`ACQUIRE_TIMEOUT`], so while the database is down every call fails within
//!   that time with [`StoreError::Database`] (connection attempts are retried inside that
//!   window). Connections are checked before use, so a restarted server is picked up by
//!   itself. A connection that dies silently *during* a query (no RST) is not bounded by
//!   the pool; callers that must answer quickly should put their own deadline around
//!   store calls.
//! * **Migrations** (`migrations/postgres`, numbered as SQLite's) run under sqlx's
//!   migrator, which holds a session advisory lock for the database while it works, so
//!   replicas starting at once apply each migration exactly once. The role needs to be
//!   able to create tables in the `public` schema (PostgreSQL ≥ 15 grants that only to
//!   the database owner by default). No extension or superuser right is needed.
//!
//! PostgreSQL 12 or newer (generated columns).
//!
//! This module connects and migrates; the queries live in one module per aggregate,
//! the row locks in [`locks`] and [`rbac`], the listener in [`feed`].

mod credentials;
pub mod feed;
pub mod generation;
mod identities;
mod issuers;
mod keys;
mod locks;
mod rbac;
mod rows;
mod secrets;
mod signins;
mod tenancy;
mod vaults;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyless_store::{Change, FederatedCredentialRecord, StoreError, UpsertOutcome};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::{Result, database};
use generation::Generations;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Most connections one store (one process) opens.
pub const MAX_CONNECTIONS: u32 = 10;
/// Longest wait for a pooled connection, including connection attempts while the server
/// is unreachable: the bound on how long a call takes to fail when the database is down.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The bookkeeping of the feed the periodic resync consults (the most recently started
/// one; a store normally has one).
type FeedGenerations = Arc<Mutex<Option<Arc<Mutex<Generations>>>>>;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    options: PgConnectOptions,
    generations: FeedGenerations,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=...`) and
    /// brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(database)?;
        Self::open_with(options).await
    }

    /// Connects with explicit options and brings the schema up to date.
    pub async fn open_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        Ok(Self::connect(options).await?)
    }

    async fn connect(options: PgConnectOptions) -> Result<Self> {
        let options = if options.get_application_name().is_none() {
            options.application_name("keyless")
        } else {
            options
        };
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            options,
            generations: FeedGenerations::default(),
        })
    }

    /// Closes every pooled connection (a change feed keeps its own until its receiver is
    /// dropped).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

crate::store_impl::impl_store!(PgStore);

async fn change_feed(
    db: &PgStore,
) -> Result<Option<tokio::sync::mpsc::Receiver<keyless_store::Change>>> {
    let options = db.options.clone().application_name("keyless-listener");
    let generations = Arc::new(Mutex::new(Generations::default()));
    if let Ok(mut current) = db.generations.lock() {
        *current = Some(generations.clone());
    }
    Ok(Some(feed::spawn(options, ACQUIRE_TIMEOUT, generations)))
}

/// The sequence's current value: the highest write generation taken so far (0 before
/// the first).
async fn current_generation<'e, E>(executor: E) -> Result<u64, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let n: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM keyless_generation",
    )
    .fetch_one(executor)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn may_have_missed_changes(db: &PgStore) -> Result<bool> {
    let feed = match db.generations.lock() {
        Ok(current) => current.clone(),
        Err(_) => None,
    };
    let Some(feed) = feed else {
        return Ok(true);
    };
    let now = current_generation(&db.pool).await?;
    Ok(match feed.lock() {
        Ok(mut g) => g.check(now),
        Err(_) => true,
    })
}

async fn ping(db: &PgStore) -> Result<()> {
    sqlx::query("SELECT 1").execute(&db.pool).await?;
    Ok(())
}

/// PostgreSQL text cannot hold U+0000 (SQLite's can). The sign-in log records what
/// callers sent (client id, assertion claims, error text), so one request with a NUL in
/// it would fail its whole batch, deterministically, on every retry: an audit-log hole
/// anyone could open. There, NUL is stored as U+FFFD. In any other write a NUL fails
/// the write with [`StoreError::Database`]: input validation should refuse control
/// characters before they reach the store.
fn storable(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Folds a name the way the generated `*_key` columns do (`lower()` under "C": A-Z only).
fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

type Tx = Transaction<'static, Postgres>;

/// Queues the change notification; PostgreSQL delivers it if and when `tx` commits.
/// The payload names what changed ([`Change::encode`]), so replicas can refresh just that,
/// after the transaction's write generation (`g<n>|`, see [`generation`]) when it changed
/// a counted row.
async fn notify(tx: &mut Tx, change: &Change) -> Result<()> {
    sqlx::query(
        "SELECT pg_notify($1, coalesce('g' || nullif(current_setting('keyless.generation', true), '') || '|', '') || $2)",
    )
        .bind(feed::CHANNEL)
        .bind(change.encode())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Maps a write's error: unique violation → `Conflict(conflict)`, foreign-key violation →
/// `ParentNotFound(parent)`, anything else → `Database`.
fn write_error(e: sqlx::Error, conflict: &str, parent: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(conflict.to_string())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::ParentNotFound(parent.to_string())
        }
        _ => database(e),
    }
}

fn fic_conflict(e: sqlx::Error, fc: &FederatedCredentialRecord) -> StoreError {
    write_error(
        e,
        &format!(
            "a federated identity credential with issuer '{}' and subject '{}' already exists on this identity",
            fc.issuer,
            fc.subject.as_deref().unwrap_or("")
        ),
        "identity",
    )
}

fn outcome(existed: bool) -> UpsertOutcome {
    if existed {
        UpsertOutcome::Updated
    } else {
        UpsertOutcome::Created
    }
}
