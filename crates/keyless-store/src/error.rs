//! Storage errors, in terms the domain can act on.

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
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}
