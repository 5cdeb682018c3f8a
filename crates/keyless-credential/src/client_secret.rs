//! [`ClientSecretCredential`]: a service principal's id and secret.

use std::fmt;
use std::sync::Arc;

use crate::engine::{ClientAuth, Engine};
use crate::error::Error;
use crate::options::CredentialOptions;

/// A service principal signing in with its client secret (`client_credentials` with
/// `client_secret`) — for example Keyless' bootstrap admin from `admin.json`.
///
/// The authority host is [`CredentialOptions::authority_host`], else
/// `AZURE_AUTHORITY_HOST`, else Entra ID's public cloud. The secret never appears in
/// `Debug` output or errors. Caching, refresh, single flight and retries are as for
/// every credential of this crate; cloning is cheap and shares the cache.
///
/// ```no_run
/// use keyless_credential::{ClientSecretCredential, CredentialOptions};
///
/// # async fn run() -> Result<(), keyless_credential::Error> {
/// let credential = ClientSecretCredential::new(
///     "11111111-1111-1111-1111-111111111111",
///     "33333333-3333-3333-3333-333333333333",
///     std::env::var("CLIENT_SECRET").unwrap_or_default(),
///     CredentialOptions::new()
///         .authority_host("https://localhost:8443")
///         .ca_file("keyless-data/ca.pem"),
/// )?;
/// let token = credential.get_token("https://localhost:8443/.default").await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClientSecretCredential {
    engine: Arc<Engine>,
}

impl ClientSecretCredential {
    /// A credential for `client_id` in `tenant_id` with `secret`.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<String>,
        options: CredentialOptions,
    ) -> Result<Self, Error> {
        let secret = secret.into();
        if secret.is_empty() {
            return Err(Error::invalid("client secret", "it is empty"));
        }
        let engine = Engine::new(
            tenant_id.into(),
            client_id.into(),
            ClientAuth::Secret(secret),
            &options,
            &|name| std::env::var(name).ok(),
        )?;
        Ok(Self {
            engine: Arc::new(engine),
        })
    }
}

impl fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("tenant_id", &self.tenant_id())
            .field("client_id", &self.client_id())
            .field("secret", &"<redacted>")
            .field("token_endpoint", &self.token_endpoint())
            .finish()
    }
}

crate::engine::engine_credential!(ClientSecretCredential);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_stays_out_of_debug_and_empty_ones_are_refused() {
        let c = ClientSecretCredential::new(
            "t",
            "c",
            "hunter2",
            CredentialOptions::new().authority_host("https://a.example"),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("redacted"),
            "{debug}"
        );
        assert!(ClientSecretCredential::new("t", "c", "", CredentialOptions::new()).is_err());
    }
}
