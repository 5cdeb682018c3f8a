//! [`ClientAssertionCredential`]: a fixed client assertion (a federated token in hand).

use std::fmt;
use std::sync::Arc;

use crate::engine::{ClientAuth, Engine};
use crate::error::Error;
use crate::options::CredentialOptions;

/// Exchanges one given federated token (a JWT the identity's federated credential
/// trusts) for access tokens — what `az login --federated-token` does. The assertion is
/// used until it expires; for a token that is renewed on disk use
/// [`WorkloadIdentityCredential`](crate::WorkloadIdentityCredential), which re-reads the
/// file.
///
/// The authority host is [`CredentialOptions::authority_host`], else
/// `AZURE_AUTHORITY_HOST`, else Entra ID's public cloud.
///
/// ```no_run
/// use keyless_credential::{ClientAssertionCredential, CredentialOptions};
///
/// # async fn run(github_oidc_token: String) -> Result<(), keyless_credential::Error> {
/// let credential = ClientAssertionCredential::new(
///     "11111111-1111-1111-1111-111111111111",
///     "33333333-3333-3333-3333-333333333333",
///     github_oidc_token,
///     CredentialOptions::new(),
/// )?;
/// let token = credential.get_token("https://management.azure.com/.default").await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClientAssertionCredential {
    engine: Arc<Engine>,
}

impl ClientAssertionCredential {
    /// A credential for `client_id` in `tenant_id` presenting `assertion` (surrounding
    /// whitespace is dropped).
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        assertion: impl Into<String>,
        options: CredentialOptions,
    ) -> Result<Self, Error> {
        let assertion = assertion.into().trim().to_owned();
        if assertion.is_empty() {
            return Err(Error::invalid("client assertion", "it is empty"));
        }
        let engine = Engine::new(
            tenant_id.into(),
            client_id.into(),
            ClientAuth::Assertion(assertion),
            &options,
            &|name| std::env::var(name).ok(),
        )?;
        Ok(Self {
            engine: Arc::new(engine),
        })
    }
}

impl fmt::Debug for ClientAssertionCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertionCredential")
            .field("tenant_id", &self.tenant_id())
            .field("client_id", &self.client_id())
            .field("assertion", &"<redacted>")
            .field("token_endpoint", &self.token_endpoint())
            .finish()
    }
}

crate::engine::engine_credential!(ClientAssertionCredential);
