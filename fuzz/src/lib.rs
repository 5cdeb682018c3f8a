//! Fuzz targets of Keyless: one per parser family that takes bytes from outside.
//!
//! Every target is `targets::<name>::run(&[u8])`: it feeds the input to the real parsing
//! code (for the HTTP parsers, the real router, in process) and panics only when Keyless
//! misbehaves (a panic inside Keyless, a server error, a broken invariant). The AFL++
//! binaries in `src/bin/` and the replay tests (`tests/replay.rs`) call the same function.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a test harness: setup failures and findings are panics by design

pub mod request;
pub mod server;
pub mod targets;

/// Every target, by name (the names of `src/bin/*`, `corpus/*` and `regressions/*`).
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("token_form", targets::token_form::run),
    ("jws", targets::jws::run),
    ("jwks", targets::jwks::run),
    ("discovery", targets::discovery::run),
    ("expression", targets::expression::run),
    ("arm", targets::arm::run),
    ("vault", targets::vault::run),
    ("admission", targets::admission::run),
    ("kubeconfig", targets::kubeconfig::run),
];

/// Splits `data` at the first NUL byte: two inputs from one (the second is empty when
/// there is no NUL).
pub fn split2(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
