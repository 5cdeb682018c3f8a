//! One fetch of an issuer's discovery document and JWKS, with the checks that make
//! the keys the issuer's own: the document names the issuer exactly and its
//! `jwks_uri` is on the issuer's host.

use keyless_jose::{JwkSet, VerifyingKey};

use super::{IssuerError, IssuerKeys};
use crate::federation::fetcher::MetadataFetcher;

fn origin(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    Some(rest.split(['/', '?', '#']).next().unwrap_or_default()).filter(|h| !h.is_empty())
}

/// Fetches and checks `issuer`'s keys; `now` becomes their `fetched_at`.
pub(super) async fn fetch_keys(
    fetcher: &dyn MetadataFetcher,
    issuer: &str,
    max_keys: usize,
    now: impl Fn() -> i64,
) -> Result<IssuerKeys, IssuerError> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = fetcher.get(&discovery_url).await?;
    let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        IssuerError::Invalid(format!(
            "the discovery document at {discovery_url} is not JSON: {e}"
        ))
    })?;
    let published = doc
        .get("issuer")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if published != issuer {
        return Err(IssuerError::Invalid(format!(
            "the discovery document at {discovery_url} names issuer '{published}', not '{issuer}'"
        )));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            IssuerError::Invalid(format!(
                "the discovery document at {discovery_url} has no jwks_uri"
            ))
        })?;
    if origin(jwks_uri).is_none() || origin(jwks_uri) != origin(issuer) {
        return Err(IssuerError::Invalid(format!(
            "jwks_uri '{jwks_uri}' is not an https URL on the issuer's host"
        )));
    }
    let jwks_body = fetcher.get(jwks_uri).await?;
    let set = JwkSet::parse(&jwks_body, max_keys)
        .map_err(|e| IssuerError::Invalid(format!("the JWKS at {jwks_uri} is invalid: {e}")))?;
    let (keys, bad) = VerifyingKey::from_jwk_set(&set);
    for (kid, err) in bad {
        tracing::info!(issuer, kid = ?kid, error = %err, "skipping unusable key");
    }
    tracing::info!(issuer, keys = keys.len(), "issuer keys fetched");
    Ok(IssuerKeys {
        issuer: issuer.to_string(),
        keys,
        fetched_at: now(),
        source: jwks_uri.to_string(),
    })
}
