//! [`WorkloadIdentityCredential`]: a projected service-account token exchanged for
//! access tokens.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::authority::{ENV_CLIENT_ID, ENV_FEDERATED_TOKEN_FILE, ENV_TENANT_ID};
use crate::engine::{ClientAuth, Engine};
use crate::error::Error;
use crate::options::CredentialOptions;

const NAME: &str = "WorkloadIdentityCredential";

/// Settings of a [`WorkloadIdentityCredential`]. Each one left unset is read from the
/// environment the workload identity webhook injects into a pod:
///
/// | setting | environment variable |
/// |---|---|
/// | [`tenant_id`](WorkloadIdentityOptions::tenant_id) | `AZURE_TENANT_ID` |
/// | [`client_id`](WorkloadIdentityOptions::client_id) | `AZURE_CLIENT_ID` |
/// | [`token_file_path`](WorkloadIdentityOptions::token_file_path) | `AZURE_FEDERATED_TOKEN_FILE` |
/// | authority host ([`CredentialOptions::authority_host`]) | `AZURE_AUTHORITY_HOST` |
///
/// ```
/// use keyless_credential::{CredentialOptions, WorkloadIdentityOptions};
///
/// let options = WorkloadIdentityOptions::new()
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .options(CredentialOptions::new().ca_file("/etc/keyless/ca.pem"));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct WorkloadIdentityOptions {
    tenant_id: Option<String>,
    client_id: Option<String>,
    token_file_path: Option<PathBuf>,
    options: CredentialOptions,
}

impl WorkloadIdentityOptions {
    /// Nothing set: everything comes from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tenant (directory) id, instead of `AZURE_TENANT_ID`.
    #[must_use]
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// The identity's client id, instead of `AZURE_CLIENT_ID`.
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The projected token file, instead of `AZURE_FEDERATED_TOKEN_FILE`.
    #[must_use]
    pub fn token_file_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file_path = Some(path.into());
        self
    }

    /// Authority host, trust, caching, refresh and retry settings.
    #[must_use]
    pub fn options(mut self, options: CredentialOptions) -> Self {
        self.options = options;
        self
    }
}

/// Exchanges the platform's token — a Kubernetes projected service-account token, a CI
/// job's OIDC token — for access tokens, through a federated identity credential.
///
/// At each token request it reads the token file anew (the kubelet replaces it
/// atomically before the old token expires), and sends it as a JWT bearer client
/// assertion to `{authority}/{tenant}/oauth2/v2.0/token`: the same single POST the Azure
/// SDKs send, so it works against Keyless and Microsoft Entra ID alike. Tokens are
/// cached, refreshed early and fetched once for any number of concurrent callers (see
/// the [crate docs](crate#caching-refresh-and-single-flight)).
///
/// Cloning is cheap and shares the cache.
///
/// ```no_run
/// use keyless_credential::WorkloadIdentityCredential;
///
/// # async fn run() -> Result<(), keyless_credential::Error> {
/// // In a pod with the workload identity environment injected:
/// let credential = WorkloadIdentityCredential::from_env()?;
/// let token = credential.get_token("https://vault.azure.net/.default").await?;
/// println!("token valid until {:?}", token.expires_on());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WorkloadIdentityCredential {
    engine: Arc<Engine>,
}

impl WorkloadIdentityCredential {
    /// Everything from the environment (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_FEDERATED_TOKEN_FILE`, optional `AZURE_AUTHORITY_HOST`).
    pub fn from_env() -> Result<Self, Error> {
        Self::new(WorkloadIdentityOptions::default())
    }

    /// Explicit settings, the unset ones from the environment. Checks them (an https
    /// authority, a tenant id that is a GUID or domain name) and reads the CA file, but
    /// not the token file: that is read at each token request.
    pub fn new(options: WorkloadIdentityOptions) -> Result<Self, Error> {
        Self::with_env(options, &|name| std::env::var(name).ok())
    }

    pub(crate) fn with_env(
        options: WorkloadIdentityOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let setting = |explicit: Option<String>, name: &'static str, what: &'static str| {
            explicit
                .or_else(|| env(name))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(Error::MissingSetting {
                    credential: NAME,
                    what,
                    env: name,
                })
        };
        let tenant_id = setting(options.tenant_id, ENV_TENANT_ID, "a tenant id")?;
        let client_id = setting(options.client_id, ENV_CLIENT_ID, "a client id")?;
        let token_file = match options.token_file_path {
            Some(path) if !path.as_os_str().is_empty() => path,
            _ => PathBuf::from(setting(
                None,
                ENV_FEDERATED_TOKEN_FILE,
                "a federated token file",
            )?),
        };
        let engine = Engine::new(
            tenant_id,
            client_id,
            ClientAuth::TokenFile(token_file),
            &options.options,
            env,
        )?;
        Ok(Self {
            engine: Arc::new(engine),
        })
    }

    /// The token file read at each token request.
    pub fn token_file_path(&self) -> &Path {
        self.engine.token_file().unwrap_or_else(|| Path::new(""))
    }
}

impl fmt::Debug for WorkloadIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(NAME)
            .field("tenant_id", &self.tenant_id())
            .field("client_id", &self.client_id())
            .field("token_file", &self.token_file_path())
            .field("token_endpoint", &self.token_endpoint())
            .finish()
    }
}

crate::engine::engine_credential!(WorkloadIdentityCredential);

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn settings_come_from_the_environment_unless_given() {
        let env = env_of(&[
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_ID", "client-1"),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
            ("AZURE_AUTHORITY_HOST", "https://keyless.example:8443/"),
        ]);
        let c = WorkloadIdentityCredential::with_env(WorkloadIdentityOptions::new(), &env)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.tenant_id(), "tenant-1");
        assert_eq!(c.client_id(), "client-1");
        assert_eq!(
            c.token_file_path(),
            Path::new("/var/run/secrets/azure/tokens/azure-identity-token")
        );
        assert_eq!(
            c.token_endpoint(),
            "https://keyless.example:8443/tenant-1/oauth2/v2.0/token"
        );
        let c = WorkloadIdentityCredential::with_env(
            WorkloadIdentityOptions::new()
                .client_id("client-2")
                .token_file_path("/tmp/t")
                .options(CredentialOptions::new().authority_host("https://other.example")),
            &env,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.client_id(), "client-2");
        assert_eq!(c.token_file_path(), Path::new("/tmp/t"));
        assert_eq!(
            c.token_endpoint(),
            "https://other.example/tenant-1/oauth2/v2.0/token"
        );
        assert!(format!("{c:?}").contains("client-2"));
    }

    #[test]
    fn missing_settings_name_the_variable() {
        let env = env_of(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", " ")]);
        let Err(e) = WorkloadIdentityCredential::with_env(WorkloadIdentityOptions::new(), &env)
        else {
            unreachable!()
        };
        assert!(e.to_string().contains("AZURE_CLIENT_ID"), "{e}");
        let env = env_of(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")]);
        let Err(e) = WorkloadIdentityCredential::with_env(WorkloadIdentityOptions::new(), &env)
        else {
            unreachable!()
        };
        assert!(e.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"), "{e}");
        let env = env_of(&[
            ("AZURE_TENANT_ID", "../evil"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
        ]);
        assert!(matches!(
            WorkloadIdentityCredential::with_env(WorkloadIdentityOptions::new(), &env),
            Err(Error::InvalidSetting {
                setting: "tenant id",
                ..
            })
        ));
    }
}
