//! The federated `client_assertion` grant, step by step in the order of the hot path:
//! parse (bounded) → refuse Keyless' own tokens → identity by client id → credentials
//! for `iss` → issuer keys (cache) → signature → times → audience → subject or
//! expression → mint. No database access; the only await is a cache miss.

use std::sync::Arc;

use keyless_jose::{Alg, JoseError, RegisteredClaims, TimeError, TimePolicy, UnverifiedJwt};
use keyless_proto::oauth::{JWT_BEARER_ASSERTION_TYPE, TokenRequest};

use super::issuer_cache::IssuerKeys;
use super::matching::{Presented, find_match, for_issuer};
use crate::grant::{GrantError, IssuedToken, OAuthError, Subject, unknown_client};
use crate::keyless::Keyless;
use crate::names::printable;
use crate::tokens::{MAX_TOKEN_BYTES, Resource};

/// Facts gathered on the way, for the sign-in log.
#[derive(Debug, Default, Clone)]
pub(crate) struct AssertionFacts {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub principal_id: Option<String>,
    /// The resolved resource (audience), once known.
    pub resource: Option<String>,
}

fn malformed(why: impl std::fmt::Display) -> GrantError {
    GrantError::new(
        OAuthError::InvalidRequest,
        50027,
        format!("JWT token is invalid or malformed: {why}."),
    )
}

pub(crate) fn time_error(e: &TimeError) -> GrantError {
    let fmt = |t: i64| crate::grant::format_time(t);
    match e {
        TimeError::LifetimeTooLong { lifetime, max } => GrantError::new(
            OAuthError::InvalidClient,
            70023,
            format!(
                "The external token's lifetime of {lifetime} seconds is longer than the allowed {max} seconds."
            ),
        ),
        TimeError::Expired { exp, now } => GrantError::new(
            OAuthError::InvalidClient,
            700024,
            format!(
                "Client assertion is not within its valid time range: it expired at {} (exp {exp}); the server time is {} ({now}). The token file may not be rotated any more.",
                fmt(*exp),
                fmt(*now)
            ),
        ),
        TimeError::NotYetValid { nbf, now } => GrantError::new(
            OAuthError::InvalidClient,
            700024,
            format!(
                "Client assertion is not within its valid time range: it is not valid before {} (nbf {nbf}); the server time is {} ({now}). Check the clocks.",
                fmt(*nbf),
                fmt(*now)
            ),
        ),
        TimeError::IssuedInFuture { iat, now } => GrantError::new(
            OAuthError::InvalidClient,
            700024,
            format!(
                "Client assertion is not within its valid time range: it was issued in the future at {} (iat {iat}); the server time is {} ({now}). Check the clocks.",
                fmt(*iat),
                fmt(*now)
            ),
        ),
    }
}

impl Keyless {
    /// Keys for an issuer: a static registration of the tenant, else the cache.
    pub(crate) async fn issuer_keys(
        &self,
        tenant: &str,
        issuer: &str,
        kid: Option<&str>,
    ) -> Result<Arc<IssuerKeys>, GrantError> {
        if let Some(k) = self
            .snapshot()
            .static_issuers
            .get(&(tenant.to_string(), issuer.to_string()))
        {
            return Ok(k.clone());
        }
        self.issuers.keys(issuer, kid).await.map_err(|e| {
            GrantError::new(
                OAuthError::InvalidRequest,
                50166,
                format!("Request to External OIDC endpoint failed: {e}. Keyless must reach '{issuer}/.well-known/openid-configuration' and its jwks_uri, or the issuer must be registered with a static JWKS."),
            )
        })
    }

    pub(crate) async fn assertion_grant(
        &self,
        tenant: &str,
        client_id: &str,
        req: &TokenRequest,
        resource: &Resource,
        facts: &mut AssertionFacts,
    ) -> Result<IssuedToken, GrantError> {
        if req.client_assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION_TYPE) {
            return Err(GrantError::new(
                OAuthError::InvalidRequest,
                7000218,
                format!("The client_assertion_type must be '{JWT_BEARER_ASSERTION_TYPE}'."),
            ));
        }
        let raw = req.client_assertion.as_deref().unwrap_or_default();
        if raw.trim().is_empty() {
            return Err(GrantError::new(
                OAuthError::InvalidClient,
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        let jwt = UnverifiedJwt::parse(raw, MAX_TOKEN_BYTES).map_err(malformed)?;
        let claims = RegisteredClaims::from_claims(jwt.claims()).map_err(malformed)?;
        facts.issuer = Some(claims.iss.clone());
        facts.subject = Some(claims.sub.clone());

        // Keyless' own tokens are never assertions (checked before any issuer lookup).
        let own = self.settings.public.authority();
        if claims.iss.starts_with(&format!("{own}/"))
            || jwt
                .kid()
                .is_some_and(|k| self.key_ring().by_kid(k).is_some())
        {
            return Err(GrantError::new(
                OAuthError::InvalidClient,
                700222,
                "The assertion was issued by Keyless itself. Present the workload's platform token (e.g. the projected service account token), not a Keyless access token.",
            ));
        }

        let snap = self.snapshot();
        let identity = snap
            .identities_by_client
            .get(&client_id.to_ascii_lowercase())
            .filter(|i| i.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| unknown_client(client_id, tenant))?;
        facts.principal_id = Some(identity.principal_id.clone());
        let all = snap
            .credentials
            .get(&identity.principal_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let creds = for_issuer(all, &claims.iss);
        if creds.is_empty() {
            let near = all.iter().find(|c| {
                c.issuer
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(claims.iss.trim().trim_end_matches('/'))
            });
            let hint = match near {
                Some(c) => format!(
                    " Credential '{}' trusts '{}', which differs only in letter case, surrounding spaces or a trailing slash; issuers must match exactly.",
                    c.name, c.issuer
                ),
                None if all.is_empty() => " The identity has no federated credentials.".to_string(),
                // Same identity, same tenant: naming what it trusts is safe and is the
                // quickest way to see the mismatch.
                None => format!(
                    " The identity's {} federated credential(s) trust {}.",
                    all.len(),
                    all.iter()
                        .map(|c| format!("'{}' (credential '{}')", c.issuer, c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(GrantError::new(
                OAuthError::InvalidClient,
                700211,
                format!(
                    "No matching federated identity record found for presented assertion issuer '{}'.{hint}",
                    printable(&claims.iss)
                ),
            ));
        }

        let keys = self.issuer_keys(tenant, &claims.iss, jwt.kid()).await?;
        let key = keyless_jose::select_key(&keys.keys, jwt.kid(), jwt.alg()).map_err(|e| match e {
            JoseError::UnknownKid(kid) => GrantError::new(
                OAuthError::InvalidClient,
                7000272,
                format!(
                    "The key with id '{}' was not found in the issuer's JWKS ({}, {} keys). If the issuer rotated its keys, retry in a few seconds.",
                    printable(&kid),
                    keys.source,
                    keys.keys.len()
                ),
            ),
            other => GrantError::new(OAuthError::InvalidClient, 7000272, format!("No usable signing key: {other}.")),
        })?;
        jwt.verify(key, Alg::ASSERTION_ALLOWLIST).map_err(|e| {
            GrantError::new(
                OAuthError::InvalidClient,
                700027,
                format!("Client assertion failed signature validation: {e}."),
            )
        })?;
        let policy = TimePolicy {
            leeway_secs: self.settings.clock_leeway_secs,
            max_lifetime_secs: 25 * 3600,
        };
        claims
            .check_times(self.clock.now(), policy)
            .map_err(|e| time_error(&e))?;

        let presented = Presented {
            issuer: &claims.iss,
            subject: &claims.sub,
            audiences: &claims.aud,
            claims: jwt.claims(),
        };
        let matched = find_match(&creds, &presented, &snap.expressions)?;
        tracing::debug!(credential = %matched.name, "federated credential matched");
        self.mint(
            &Subject {
                tenant_id: tenant,
                client_id: &identity.client_id,
                object_id: &identity.principal_id,
                mirid: Some(crate::ids::identity_id(
                    &identity.subscription_id,
                    &identity.resource_group,
                    &identity.name,
                )),
                acr: "2",
            },
            resource,
        )
    }
}
