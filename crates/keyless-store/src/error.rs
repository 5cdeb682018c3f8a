//! Storage errors, in terms the domain can act on.
//!
//! No database driver's types appear here: a backend turns its driver's errors into
//! [`StoreError::Database`] (or [`StoreError::Migration`]) with the driver error kept,
//! opaque, as the source, so callers can log it but never depend on the driver.

use std::error::Error;
use std::fmt;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The parent object of a write does not exist (it may have been deleted
    /// concurrently).
    #[error("{0} not found")]
    ParentNotFound(String),
    /// A uniqueness rule would be broken; the text names the rule.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A configured count limit would be exceeded.
    #[error("limit of {limit} {what} reached")]
    LimitExceeded {
        /// What is being counted.
        what: String,
        /// The configured limit.
        limit: u32,
    },
    /// A stored value could not be decoded (corrupt or foreign database).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database could not be reached or answered with an error. The domain treats
    /// this as "unavailable, retry later" (and may serve a last known state meanwhile).
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[source] DatabaseError),
}

/// An error reported by a backend's database driver, kept opaque: it displays as the
/// driver's error and exposes the driver's source chain, without naming the driver's
/// types in this crate's API.
pub struct DatabaseError(Box<dyn Error + Send + Sync + 'static>);

impl DatabaseError {
    /// Wraps a driver error.
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        Self(error.into())
    }

    /// The driver error, for callers that know the backend and want to inspect it.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for DatabaseError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}
