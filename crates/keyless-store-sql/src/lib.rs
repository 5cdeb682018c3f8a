//! Keyless storage backends, both implementing [`keyless_store::Store`] and held to the
//! same behaviour by [`keyless_store::conformance`]:
//!
//! * [`sqlite`]: the zero-setup default, one process owning one database file;
//! * [`postgres`]: one database shared by several `keyless serve` replicas.
//!
//! Each backend is split by aggregate (tenancy, identities, federated credentials,
//! trusted issuers, RBAC, signing keys, sign-ins, vaults, secrets), with the connection,
//! migrations and (PostgreSQL) change feed in its root module. The migrations live in
//! `migrations/<backend>` and are compiled in.
#![warn(missing_docs)]

mod error;
pub mod postgres;
mod row_decoding;
pub mod sqlite;
mod store_impl;
