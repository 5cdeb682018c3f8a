//! Signing access tokens: the last step of every successful grant.

use crate::grant::error::server_error;
use crate::grant::{GrantError, TokenState};
use crate::settings::Settings;
use crate::tokens::{AccessTokenClaims, Resource};

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

/// Signs an access token for `subject` and `resource` with the tenant's current key
/// in the request's key ring.
pub(crate) fn mint(
    settings: &Settings,
    state: &TokenState,
    subject: &Subject<'_>,
    resource: &Resource,
) -> Result<IssuedToken, GrantError> {
    let now = state.now;
    let key = state.ring.signer(subject.tenant_id, now).ok_or_else(|| {
        tracing::error!(tenant = subject.tenant_id, "no active signing key");
        server_error("There was an error issuing a token: no signing key is active.")
    })?;
    // Keyless' own resources take v1 tokens, like Azure Resource Manager and Key
    // Vault; in Entra the resource, not the endpoint, picks the layout.
    let lifetime = settings.token_lifetime_secs;
    let uti = keyless_jose::random_bytes::<16>()
        .map(|b| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b))
        .map_err(|_| server_error("random generator failed"))?;
    let claims = AccessTokenClaims {
        aud: resource.audience.clone(),
        iss: settings.public.issuer_v1(subject.tenant_id),
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
        server_error("There was an error signing the token.")
    })?;
    Ok(IssuedToken {
        access_token: token,
        expires_in: lifetime,
        not_before: now,
        expires_on: now + lifetime,
        resource: resource.audience.clone(),
    })
}
