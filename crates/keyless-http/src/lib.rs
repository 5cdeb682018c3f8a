//! Serving HTTP(S) under limits: what one client can hold of a Keyless process
//! (connections, and the time a connection may spend handshaking, sending a request
//! head or body, or idle), for `keyless serve` and the admission webhook alike.
//! See `docs/design/abuse.md`.
#![warn(missing_docs)]

pub mod limits;
pub mod serve;

pub use limits::{ConnectionLimits, address_key};
pub use serve::{serve_plain, serve_tls};
