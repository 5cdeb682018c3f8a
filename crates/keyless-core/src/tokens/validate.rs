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

/// What a resource accepts of a token's times.
#[derive(Debug, Clone, Copy)]
pub struct TimeRules {
    /// The server time (Unix seconds).
    pub now: i64,
    /// Clock skew tolerated on `nbf`, `exp` and the lifetime, seconds.
    pub leeway: i64,
    /// The longest lifetime (`exp - iat`) Keyless mints, seconds. A token that claims
    /// more was not minted by this server's rules (a key leaked and was used to forge
    /// a long-lived token), so it is refused even with a valid signature.
    pub max_lifetime: i64,
}

/// Validates `token` for the resource whose audience is `audience` (a trailing `/` on
/// either side is ignored).
pub fn validate_access_token(
    token: &str,
    ring: &KeyRing,
    public: &PublicUrl,
    audience: &str,
    times: TimeRules,
) -> Result<Caller, TokenRejection> {
    validate_with_details(token, ring, public, audience, times).map(|v| v.caller)
}

/// A token that passed every check, and what a later request with the same token
/// must still check: its times and that its key is still published.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    pub(crate) caller: Caller,
    pub(crate) kid: String,
    pub(crate) nbf: i64,
    pub(crate) exp: i64,
}

/// The times check of [`validate_access_token`], on its own.
pub(crate) fn check_times(nbf: i64, exp: i64, now: i64, leeway: i64) -> Result<(), TokenRejection> {
    if now.saturating_add(leeway) < nbf || now.saturating_sub(leeway) >= exp {
        return Err(TokenRejection::Expired { nbf, exp, now });
    }
    Ok(())
}

pub(crate) fn validate_with_details(
    token: &str,
    ring: &KeyRing,
    public: &PublicUrl,
    audience: &str,
    times: TimeRules,
) -> Result<Validated, TokenRejection> {
    let TimeRules {
        now,
        leeway,
        max_lifetime,
    } = times;
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
    let iat = int_claim(c, "iat")?;
    if exp.saturating_sub(iat) > max_lifetime.saturating_add(leeway) || iat > exp {
        return Err(TokenRejection::InvalidClaims(format!(
            "the token's lifetime (iat {iat}, exp {exp}) exceeds the {max_lifetime} seconds this server issues"
        )));
    }
    check_times(nbf, exp, now, leeway)?;
    let caller = Caller {
        tenant_id: tid.to_string(),
        object_id: str_claim(c, "oid")?.to_string(),
        app_id: c
            .get("appid")
            .or_else(|| c.get("azp"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
    };
    Ok(Validated {
        caller,
        kid: key.record.kid.clone(),
        nbf,
        exp,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use keyless_jose::{Alg, Kek};

    use super::*;
    use crate::tokens::AccessTokenClaims;

    const TENANT: &str = "7f3e1c9a-0000-4000-8000-000000000001";
    const NOW: i64 = 1_800_000_000;
    const LIFETIME: i64 = 3600;

    fn public() -> PublicUrl {
        PublicUrl {
            host: "keyless.test".into(),
            port: 8443,
        }
    }

    fn ring() -> KeyRing {
        let kek = Kek::generate().unwrap();
        let rec = KeyRing::generate(TENANT, Alg::ES256, NOW - 100, NOW - 100, &kek).unwrap();
        KeyRing::load(vec![rec], &kek).unwrap()
    }

    /// A token signed with the tenant's real key (as a leaked key would sign it).
    fn signed(ring: &KeyRing, iat: i64, exp: i64) -> String {
        let public = public();
        let claims = AccessTokenClaims {
            aud: public.resource_manager(),
            iss: public.issuer_v1(TENANT),
            iat,
            nbf: iat,
            exp,
            appid: "app".into(),
            appidacr: "2".into(),
            idtyp: "app".into(),
            oid: "oid".into(),
            sub: "oid".into(),
            tid: TENANT.into(),
            uti: "u".into(),
            ver: "1.0".into(),
            xms_mirid: None,
        };
        ring.signer(TENANT, NOW)
            .unwrap()
            .signer
            .sign_jwt("JWT", &claims)
            .unwrap()
    }

    fn validate(ring: &KeyRing, token: &str) -> Result<Caller, TokenRejection> {
        let public = public();
        validate_access_token(
            token,
            ring,
            &public,
            &public.resource_manager(),
            TimeRules {
                now: NOW,
                leeway: 60,
                max_lifetime: LIFETIME,
            },
        )
    }

    #[test]
    fn a_token_of_the_configured_lifetime_is_accepted() {
        let ring = ring();
        let caller = validate(&ring, &signed(&ring, NOW - 10, NOW - 10 + LIFETIME)).unwrap();
        assert_eq!(caller.tenant_id, TENANT);
        // The leeway covers clock skew on the lifetime too.
        assert!(validate(&ring, &signed(&ring, NOW - 10, NOW - 10 + LIFETIME + 60)).is_ok());
    }

    #[test]
    fn a_forged_long_lived_token_is_refused_despite_a_valid_signature() {
        let ring = ring();
        let year = 365 * 24 * 3600;
        match validate(&ring, &signed(&ring, NOW - 10, NOW + year)) {
            Err(TokenRejection::InvalidClaims(m)) => assert!(m.contains("lifetime"), "{m}"),
            other => panic!("a year-long token must be refused, got {other:?}"),
        }
        match validate(&ring, &signed(&ring, NOW - 10, NOW - 10 + LIFETIME + 61)) {
            Err(TokenRejection::InvalidClaims(_)) => {}
            other => panic!("one second beyond lifetime + leeway must be refused, got {other:?}"),
        }
        // iat after exp is not a lifetime at all.
        assert!(validate(&ring, &signed(&ring, NOW + 100, NOW + 50)).is_err());
    }
}
