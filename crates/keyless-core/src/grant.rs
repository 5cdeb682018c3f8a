//! The token endpoint's logic: `client_credentials` with a client secret (service
//! principals) — the federated `client_assertion` path plugs in here as well.

use keyless_proto::oauth::TokenRequest;

use keyless_store::SignInRecord;

use crate::federation::exchange::AssertionFacts;
use crate::keyless::Keyless;
use crate::names::{parse_guid, printable};
use crate::tokens::{AccessTokenClaims, Resource, ScopeError, resolve_resource, resolve_scope};

/// Which token endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/{tenant}/oauth2/token`.
    V1,
    /// `/{tenant}/oauth2/v2.0/token`.
    V2,
}

/// RFC 6749 error classes, as Entra uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    /// 400.
    InvalidRequest,
    /// 401.
    InvalidClient,
    /// 400.
    InvalidGrant,
    /// 400.
    UnauthorizedClient,
    /// 400.
    UnsupportedGrantType,
    /// 400.
    InvalidScope,
    /// 400 (`invalid_resource`, Entra's extension).
    InvalidResource,
    /// 400 (`invalid_tenant`... Entra answers `invalid_request` with 90002; kept distinct).
    InvalidTenant,
    /// 500.
    ServerError,
}

impl OAuthError {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::InvalidResource => "invalid_resource",
            OAuthError::InvalidTenant => "invalid_tenant",
            OAuthError::ServerError => "server_error",
        }
    }
}

/// A refused token request: the class, the AADSTS number and a message that says
/// what did not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AADSTS{code}: {message}")]
pub struct GrantError {
    /// Error class.
    pub error: OAuthError,
    /// AADSTS number.
    pub code: u32,
    /// Explanation (without the `AADSTSnnn:` prefix).
    pub message: String,
}

impl GrantError {
    /// A new error.
    pub fn new(error: OAuthError, code: u32, message: impl Into<String>) -> Self {
        Self {
            error,
            code,
            message: message.into(),
        }
    }
}

/// Facts about the HTTP request, for the sign-in log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Client address.
    pub client_ip: Option<String>,
    /// Correlation id (the caller's `client-request-id` or a generated one).
    pub correlation_id: String,
}

/// `YYYY-MM-DD HH:MM:SSZ`: the timestamp format of Entra errors, also used in messages.
pub fn format_time(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// A minted token with what the endpoint needs to answer.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Not-before / issued-at.
    pub not_before: i64,
    /// Expiry (Unix seconds).
    pub expires_on: i64,
    /// The resource (audience).
    pub resource: String,
}

/// The principal a token is minted for.
pub(crate) struct Subject<'a> {
    pub tenant_id: &'a str,
    pub client_id: &'a str,
    pub object_id: &'a str,
    pub mirid: Option<String>,
    /// "1" client secret, "2" certificate/assertion.
    pub acr: &'static str,
}

fn missing(param: &str) -> GrantError {
    GrantError::new(
        OAuthError::InvalidRequest,
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

impl Keyless {
    /// Resolves the `{tenant}` path segment to a known tenant id.
    pub fn resolve_tenant(&self, segment: &str) -> Result<String, GrantError> {
        let snap = self.snapshot();
        match parse_guid(segment) {
            Some(t) if snap.tenants.contains(&t) => Ok(t),
            _ => Err(GrantError::new(
                OAuthError::InvalidTenant,
                90002,
                format!(
                    "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
                    printable(segment)
                ),
            )),
        }
    }

    fn requested_resource(
        &self,
        req: &TokenRequest,
        endpoint: Endpoint,
    ) -> Result<Resource, GrantError> {
        let public = &self.settings.public;
        match endpoint {
            Endpoint::V2 => {
                let scope = req
                    .scope
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| missing("scope"))?;
                resolve_scope(public, scope).map_err(|e| match e {
                    ScopeError::NotSingle | ScopeError::NotDefault => GrantError::new(
                        OAuthError::InvalidScope,
                        1002012,
                        format!(
                            "The provided value for scope '{}' is not valid. Client credential flows must have a single scope value with /.default suffixed to the resource identifier (application ID URI).",
                            printable(scope)
                        ),
                    ),
                    ScopeError::UnknownResource(r) => unknown_resource(&r),
                })
            }
            Endpoint::V1 => {
                let resource = req
                    .resource
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("resource"))?;
                resolve_resource(public, resource).ok_or_else(|| unknown_resource(resource))
            }
        }
    }

    /// Serves a token request for `tenant_segment` and records it in the sign-in log.
    pub async fn token_request(
        &self,
        tenant_segment: &str,
        req: &TokenRequest,
        endpoint: Endpoint,
        ctx: &RequestContext,
    ) -> Result<IssuedToken, GrantError> {
        let started = std::time::Instant::now();
        let tenant = self.resolve_tenant(tenant_segment)?;
        let mut facts = AssertionFacts::default();
        let result = self.grant(&tenant, req, endpoint, &mut facts).await;
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (error_code, error) = match &result {
            Ok(_) => {
                self.metrics
                    .success(req.client_assertion.is_some(), latency_us);
                (None, None)
            }
            Err(e) => {
                self.metrics.failure(e.code, latency_us);
                (Some(e.code), Some(e.message.clone()))
            }
        };
        self.signins.record(SignInRecord {
            id: 0,
            at: self.clock.now(),
            tenant_id: tenant,
            // Client ids compare case-insensitively; the log keeps one form.
            client_id: req
                .client_id
                .clone()
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect::<String>()
                .to_ascii_lowercase(),
            principal_id: facts.principal_id,
            issuer: facts.issuer.map(|s| s.chars().take(600).collect()),
            subject: facts.subject.map(|s| s.chars().take(600).collect()),
            // The resolved audience when the request got that far, else what was asked.
            resource: facts.resource.or_else(|| {
                req.scope
                    .clone()
                    .or_else(|| req.resource.clone())
                    .map(|s| s.chars().take(600).collect())
            }),
            success: result.is_ok(),
            error_code,
            error,
            client_ip: ctx.client_ip.clone(),
            correlation_id: ctx.correlation_id.clone(),
            latency_us: i64::try_from(latency_us).unwrap_or(i64::MAX),
        });
        result
    }

    async fn grant(
        &self,
        tenant: &str,
        req: &TokenRequest,
        endpoint: Endpoint,
        facts: &mut AssertionFacts,
    ) -> Result<IssuedToken, GrantError> {
        let tenant = tenant.to_string();
        match req.grant_type.as_deref() {
            Some("client_credentials") => {}
            None | Some("") => return Err(missing("grant_type")),
            Some(other) => {
                return Err(GrantError::new(
                    OAuthError::UnsupportedGrantType,
                    70003,
                    format!(
                        "The app requested an unsupported grant type '{}'. Keyless serves 'client_credentials'.",
                        printable(other)
                    ),
                ));
            }
        }
        let client_id = req
            .client_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("client_id"))?;
        let resource = self.requested_resource(req, endpoint)?;
        facts.resource = Some(resource.audience.clone());
        if req.client_assertion.is_some() || req.client_assertion_type.is_some() {
            return self
                .assertion_grant(&tenant, client_id, req, &resource, facts)
                .await;
        }
        let Some(secret) = req.client_secret.as_deref() else {
            return Err(GrantError::new(
                OAuthError::InvalidClient,
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        };
        let snap = self.snapshot();
        let sp = snap
            .service_principals
            .get(&client_id.to_ascii_lowercase())
            .filter(|sp| sp.tenant_id == tenant)
            .ok_or_else(|| unknown_client(client_id, &tenant))?;
        if !keyless_jose::verify_secret(secret, &sp.secret_hash) {
            return Err(GrantError::new(
                OAuthError::InvalidClient,
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            ));
        }
        self.mint(
            &Subject {
                tenant_id: &tenant,
                client_id: &sp.client_id,
                object_id: &sp.principal_id,
                mirid: None,
                acr: "1",
            },
            &resource,
        )
    }

    /// Signs an access token for `subject` and `resource` with the tenant's current key.
    pub(crate) fn mint(
        &self,
        subject: &Subject<'_>,
        resource: &Resource,
    ) -> Result<IssuedToken, GrantError> {
        let now = self.clock.now();
        let ring = self.key_ring();
        let key = ring.signer(subject.tenant_id, now).ok_or_else(|| {
            tracing::error!(tenant = subject.tenant_id, "no active signing key");
            GrantError::new(
                OAuthError::ServerError,
                50000,
                "There was an error issuing a token: no signing key is active.",
            )
        })?;
        // Keyless' own resources take v1 tokens, like Azure Resource Manager and Key
        // Vault; in Entra the resource, not the endpoint, picks the layout.
        let lifetime = self.settings.token_lifetime_secs;
        let uti = keyless_jose::random_bytes::<16>()
            .map(|b| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b))
            .map_err(|_| {
                GrantError::new(OAuthError::ServerError, 50000, "random generator failed")
            })?;
        let claims = AccessTokenClaims {
            aud: resource.audience.clone(),
            iss: self.settings.public.issuer_v1(subject.tenant_id),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            appid: subject.client_id.to_string(),
            appidacr: subject.acr.to_string(),
            idtyp: "app".into(),
            oid: subject.object_id.to_string(),
            sub: subject.object_id.to_string(),
            tid: subject.tenant_id.to_string(),
            uti,
            ver: "1.0".into(),
            xms_mirid: subject.mirid.clone(),
        };
        let token = key.signer.sign_jwt("JWT", &claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            GrantError::new(
                OAuthError::ServerError,
                50000,
                "There was an error signing the token.",
            )
        })?;
        Ok(IssuedToken {
            access_token: token,
            expires_in: lifetime,
            not_before: now,
            expires_on: now + lifetime,
            resource: resource.audience.clone(),
        })
    }
}

pub(crate) fn unknown_client(client_id: &str, tenant: &str) -> GrantError {
    GrantError::new(
        OAuthError::UnauthorizedClient,
        700016,
        format!(
            "Application with identifier '{}' was not found in the directory '{tenant}'. Check the client id (AZURE_CLIENT_ID) and that the identity exists in this tenant.",
            printable(client_id)
        ),
    )
}

fn unknown_resource(resource: &str) -> GrantError {
    GrantError::new(
        OAuthError::InvalidResource,
        500011,
        format!(
            "The resource principal named {} was not found in the tenant. Keyless issues tokens for its resource manager and its vaults.",
            printable(resource)
        ),
    )
}
