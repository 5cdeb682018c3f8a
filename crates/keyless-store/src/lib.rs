//! Keyless persistence: the [`Store`] trait, the records it holds, and the SQLite
//! implementation (the zero-setup default). A PostgreSQL implementation is a second
//! `Store`, checked by the same [`conformance`] suite.
//!
//! The store is the durable source of truth; the domain keeps an in-memory view of
//! what the hot path needs and reloads it from here after writes.
#![warn(missing_docs)]

pub mod conformance;
mod error;
mod records;
pub mod sqlite;
mod store;

pub use error::StoreError;
pub use records::*;
pub use store::{Store, UpsertOutcome};
