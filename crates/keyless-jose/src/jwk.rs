//! JSON Web Keys (RFC 7517) as published in an issuer's JWKS, and the Kubernetes
//! key-id convention.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::digest::sha256;
use crate::error::{JoseError, Result};

/// One public JSON Web Key. Only the members Keyless uses are kept; any others
/// (`x5c`, `key_ops`, ...) are ignored on input and never used for anything.
///
/// This is a plain data type: nothing is validated until
/// [`VerifyingKey::from_jwk`](crate::VerifyingKey::from_jwk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Intended use; Keyless only uses keys whose `use` is absent or `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Key id, matched exactly against a token's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The one algorithm this key may be used with, if the publisher pinned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// RSA modulus, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve: `P-256`, `P-384` or `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or the Ed25519 public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

impl Jwk {
    /// Whether this key may be used for signatures (`use` absent or `"sig"`).
    pub fn is_for_signing(&self) -> bool {
        self.use_.as_deref().is_none_or(|u| u == "sig")
    }

    /// Whether `kty` is one this crate can verify with.
    pub fn has_known_kty(&self) -> bool {
        matches!(self.kty.as_str(), "RSA" | "EC" | "OKP")
    }
}

/// A JSON Web Key Set: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys, in document order.
    pub keys: Vec<Jwk>,
}

/// The raw shape of a JWKS document, before keys are filtered.
#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

impl JwkSet {
    /// Parses a JWKS document fetched from an issuer (untrusted input).
    ///
    /// Fails if the document is not `{"keys": [...]}` of objects or has more than
    /// `max_keys` entries (counted before filtering, so a huge list is refused
    /// outright). Entries with an unknown `kty`, a `use` other than `sig`, or
    /// members of the wrong JSON type are skipped rather than failing the set: one
    /// odd key must not take down an issuer whose other keys are fine. Skipped keys
    /// are not in the result.
    ///
    /// ```
    /// use keyless_jose::JwkSet;
    /// let doc = br#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","kid":"1"},
    ///                       {"kty":"RSA","use":"enc","n":"a","e":"AQAB"},
    ///                       {"kty":"oct","k":"c2VjcmV0"}]}"#;
    /// let set = JwkSet::parse(doc, 10).unwrap();
    /// assert_eq!(set.keys.len(), 1);
    /// assert!(JwkSet::parse(doc, 2).is_err());
    /// ```
    pub fn parse(bytes: &[u8], max_keys: usize) -> Result<JwkSet> {
        let raw: RawJwkSet =
            serde_json::from_slice(bytes).map_err(|e| JoseError::InvalidJwks(e.to_string()))?;
        if raw.keys.len() > max_keys {
            return Err(JoseError::TooManyKeys {
                count: raw.keys.len(),
                max: max_keys,
            });
        }
        let mut keys = Vec::with_capacity(raw.keys.len());
        for value in raw.keys {
            if !value.is_object() {
                return Err(JoseError::InvalidJwks(
                    "every entry of \"keys\" must be a JSON object".to_owned(),
                ));
            }
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if jwk.has_known_kty() && jwk.is_for_signing() {
                keys.push(jwk);
            }
        }
        Ok(JwkSet { keys })
    }

    /// The key with this exact `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The Kubernetes key id for a public key: base64url (no padding) of the SHA-256 of
/// its DER `SubjectPublicKeyInfo`. This is what the kube-apiserver puts in the `kid` of
/// service-account tokens, so using it lets Keyless' keys line up with that tooling.
pub fn kubernetes_kid(spki_der: &[u8]) -> String {
    b64::encode(&sha256(spki_der))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parse_skips_unusable_keys_and_ignores_unknown_members() {
        let doc = br#"{"keys":[
            {"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB","x5c":["MII..."],"key_ops":["verify"]},
            {"kty":"EC","use":"enc","crv":"P-256","x":"a","y":"b"},
            {"kty":"oct","k":"c2VjcmV0"},
            {"kty":"EC","kid":5},
            {"kty":"OKP","use":"sig","crv":"Ed25519","x":"a","kid":"o"}
        ],"extra":true}"#;
        let set = JwkSet::parse(doc, 5).unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("r"), Some("o")]);
        assert_eq!(set.find("o").unwrap().kty, "OKP");
        assert!(set.find("O").is_none());
    }

    #[test]
    fn parse_limits_key_count_before_filtering() {
        let entry = r#"{"kty":"oct"}"#;
        let doc = format!("{{\"keys\":[{}]}}", vec![entry; 101].join(","));
        assert!(matches!(
            JwkSet::parse(doc.as_bytes(), 100),
            Err(JoseError::TooManyKeys {
                count: 101,
                max: 100
            })
        ));
        assert!(JwkSet::parse(doc.as_bytes(), 101).is_ok());
    }

    #[test]
    fn parse_rejects_wrong_shapes() {
        for doc in [
            &br"[]"[..],
            br"{}",
            br#"{"keys":{}}"#,
            br#"{"keys":[1]}"#,
            br#"{"keys":[]"#,
        ] {
            assert!(matches!(
                JwkSet::parse(doc, 10),
                Err(JoseError::InvalidJwks(_))
            ));
        }
    }

    #[test]
    fn serialises_without_absent_members() {
        let jwk = Jwk {
            kty: "EC".into(),
            use_: Some("sig".into()),
            kid: Some("k".into()),
            alg: Some("ES256".into()),
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some("x".into()),
            y: Some("y".into()),
        };
        assert_eq!(
            serde_json::to_string(&jwk).unwrap(),
            r#"{"kty":"EC","use":"sig","kid":"k","alg":"ES256","crv":"P-256","x":"x","y":"y"}"#
        );
    }
}
