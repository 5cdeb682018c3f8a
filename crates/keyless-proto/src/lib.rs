//! Wire types shared by the Keyless server, the `keyless` CLI and the credential
//! library, and the webhook. This crate does no IO: it only describes JSON and form
//! shapes exactly as the official Azure SDKs send and expect them, and the Prometheus
//! text format of `/metrics` ([`prometheus`]).
#![warn(missing_docs)]

pub mod arm;
pub mod cloud_metadata;
pub mod oauth;
pub mod oidc;
pub mod prometheus;
