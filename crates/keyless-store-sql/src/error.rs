//! The backends' internal error: a [`StoreError`] that `?` can also build from a driver
//! error. `keyless-store` names no driver, so it cannot convert `sqlx::Error` itself, and
//! the orphan rule keeps this crate from adding that conversion to `StoreError`; the
//! backends' functions return this type instead and the `Store` impl unwraps it.

use keyless_store::{DatabaseError, StoreError};

/// A [`StoreError`] on its way out of a backend.
#[derive(Debug)]
pub(crate) struct Error(StoreError);

/// The backends' result type.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self(e)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self(database(e))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self(StoreError::Migration(DatabaseError::new(e)))
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        e.0
    }
}

/// Any driver error the backend does not map to something more specific: the database
/// is unavailable or refused the statement.
pub(crate) fn database(e: sqlx::Error) -> StoreError {
    StoreError::Database(DatabaseError::new(e))
}
