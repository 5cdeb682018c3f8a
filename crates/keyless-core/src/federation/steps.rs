//! The checks of the federated exchange, one function each, in the order of the hot
//! path. The token endpoint ([`super::exchange`]) stops at the first refusal;
//! `explain` ([`super::explain`]) runs the very same functions and reports each one,
//! so the two cannot drift apart.

use std::sync::Arc;

use keyless_jose::{Alg, JoseError, RegisteredClaims, TimePolicy, UnverifiedJwt, VerifyingKey};
use keyless_proto::oauth::{JWT_BEARER_ASSERTION_TYPE, TokenRequest};
use keyless_store::{FederatedCredentialRecord, IdentityRecord};

use super::issuer_cache::{IssuerError, IssuerKeys};
use super::matching::{Presented, find_match, for_issuer};
use crate::grant::error::{
    bad_signature, issuer_keys_stale, issuer_unreachable, malformed, no_client_credential,
    no_signing_key, own_token, time_error, unknown_client, wrong_assertion_type,
};
use crate::grant::{GrantError, OAuthError};
use crate::keyring::KeyRing;
use crate::names::printable;
use crate::settings::PublicUrl;
use crate::tokens::MAX_TOKEN_BYTES;
use crate::view::Snapshot;

/// The longest lifetime (`exp - iat`) accepted for an external assertion.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 25 * 3600;

/// An assertion parsed without trust: its signature is not verified yet.
pub(crate) struct Assertion {
    pub jwt: UnverifiedJwt,
    pub claims: RegisteredClaims,
}

impl Assertion {
    /// The claims matching looks at.
    pub fn presented(&self) -> Presented<'_> {
        Presented {
            issuer: &self.claims.iss,
            subject: &self.claims.sub,
            audiences: &self.claims.aud,
            claims: self.jwt.claims(),
        }
    }
}

/// The raw `client_assertion` of a request whose type is the JWT bearer type.
pub(crate) fn raw_assertion(req: &TokenRequest) -> Result<&str, GrantError> {
    if req.client_assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION_TYPE) {
        return Err(wrong_assertion_type());
    }
    let raw = req.client_assertion.as_deref().unwrap_or_default();
    if raw.trim().is_empty() {
        return Err(no_client_credential());
    }
    Ok(raw)
}

/// A compact JWS of bounded size with an allowed header.
pub(crate) fn parse_token(raw: &str) -> Result<UnverifiedJwt, GrantError> {
    UnverifiedJwt::parse(raw, MAX_TOKEN_BYTES).map_err(malformed)
}

/// The registered claims, each of the right JSON type.
pub(crate) fn read_claims(jwt: UnverifiedJwt) -> Result<Assertion, GrantError> {
    let claims = RegisteredClaims::from_claims(jwt.claims()).map_err(malformed)?;
    Ok(Assertion { jwt, claims })
}

/// Keyless' own tokens are never assertions: refused by issuer or by key id before
/// any issuer lookup.
pub(crate) fn refuse_own_token(
    public: &PublicUrl,
    ring: &KeyRing,
    a: &Assertion,
) -> Result<(), GrantError> {
    let own_issuer = a
        .claims
        .iss
        .strip_prefix(public.authority().as_str())
        .is_some_and(|rest| rest.starts_with('/'));
    let own_key = a.jwt.kid().is_some_and(|k| ring.by_kid(k).is_some());
    if own_issuer || own_key {
        return Err(own_token());
    }
    Ok(())
}

/// The identity with this client id in the request's tenant.
pub(crate) fn identity<'s>(
    snap: &'s Snapshot,
    tenant: &str,
    client_id: &str,
) -> Result<&'s Arc<IdentityRecord>, GrantError> {
    snap.identities_by_client
        .get(client_id.to_ascii_lowercase().as_str())
        .filter(|i| i.tenant_id == tenant)
        .ok_or_else(|| unknown_client(client_id, tenant))
}

/// All federated credentials of an identity.
pub(crate) fn credentials_of<'s>(
    snap: &'s Snapshot,
    identity: &IdentityRecord,
) -> &'s [FederatedCredentialRecord] {
    snap.credentials
        .get(identity.principal_id.as_str())
        .map(|list| list.as_slice())
        .unwrap_or(&[])
}

/// The identity's credentials that trust the assertion's issuer (exact compare).
/// Checked before any key fetch, so a caller cannot make Keyless fetch from a URL no
/// credential trusts.
pub(crate) fn trusted_credentials<'s>(
    all: &'s [FederatedCredentialRecord],
    issuer: &str,
) -> Result<Vec<&'s FederatedCredentialRecord>, GrantError> {
    let creds = for_issuer(all, issuer);
    if !creds.is_empty() {
        return Ok(creds);
    }
    let near = all.iter().find(|c| {
        c.issuer
            .trim_end_matches('/')
            .eq_ignore_ascii_case(issuer.trim().trim_end_matches('/'))
    });
    // The signature is not verified yet: the caller may be anyone who knows a client
    // id, so what the identity trusts is for the operator only.
    let hint = match near {
        Some(c) => format!(
            "Credential '{}' trusts '{}', which differs only in letter case, surrounding spaces or a trailing slash; issuers must match exactly.",
            c.name, c.issuer
        ),
        None if all.is_empty() => "The identity has no federated credentials.".to_string(),
        None => format!(
            "The identity's {} federated credential(s) trust {}.",
            all.len(),
            all.iter()
                .map(|c| format!("'{}' (credential '{}')", c.issuer, c.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(GrantError::new(
        OAuthError::InvalidClient,
        700211,
        format!(
            "No matching federated identity record found for presented assertion issuer '{}'. The identity does not trust this issuer; issuers must match exactly (letter case, trailing slash). An operator can see what it trusts with `keyless explain`.",
            printable(issuer)
        ),
    )
    .with_operator_detail(hint))
}

/// The issuer's keys: a static registration of the tenant, else the issuer cache.
pub(crate) async fn issuer_keys(
    snap: &Snapshot,
    cache: &super::IssuerCache,
    tenant: &str,
    issuer: &str,
    kid: Option<&str>,
) -> Result<Arc<IssuerKeys>, GrantError> {
    if let Some(k) = snap
        .static_issuers
        .get(&(tenant.to_string(), issuer.to_string()))
    {
        return Ok(k.clone());
    }
    cache.keys(tenant, issuer, kid).await.map_err(|e| match e {
        IssuerError::Stale { since, reason } => issuer_keys_stale(issuer, since, reason),
        other => issuer_unreachable(issuer, other),
    })
}

/// The key named by the token's `kid` that fits its `alg`.
pub(crate) fn signing_key<'k>(
    keys: &'k IssuerKeys,
    jwt: &UnverifiedJwt,
) -> Result<&'k VerifyingKey, GrantError> {
    keyless_jose::select_key(&keys.keys, jwt.kid(), jwt.alg()).map_err(|e| match e {
        JoseError::UnknownKid(kid) => no_signing_key(format!(
            "The key with id '{}' was not found in the issuer's JWKS. If the issuer rotated its keys, retry in a few seconds.",
            printable(&kid),
        ))
        .with_operator_detail(format!(
            "The issuer's keys come from {} ({} keys).",
            keys.source,
            keys.keys.len()
        )),
        other => no_signing_key(format!("No usable signing key: {other}.")),
    })
}

/// The signature, with an allowed algorithm.
pub(crate) fn verify_signature(jwt: &UnverifiedJwt, key: &VerifyingKey) -> Result<(), GrantError> {
    jwt.verify(key, Alg::ASSERTION_ALLOWLIST)
        .map_err(bad_signature)
}

/// `exp`, `nbf`, `iat` within the leeway, and a bounded lifetime.
pub(crate) fn check_times(
    claims: &RegisteredClaims,
    now: i64,
    leeway_secs: i64,
) -> Result<(), GrantError> {
    let policy = TimePolicy {
        leeway_secs,
        max_lifetime_secs: MAX_ASSERTION_LIFETIME_SECS,
    };
    claims.check_times(now, policy).map_err(|e| time_error(&e))
}

/// The credential that accepts the verified assertion (audience, then subject or
/// expression), or the closest miss.
pub(crate) fn match_credential<'c>(
    snap: &Snapshot,
    creds: &[&'c FederatedCredentialRecord],
    a: &Assertion,
) -> Result<&'c FederatedCredentialRecord, GrantError> {
    find_match(creds, &a.presented(), &snap.expressions)
}
