//! Managed-identity endpoints for a pod: the process behind `keyless imds`.
//!
//! Applications that use `ManagedIdentityCredential`, `DefaultAzureCredential` on its
//! managed-identity path, `az login --identity` and tools that only know Azure's
//! instance metadata service never read a federated token file. This crate answers
//! them in the two protocols they speak, with tokens obtained by a workload identity
//! credential ([`keyless_credential::WorkloadIdentityCredential`]: cached per scope,
//! refreshed ahead of expiry, single flight, the projected token file re-read at each
//! exchange):
//!
//! | path | protocol | caller proves |
//! |---|---|---|
//! | `GET /metadata/identity/oauth2/token` (and `…/token/`) | Azure IMDS, api-version 2018-02-01 and later | the `Metadata: true` header (a guard against request forgery, not a secret) |
//! | `GET /msi/token` | App Service, api-version 2019-08-01 | `X-IDENTITY-HEADER` equal to the per-pod `IDENTITY_HEADER` |
//!
//! The identity served is the pod's own. A request naming an identity (`client_id`,
//! `object_id`, `principal_id`, `msi_res_id`, `mi_res_id`) is answered only when it
//! names that one: the client id is compared with the configured one (any letter
//! case); the others with the `oid` and `xms_mirid` claims of the access token
//! Keyless issued for the request — read without verifying the signature, since the
//! token came straight from Keyless over TLS — so nothing needs configuring. Any
//! other identity is refused the way each protocol refuses an unassigned identity.
//!
//! Refusals from Keyless (`AADSTS…`) pass through as 4xx with their description, in
//! the error shape each protocol's SDKs parse; the SDKs retry 404, 410, 429 and 5xx
//! for tens of seconds, so those statuses are kept for what is really transient.
//!
//! See [`Sidecar`] for the request handling and [`serve`] for the listener and its
//! limits.

#![warn(missing_docs)]

mod claims;
mod protocol;
mod request;
mod server;
mod sidecar;
mod tokens;

pub use server::{Limits, serve};
pub use sidecar::{Sidecar, SidecarConfig};
pub use tokens::TokenSource;

/// Path of the IMDS token endpoint.
pub const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
/// Path of the App Service token endpoint (the value of `IDENTITY_ENDPOINT` is
/// `http://{listen}/msi/token`).
pub const APP_SERVICE_TOKEN_PATH: &str = "/msi/token";
/// The one App Service api-version served.
pub const APP_SERVICE_API_VERSION: &str = "2019-08-01";
