//! The domain's rules, exercised in process through the `Keyless` façade with a
//! manual clock, a temporary store and a fake issuer: no network, no sleeps, every
//! time-dependent rule driven by the clock. One test binary, one module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests: a failed unwrap is a failed test

mod harness;

mod assertion_times;
mod escalation;
mod explain;
mod incremental;
mod issuer_cache;
mod key_rotation;
mod matching;
mod rbac;
mod signin_log;
mod vault;
