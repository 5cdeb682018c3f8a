//! SQLite backend: the embedded default.
//!
//! Writes go through a pool of exactly one connection, so write transactions are
//! serialised by construction (no `SQLITE_BUSY` retries, no lost updates); reads use a
//! separate pool and see committed data thanks to WAL mode.
//!
//! This module opens the database and runs the migrations (`migrations/sqlite`); the
//! queries live in one module per aggregate.

mod credentials;
mod files;
mod identities;
mod issuers;
mod keys;
mod rbac;
mod rows;
mod secrets;
mod signins;
mod tenancy;
mod vaults;

use std::str::FromStr;
use std::time::Duration;

use keyless_store::{FederatedCredentialRecord, StoreError};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{Result, database};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
}

/// The writer connection's page cache (`PRAGMA cache_size`, negative: KiB): 32 MiB.
const WRITER_CACHE: &str = "-32768";

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self::connect(url).await?)
    }

    async fn connect(url: &str) -> Result<Self> {
        let in_memory = url.contains(":memory:");
        let parsed = SqliteConnectOptions::from_str(url)?;
        if !in_memory {
            files::prepare(parsed.get_filename())?;
        }
        let opts = parsed
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .synchronous(SqliteSynchronous::Normal);
        let opts = if in_memory {
            opts
        } else {
            opts.journal_mode(SqliteJournalMode::Wal)
        };
        // The writer's page cache holds the indexes a write descends (identities by
        // principal, client id and name; credentials; assignments): at 100,000
        // identities SQLite's default 2 MiB misses on most inserts and a write costs
        // half again as much as at 1,000 (issue 13). It grows only as pages are used.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone().pragma("cache_size", WRITER_CACHE))
            .await?;
        MIGRATOR.run(&writer).await?;
        // An in-memory database exists per connection: share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts.read_only(true))
                .await?
        };
        Ok(Self { reader, writer })
    }

    /// Opens the database file `path`.
    pub async fn open_file(path: &std::path::Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new().filename(path);
        let url = format!("sqlite://{}", opts.get_filename().display());
        Self::open(&url).await
    }
}

crate::store_impl::impl_store!(SqliteStore);

async fn change_feed(
    _db: &SqliteStore,
) -> Result<Option<tokio::sync::mpsc::Receiver<keyless_store::Change>>> {
    // One process owns an SQLite database: its own writes refresh its view.
    Ok(None)
}

async fn may_have_missed_changes(_db: &SqliteStore) -> Result<bool> {
    // No feed: another process writing the file (`keyless admin`) is seen by resyncing.
    Ok(true)
}

async fn ping(db: &SqliteStore) -> Result<()> {
    sqlx::query("SELECT 1").execute(&db.reader).await?;
    Ok(())
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A unique violation is `Conflict(what)`; anything else a database error.
fn conflict_or(e: sqlx::Error, what: &str) -> StoreError {
    if unique_violation(&e) {
        StoreError::Conflict(what.to_string())
    } else {
        database(e)
    }
}

/// A foreign-key violation is `ParentNotFound(parent)`; anything else a database error.
fn parent_or(e: sqlx::Error, parent: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::ParentNotFound(parent.to_string())
        }
        _ => database(e),
    }
}

fn fic_conflict(e: sqlx::Error, fc: &FederatedCredentialRecord) -> StoreError {
    if unique_violation(&e) {
        StoreError::Conflict(format!(
            "a federated identity credential with issuer '{}' and subject '{}' already exists on this identity",
            fc.issuer,
            fc.subject.as_deref().unwrap_or("")
        ))
    } else {
        database(e)
    }
}
