//! Integration tests: each test boots the real `keyless serve` binary on loopback with
//! its own data directory and drives it over HTTPS like a user's client would.
//!
//! One test binary (link time matters), one module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod testkit;

mod arm_discovery;
mod bad_input;
mod ci_issuers;
mod cli;
mod console;
mod credential;
mod disclosure;
mod escalation;
mod fake_apiserver;
mod federation;
mod federation_security;
mod imds;
mod issuer_fetching;
mod management;
mod paging;
mod rate_limits;
mod rbac;
mod replicas;
mod rotation;
mod scopes;
mod serve;
mod signin_bounds;
mod slowloris;
mod terminal;
mod token_service;
mod vault;
mod webhook;
