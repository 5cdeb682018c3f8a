//! Keyless persistence: the [`Store`] trait, the records it holds, and its two
//! implementations: [`sqlite`] (the zero-setup default) and [`postgres`] (one database
//! shared by several replicas). Both are checked by the same [`conformance`] suite.
//!
//! The store is the durable source of truth; the domain keeps an in-memory view of
//! what the hot path needs and reloads it from here after writes.
#![warn(missing_docs)]

pub mod conformance;
mod error;
pub mod postgres;
mod records;
mod row_decoding;
pub mod sqlite;
mod store;

pub use error::StoreError;
pub use records::*;
pub use store::{Store, UpsertOutcome};
