//! Domain errors of the management plane. The HTTP layer maps [`ErrorKind`] to a status
//! and renders `code` and `message` in ARM's error shape.

use keyless_store::StoreError;

/// The class of a management failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or breaks a rule (HTTP 400).
    BadRequest,
    /// Missing or invalid credentials (HTTP 401).
    Unauthenticated,
    /// Authenticated, but no role grants the action (HTTP 403).
    Forbidden,
    /// The object, or its parent, does not exist — or belongs to another tenant (404).
    NotFound,
    /// A uniqueness rule or concurrent change prevents the write (HTTP 409).
    Conflict,
    /// The server failed (HTTP 500); details are logged, not returned.
    Internal,
    /// A dependency (the database) is unavailable for now (HTTP 503).
    Unavailable,
}

/// A management-plane error with an ARM error code and a message for the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ManagementError {
    /// Class of the failure.
    pub kind: ErrorKind,
    /// ARM error code, e.g. `ResourceGroupNotFound`.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

impl ManagementError {
    /// A new error.
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }
    /// 400 with a code.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }
    /// 404 with a code.
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }
    /// 409 with a code.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }
}

impl From<StoreError> for ManagementError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ParentNotFound(what) => Self::not_found(
                "ParentResourceNotFound",
                format!("The parent {what} was not found."),
            ),
            StoreError::Conflict(what) => Self::conflict("Conflict", what),
            StoreError::LimitExceeded { what, limit } => Self::bad_request(
                "BadRequest",
                format!(
                    "Too many {what}: the configured limit is {limit}. Delete one first or raise the limit."
                ),
            ),
            StoreError::Database(err) => {
                tracing::error!(error = %err, "database error");
                Self::new(
                    ErrorKind::Unavailable,
                    "ServiceUnavailable",
                    "The database is unavailable. Retry later.",
                )
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::new(
                    ErrorKind::Internal,
                    "InternalServerError",
                    "An internal error occurred.",
                )
            }
        }
    }
}
