//! Validation of Keyless-issued access tokens by Keyless' own resources: signature by
//! a published key of the token's tenant, issuer, tenant, audience and times.

use keyless_jose::UnverifiedJwt;

use super::MAX_TOKEN_BYTES;
use crate::keyring::KeyRing;
use crate::settings::PublicUrl;

/// The authenticated caller of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Tenant id.
    pub tenant_id: String,
    /// Object id (RBAC principal).
    pub object_id: String,
    /// Client id.
    pub app_id: String,
}

/// Why a bearer token was refused. The text is safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a parsable token.
    #[error("the access token is malformed: {0}")]
    Malformed(String),
    /// Signed by no key Keyless publishes.
    #[error("the access token's signing key is unknown (kid {0:?})")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("the access token's signature is invalid")]
    BadSignature,
    /// Claims are missing or inconsistent.
    #[error("the access token is invalid: {0}")]
    InvalidClaims(String),
    /// Issued for another resource.
    #[error(
        "the access token's audience '{found}' is not valid for this resource (expected '{expected}')"
    )]
    WrongAudience {
        /// `aud` of the token.
        found: String,
        /// Audience of this resource.
        expected: String,
    },
    /// Expired or not yet valid.
    #[error("the access token is expired or not yet valid (nbf {nbf}, exp {exp}, now {now})")]
    Expired {
        /// Not before.
        nbf: i64,
        /// Expiry.
        exp: i64,
        /// Server time.
        now: i64,
    },
}

fn str_claim<'a>(
    c: &'a serde_json::Map<String, serde_json::Value>,
    k: &str,
) -> Result<&'a str, TokenRejection> {
    c.get(k).and_then(|v| v.as_str()).ok_or_else(|| {
        TokenRejection::InvalidClaims(format!("claim '{k}' is missing or not a string"))
    })
}

fn int_claim(
    c: &serde_json::Map<String, serde_json::Value>,
    k: &str,
) -> Result<i64, TokenRejection> {
    c.get(k).and_then(|v| v.as_i64()).ok_or_else(|| {
        TokenRejection::InvalidClaims(format!("claim '{k}' is missing or not an integer"))
    })
}

/// Validates `token` for the resource whose audience is `audience` (a trailing `/` on
/// either side is ignored).
pub fn validate_access_token(
    token: &str,
    ring: &KeyRing,
    public: &PublicUrl,
    audience: &str,
    now: i64,
    leeway: i64,
) -> Result<Caller, TokenRejection> {
    let jwt = UnverifiedJwt::parse(token, MAX_TOKEN_BYTES)
        .map_err(|e| TokenRejection::Malformed(e.to_string()))?;
    let kid = jwt.kid().map(str::to_string);
    let key = kid
        .as_deref()
        .and_then(|k| ring.by_kid(k))
        .ok_or_else(|| TokenRejection::UnknownKey(kid.clone()))?;
    jwt.verify(&key.verifier, &[key.signer.alg()])
        .map_err(|_| TokenRejection::BadSignature)?;
    let c = jwt.claims();
    let tid = str_claim(c, "tid")?;
    if tid != key.record.tenant_id {
        return Err(TokenRejection::InvalidClaims(
            "the token's tenant does not match its signing key".into(),
        ));
    }
    let iss = str_claim(c, "iss")?;
    if iss != public.issuer_v1(tid) && iss != public.issuer_v2(tid) {
        return Err(TokenRejection::InvalidClaims(format!(
            "issuer '{iss}' is not this server's"
        )));
    }
    let aud = str_claim(c, "aud")?;
    if aud.trim_end_matches('/') != audience.trim_end_matches('/') {
        return Err(TokenRejection::WrongAudience {
            found: aud.to_string(),
            expected: audience.to_string(),
        });
    }
    let (nbf, exp) = (int_claim(c, "nbf")?, int_claim(c, "exp")?);
    if now + leeway < nbf || now - leeway >= exp {
        return Err(TokenRejection::Expired { nbf, exp, now });
    }
    Ok(Caller {
        tenant_id: tid.to_string(),
        object_id: str_claim(c, "oid")?.to_string(),
        app_id: c
            .get("appid")
            .or_else(|| c.get("azp"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
    })
}
