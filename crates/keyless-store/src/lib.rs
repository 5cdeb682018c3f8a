//! Keyless persistence contract: the [`Store`] trait, the records it holds, its errors,
//! and the [`conformance`] suite every implementation must pass. The implementations
//! (SQLite, the zero-setup default, and PostgreSQL, one database shared by several
//! replicas) live in the `keyless-store-sql` crate; this crate knows no database driver.
//!
//! The store is the durable source of truth; the domain keeps an in-memory view of
//! what the hot path needs and refreshes it from here after writes, one
//! [`Change`] at a time.
#![warn(missing_docs)]

mod change;
pub mod conformance;
pub mod deadline;
mod error;
mod records;
pub mod scope;
mod store;

pub use change::{Change, MAX_PAYLOAD};
pub use error::{DatabaseError, StoreError};
pub use records::*;
pub use store::{Store, UpsertOutcome};
