//! Keyless HTTP adapters: the Entra-compatible token service, the ARM-compatible
//! management API, TLS, and the mapping of domain errors to each protocol's error
//! shape (one place per protocol).
#![warn(missing_docs)]

pub mod arm;
pub mod bearer;
pub mod errors;
pub mod issuer_fetch;
pub mod router;
pub mod serve;
pub mod sts;
pub mod throttle;
pub mod tls;
pub mod vault;

pub use keyless_http::limits;
pub use router::{AppState, build_router};
