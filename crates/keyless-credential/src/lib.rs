//! Credentials for Rust applications that get access tokens from
//! [Keyless](https://example.invalid/keyless) or Microsoft Entra ID — the same OAuth 2.0
//! protocol, so one code path works against both.
//!
//! | credential | proves its identity with |
//! |---|---|
//! | [`WorkloadIdentityCredential`] | a projected service-account token file (Kubernetes workload identity, CI OIDC tokens written to disk) |
//! | [`ClientAssertionCredential`] | a federated token in hand (`az login --federated-token`) |
//! | [`ClientSecretCredential`] | a service principal's client secret |
//!
//! All three implement [`TokenCredential`] and share [`CredentialOptions`].
//!
//! # Quick start
//!
//! In a pod where the workload identity webhook injected `AZURE_CLIENT_ID`,
//! `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and `AZURE_AUTHORITY_HOST`:
//!
//! ```no_run
//! use keyless_credential::{scope_for_resource, WorkloadIdentityCredential};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credential = WorkloadIdentityCredential::from_env()?;
//! let token = credential
//!     .get_token(&scope_for_resource("https://vault.azure.net"))
//!     .await?;
//! let secret = reqwest::Client::new()
//!     .get("https://my-vault.vault.azure.net/secrets/db-password?api-version=7.6")
//!     .header("Authorization", token.authorization_header())
//!     .send()
//!     .await?;
//! # let _ = secret;
//! # Ok(())
//! # }
//! ```
//!
//! Against a Keyless server with a private CA, point at it and trust its CA (or set
//! `AZURE_AUTHORITY_HOST` and `SSL_CERT_FILE`):
//!
//! ```no_run
//! use keyless_credential::{CredentialOptions, WorkloadIdentityCredential, WorkloadIdentityOptions};
//!
//! # fn run() -> Result<(), keyless_credential::Error> {
//! let credential = WorkloadIdentityCredential::new(
//!     WorkloadIdentityOptions::new().options(
//!         CredentialOptions::new()
//!             .authority_host("https://keyless.internal:8443")
//!             .ca_file("/etc/keyless/ca.pem"),
//!     ),
//! )?;
//! # let _ = credential;
//! # Ok(())
//! # }
//! ```
//!
//! # Caching, refresh and single flight
//!
//! Tokens are cached in memory per (authority, tenant, client, scope) — see
//! [`TokenCache`]. A cached token is returned until its refresh time
//! ([`AccessToken::refresh_on`]): the service's integer `refresh_in` when it sends one,
//! else half the lifetime or 5 minutes before expiry, whichever is first
//! ([`RefreshPolicy`]). After that the next call fetches a new token; if that fails
//! while the old token is still valid, the old token is returned and the refresh is
//! tried again 30 s later.
//!
//! However many tasks ask at once, one request is in flight per cache entry: the others
//! wait for it and get its token — or its error. While an early refresh is in flight,
//! other callers get the still-valid cached token without waiting. No lock is held
//! across an `.await` except the async gate the fetching task owns.
//!
//! The federated token file is read at every token request (not at every
//! [`get_token`](TokenCredential::get_token) call: cached tokens need no file), so the
//! kubelet's atomic replacement of the file is always picked up.
//!
//! # Retries
//!
//! HTTP 408, 429, 500, 502, 503 and 504 and connection failures are retried with
//! exponential backoff and jitter, honouring `Retry-After` (seconds or HTTP date) — see
//! [`RetryPolicy`]. Each request carries a `client-request-id`, which Keyless and Entra ID
//! record as the correlation id.
//!
//! # Errors
//!
//! A refusal from the service is an [`Error::Service`] holding a [`ServiceError`] with
//! the HTTP status, the OAuth `error`, the `AADSTS…` description, the codes, the
//! correlation and trace ids; its message is the one to log:
//!
//! ```text
//! token request to https://keyless.internal:8443/<tenant>/oauth2/v2.0/token failed: HTTP 401 invalid_client:
//! AADSTS700213: No matching federated identity record found for presented assertion subject
//! 'system:serviceaccount:default:other' ... Correlation ID: 4b0c… Timestamp: 2025-01-01 12:00:00Z
//! ```
//!
//! # TLS
//!
//! Requests go over HTTPS only (plain-http authorities are refused), with rustls and the
//! aws-lc-rs provider, without following redirects. Server certificates are checked
//! against the platform's trust store (which honours `SSL_CERT_FILE`), or only against
//! the CA given with [`CredentialOptions::ca_file`]/[`CredentialOptions::ca_pem`].

#![warn(missing_docs)]

mod authority;
mod cache;
mod client_assertion;
mod client_secret;
mod clock;
mod engine;
mod error;
mod options;
mod token;
mod transport;
mod workload;

use std::future::Future;
use std::pin::Pin;

pub use authority::{
    AZURE_PUBLIC_CLOUD, ENV_AUTHORITY_HOST, ENV_CLIENT_ID, ENV_FEDERATED_TOKEN_FILE, ENV_TENANT_ID,
};
pub use cache::TokenCache;
pub use client_assertion::ClientAssertionCredential;
pub use client_secret::ClientSecretCredential;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ServiceError};
pub use options::{CredentialOptions, RefreshPolicy, RetryPolicy};
pub use token::AccessToken;
pub use workload::{WorkloadIdentityCredential, WorkloadIdentityOptions};

/// A boxed future, as returned by [`TokenCredential::get_token`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Anything that hands out access tokens. Object safe, so applications can hold a
/// `Box<dyn TokenCredential>` chosen at run time, and tests can supply a fake.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use keyless_credential::{AccessToken, BoxFuture, Error, TokenCredential};
///
/// /// A stand-in for tests.
/// #[derive(Debug)]
/// struct Fixed;
///
/// impl TokenCredential for Fixed {
///     fn get_token<'a>(&'a self, _scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>> {
///         Box::pin(async { Ok(AccessToken::new("test-token", SystemTime::now() + Duration::from_secs(60))) })
///     }
/// }
///
/// let credential: Box<dyn TokenCredential> = Box::new(Fixed);
/// # let _ = credential;
/// ```
pub trait TokenCredential: Send + Sync + std::fmt::Debug {
    /// An access token for `scope`, usually `{resource}/.default` (see
    /// [`scope_for_resource`]).
    fn get_token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>>;
}

/// The `client_credentials` scope of a resource: `{resource}/.default`, as az builds it
/// (so the resource manager's `https://management.core.windows.net/` gives
/// `https://management.core.windows.net//.default`, which Entra ID expects).
///
/// ```
/// use keyless_credential::scope_for_resource;
///
/// assert_eq!(scope_for_resource("https://vault.azure.net"), "https://vault.azure.net/.default");
/// assert_eq!(
///     scope_for_resource("https://management.core.windows.net/"),
///     "https://management.core.windows.net//.default"
/// );
/// ```
pub fn scope_for_resource(resource: &str) -> String {
    format!("{}/.default", resource.trim())
}
