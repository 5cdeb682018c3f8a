//! What an access token says about the identity it was issued to.
//!
//! The token is read, not verified: it came from Keyless over TLS a moment ago, and
//! what is read only decides whether a caller that named an identity named this one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Largest token decoded (Keyless tokens are about 1.5 KiB).
const MAX_TOKEN: usize = 64 * 1024;

/// The identity claims of an access token; absent when the token does not carry them
/// or is not a readable JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IdentityClaims {
    /// `oid`: the identity's object (principal) id.
    pub object_id: Option<String>,
    /// `xms_mirid`: the identity's resource id.
    pub resource_id: Option<String>,
    /// `nbf`, Unix seconds.
    pub not_before: Option<u64>,
}

impl IdentityClaims {
    /// Reads the claims of a JWT's payload.
    pub(crate) fn of(token: &str) -> Self {
        if token.len() > MAX_TOKEN {
            return Self::default();
        }
        let mut parts = token.split('.');
        let (Some(_header), Some(payload)) = (parts.next(), parts.next()) else {
            return Self::default();
        };
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
            return Self::default();
        };
        let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice(&bytes) else {
            return Self::default();
        };
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self {
            object_id: text("oid"),
            resource_id: text("xms_mirid"),
            not_before: claims.get("nbf").and_then(serde_json::Value::as_u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_oid_mirid_and_nbf() {
        let claims = IdentityClaims::of(&jwt(
            r#"{"oid":"o-1","xms_mirid":"/subscriptions/s/x","nbf":1700000000}"#,
        ));
        assert_eq!(claims.object_id.as_deref(), Some("o-1"));
        assert_eq!(claims.resource_id.as_deref(), Some("/subscriptions/s/x"));
        assert_eq!(claims.not_before, Some(1_700_000_000));
    }

    #[test]
    fn unreadable_tokens_carry_no_claims() {
        for token in ["", "opaque", "a.!!!.c", &jwt("[1]"), &jwt(r#"{"oid":5}"#)] {
            let claims = IdentityClaims::of(token);
            assert_eq!(claims.object_id, None, "{token}");
        }
        assert_eq!(
            IdentityClaims::of(&"a".repeat(MAX_TOKEN + 1)),
            IdentityClaims::default()
        );
    }
}
