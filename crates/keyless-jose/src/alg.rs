//! The JWS algorithms Keyless implements and the key family each one needs.

use std::fmt;

/// A JWS signature algorithm (RFC 7518 §3, RFC 8037 for EdDSA).
///
/// Only asymmetric algorithms exist here: `none` and `HS*` are not representable, so
/// no code path can accidentally accept them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 (salt length 32).
    PS256,
    /// RSASSA-PSS with SHA-384 (salt length 48).
    PS384,
    /// RSASSA-PSS with SHA-512 (salt length 64).
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519 (the only EdDSA curve accepted).
    EdDSA,
}

/// The kind of key an algorithm needs. EC curves are separate families because an
/// ES256 token must never be checked with a P-384 key or vice versa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFamily {
    /// RSA (`kty: RSA`).
    Rsa,
    /// EC on P-256 (`kty: EC, crv: P-256`).
    EcP256,
    /// EC on P-384 (`kty: EC, crv: P-384`).
    EcP384,
    /// Ed25519 (`kty: OKP, crv: Ed25519`).
    OkpEd25519,
}

impl Alg {
    /// Every algorithm accepted for incoming assertions (see SECURITY.md).
    pub const ASSERTION_ALLOWLIST: &'static [Alg] = &[
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// Looks up an algorithm by its exact, case-sensitive JOSE name.
    ///
    /// ```
    /// use keyless_jose::Alg;
    /// assert_eq!(Alg::from_name("ES256"), Some(Alg::ES256));
    /// assert_eq!(Alg::from_name("es256"), None);
    /// assert_eq!(Alg::from_name("HS256"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    /// The JOSE name, as it appears in a header's `alg`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// The key family that can sign and verify this algorithm.
    pub const fn family(self) -> KeyFamily {
        match self {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                KeyFamily::Rsa
            }
            Alg::ES256 => KeyFamily::EcP256,
            Alg::ES384 => KeyFamily::EcP384,
            Alg::EdDSA => KeyFamily::OkpEd25519,
        }
    }
}

impl KeyFamily {
    /// The JWK `kty` of keys in this family.
    pub const fn kty(self) -> &'static str {
        match self {
            KeyFamily::Rsa => "RSA",
            KeyFamily::EcP256 | KeyFamily::EcP384 => "EC",
            KeyFamily::OkpEd25519 => "OKP",
        }
    }

    /// The JWK `crv`, for families that have one.
    pub const fn crv(self) -> Option<&'static str> {
        match self {
            KeyFamily::Rsa => None,
            KeyFamily::EcP256 => Some("P-256"),
            KeyFamily::EcP384 => Some("P-384"),
            KeyFamily::OkpEd25519 => Some("Ed25519"),
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for KeyFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFamily::Rsa => "RSA",
            KeyFamily::EcP256 => "EC P-256",
            KeyFamily::EcP384 => "EC P-384",
            KeyFamily::OkpEd25519 => "OKP Ed25519",
        })
    }
}

impl std::str::FromStr for Alg {
    type Err = crate::JoseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alg::from_name(s).ok_or_else(|| crate::JoseError::UnsupportedAlg(crate::token::clip(s)))
    }
}

impl serde::Serialize for Alg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Alg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Borrow when possible; fall back to an owned string for escaped input.
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Alg::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "unsupported JWS algorithm {:?}",
                crate::token::clip(&name)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip_exactly() {
        for alg in Alg::ASSERTION_ALLOWLIST {
            assert_eq!(Alg::from_name(alg.as_str()), Some(*alg));
            assert_eq!(alg.to_string(), alg.as_str());
            let json = serde_json::to_string(alg).unwrap();
            assert_eq!(json, format!("\"{}\"", alg.as_str()));
            assert_eq!(serde_json::from_str::<Alg>(&json).unwrap(), *alg);
        }
        for bad in [
            "none", "HS256", "rs256", "ES512", "ES256K", "Ed25519", " RS256", "",
        ] {
            assert_eq!(Alg::from_name(bad), None, "{bad}");
        }
        assert!(serde_json::from_str::<Alg>("\"HS256\"").is_err());
    }

    #[test]
    fn families() {
        assert_eq!(Alg::PS384.family(), KeyFamily::Rsa);
        assert_eq!(Alg::ES256.family(), KeyFamily::EcP256);
        assert_eq!(Alg::ES384.family(), KeyFamily::EcP384);
        assert_eq!(Alg::EdDSA.family(), KeyFamily::OkpEd25519);
        assert_eq!(KeyFamily::EcP384.crv(), Some("P-384"));
        assert_eq!(KeyFamily::OkpEd25519.kty(), "OKP");
    }
}
