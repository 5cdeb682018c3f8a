//! What every credential shares: building the token request, reading the token file,
//! the cache, and turning a grant into an [`AccessToken`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::io::AsyncReadExt;

use crate::authority::{self, ENV_AUTHORITY_HOST};
use crate::cache::{CacheKey, TokenCache};
use crate::clock::Clock;
use crate::error::Error;
use crate::options::{CredentialOptions, RefreshPolicy};
use crate::token::AccessToken;
use crate::transport::{Grant, Transport};

/// `client_assertion_type` of a JWT bearer client assertion (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Largest token file read; projected service-account tokens are about 1 KiB.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// How the client proves who it is.
pub(crate) enum ClientAuth {
    /// `client_secret`.
    Secret(String),
    /// A fixed `client_assertion`.
    Assertion(String),
    /// A `client_assertion` read from this file at every token request, so a rotated
    /// file (the kubelet replaces it atomically) is always picked up.
    TokenFile(PathBuf),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("Secret(<redacted>)"),
            ClientAuth::Assertion(_) => f.write_str("Assertion(<redacted>)"),
            ClientAuth::TokenFile(path) => f.debug_tuple("TokenFile").field(path).finish(),
        }
    }
}

/// The part of a credential that does the work.
#[derive(Debug)]
pub(crate) struct Engine {
    transport: Transport,
    endpoint: Url,
    authority: String,
    tenant_id: String,
    client_id: String,
    auth: ClientAuth,
    cache: TokenCache,
    refresh: RefreshPolicy,
    clock: Arc<dyn Clock>,
}

impl Engine {
    /// Validates the settings and builds the HTTP client. `env` looks up environment
    /// variables (injected so tests need not change the process environment).
    pub(crate) fn new(
        tenant_id: String,
        client_id: String,
        auth: ClientAuth,
        options: &CredentialOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        authority::validate_tenant(&tenant_id)?;
        authority::validate_client_id(&client_id)?;
        let raw_authority = options
            .authority_host
            .clone()
            .or_else(|| env(ENV_AUTHORITY_HOST).filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| authority::AZURE_PUBLIC_CLOUD.to_owned());
        let authority_url = authority::parse_authority(&raw_authority)?;
        let endpoint = authority::token_endpoint(&authority_url, &tenant_id)?;
        Ok(Self {
            transport: Transport::new(options)?,
            endpoint,
            authority: authority::authority_key(&authority_url),
            tenant_id,
            client_id,
            auth,
            cache: options.cache.clone().unwrap_or_default(),
            refresh: options.refresh,
            clock: options.clock.clone(),
        })
    }

    pub(crate) fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn token_endpoint(&self) -> &Url {
        &self.endpoint
    }

    pub(crate) fn token_file(&self) -> Option<&Path> {
        match &self.auth {
            ClientAuth::TokenFile(path) => Some(path),
            _ => None,
        }
    }

    /// A token for `scope` from the cache, or from the service.
    pub(crate) async fn get_token(&self, scope: &str) -> Result<AccessToken, Error> {
        let scope = scope.trim();
        if scope.is_empty() {
            return Err(Error::invalid(
                "scope",
                "it is empty; ask for '{resource}/.default', e.g. https://vault.azure.net/.default",
            ));
        }
        let slot = self.cache.slot(CacheKey {
            authority: self.authority.clone(),
            tenant: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            scope: scope.to_owned(),
        });
        slot.get(&*self.clock, &self.refresh, || self.fetch(scope))
            .await
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, Error> {
        let assertion;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("scope", scope),
        ];
        match &self.auth {
            ClientAuth::Secret(secret) => form.push(("client_secret", secret)),
            ClientAuth::Assertion(fixed) => {
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", fixed));
            }
            ClientAuth::TokenFile(path) => {
                assertion = read_token_file(path).await?;
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", &assertion));
            }
        }
        // The lifetime counts from before the request: conservative by the round trip.
        let requested_at = self.clock.now();
        let grant = self.transport.request(&self.endpoint, &form).await?;
        self.to_token(grant, requested_at)
    }

    fn to_token(
        &self,
        grant: Grant,
        requested_at: std::time::SystemTime,
    ) -> Result<AccessToken, Error> {
        let expires_on =
            requested_at
                .checked_add(grant.expires_in)
                .ok_or_else(|| Error::InvalidResponse {
                    endpoint: self.endpoint.to_string(),
                    status: 200,
                    reason: format!(
                        "expires_in {} s is out of range",
                        grant.expires_in.as_secs()
                    ),
                })?;
        let refresh_after: Duration = self
            .refresh
            .refresh_after(grant.expires_in, grant.refresh_in);
        let refresh_on = requested_at
            .checked_add(refresh_after)
            .unwrap_or(expires_on);
        Ok(AccessToken::with_details(
            grant.access_token,
            grant.token_type,
            expires_on,
            refresh_on,
        ))
    }
}

/// Reads the federated token file: bounded, UTF-8, surrounding whitespace trimmed
/// (a JWT has none; hand-written files often end with a newline), not empty.
pub(crate) async fn read_token_file(path: &Path) -> Result<String, Error> {
    let fail = |reason: String, source: Option<std::io::Error>| Error::TokenFile {
        path: path.to_path_buf(),
        reason,
        source: source.map(Arc::new),
    };
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "it does not exist (is the service-account token volume mounted?)".to_owned()
            }
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        };
        fail(reason, Some(e))
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| fail(e.to_string(), Some(e)))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(fail(
            format!("it is larger than {MAX_TOKEN_FILE} bytes; a token file holds one JWT"),
            None,
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".to_owned(), None))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(fail("it is empty".to_owned(), None));
    }
    Ok(token.to_owned())
}

/// The surface every credential shares with the engine it wraps (a field `engine:
/// Arc<Engine>`): `get_token`, `tenant_id`, `client_id`, `token_endpoint` and the
/// [`TokenCredential`](crate::TokenCredential) impl.
macro_rules! engine_credential {
    ($credential:ident) => {
        impl $credential {
            /// An access token for `scope` (`{resource}/.default`): from the cache while
            /// fresh, else from the token service.
            pub async fn get_token(&self, scope: &str) -> Result<crate::AccessToken, crate::Error> {
                self.engine.get_token(scope).await
            }

            /// The tenant id in use.
            pub fn tenant_id(&self) -> &str {
                self.engine.tenant_id()
            }

            /// The client id in use.
            pub fn client_id(&self) -> &str {
                self.engine.client_id()
            }

            /// The token endpoint requests go to.
            pub fn token_endpoint(&self) -> &str {
                self.engine.token_endpoint().as_str()
            }
        }

        impl crate::TokenCredential for $credential {
            fn get_token<'a>(
                &'a self,
                scope: &'a str,
            ) -> crate::BoxFuture<'a, Result<crate::AccessToken, crate::Error>> {
                Box::pin(self.engine.get_token(scope))
            }
        }
    };
}

pub(crate) use engine_credential;

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[tokio::test]
    async fn token_files_are_read_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.path().join("token");
        let write =
            |text: &[u8]| std::fs::write(&path, text).unwrap_or_else(|e| unreachable!("{e}"));
        write(b"a.b.c\n");
        assert_eq!(read_token_file(&path).await.ok().as_deref(), Some("a.b.c"));
        for (content, needle) in [
            (&b" \n"[..], "it is empty"),
            (&[0xff, 0xfe][..], "not UTF-8"),
        ] {
            write(content);
            let Err(e) = read_token_file(&path).await else {
                unreachable!()
            };
            assert!(e.to_string().contains(needle), "{e}");
        }
        write(&vec![b'a'; 70_000]);
        let Err(e) = read_token_file(&path).await else {
            unreachable!()
        };
        assert!(e.to_string().contains("larger than"), "{e}");
        let Err(e) = read_token_file(&dir.path().join("missing")).await else {
            unreachable!()
        };
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn authority_comes_from_options_then_env_then_public_cloud() {
        let build = |options: &CredentialOptions, env: &dyn Fn(&str) -> Option<String>| {
            Engine::new(
                "t".into(),
                "c".into(),
                ClientAuth::Secret("s".into()),
                options,
                env,
            )
            .map(|e| e.token_endpoint().to_string())
        };
        let env =
            |name: &str| (name == ENV_AUTHORITY_HOST).then(|| "https://env.example/".to_owned());
        assert_eq!(
            build(&CredentialOptions::new(), &no_env).ok().as_deref(),
            Some("https://login.microsoftonline.com/t/oauth2/v2.0/token")
        );
        assert_eq!(
            build(&CredentialOptions::new(), &env).ok().as_deref(),
            Some("https://env.example/t/oauth2/v2.0/token")
        );
        assert_eq!(
            build(
                &CredentialOptions::new().authority_host("https://opt.example"),
                &env
            )
            .ok()
            .as_deref(),
            Some("https://opt.example/t/oauth2/v2.0/token")
        );
        assert!(
            build(
                &CredentialOptions::new().authority_host("http://opt.example"),
                &env
            )
            .is_err()
        );
        let debug = format!("{:?}", ClientAuth::Secret("hunter2".into()));
        assert!(!debug.contains("hunter2"));
    }
}
