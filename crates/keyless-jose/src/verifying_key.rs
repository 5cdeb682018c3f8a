//! Public keys parsed once from a JWK, ready for repeated verification.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};

use crate::alg::{Alg, KeyFamily};
use crate::b64;
use crate::error::{JoseError, Result};
use crate::jwk::{Jwk, JwkSet};

/// RSA moduli outside this range are refused when the key is loaded: smaller ones are
/// weak, larger ones make every verification slow (a cheap DoS for a hostile issuer).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// A public key from a JWKS, validated and parsed once so the hot path does no key
/// decoding. Cheap to share behind an `Arc`; `Send + Sync`.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    family: KeyFamily,
    /// The algorithm the JWK pinned, if any.
    alg: Option<Alg>,
    material: Material,
}

/// aws-lc binds a parsed key to one algorithm, so an RSA key, usable with six, is
/// parsed six times up front (microseconds each, once per JWKS refresh).
#[derive(Clone)]
enum Material {
    Rsa(Box<RsaKeys>),
    Ec(ParsedPublicKey),
    Ed25519(ParsedPublicKey),
}

#[derive(Clone)]
struct RsaKeys {
    rs256: ParsedPublicKey,
    rs384: ParsedPublicKey,
    rs512: ParsedPublicKey,
    ps256: ParsedPublicKey,
    ps384: ParsedPublicKey,
    ps512: ParsedPublicKey,
}

impl VerifyingKey {
    /// Validates and parses a JWK.
    ///
    /// Rules: `use`, if present, must be `sig`; `kty` must be `RSA`, `EC` or `OKP`;
    /// RSA moduli must be 2048 to 8192 bits; EC keys must be on the curve named by
    /// `crv` (P-256 or P-384) with full-length coordinates; OKP keys must be Ed25519.
    /// If `alg` is present it must be one of [`Alg`] and fit the key type.
    pub fn from_jwk(jwk: &Jwk) -> Result<VerifyingKey> {
        if !jwk.is_for_signing() {
            return Err(JoseError::UnsupportedJwk {
                field: "use",
                value: crate::token::clip(jwk.use_.as_deref().unwrap_or_default()),
            });
        }
        let (family, material) = match jwk.kty.as_str() {
            "RSA" => (KeyFamily::Rsa, rsa_material(jwk)?),
            "EC" => ec_material(jwk)?,
            "OKP" => (KeyFamily::OkpEd25519, okp_material(jwk)?),
            other => {
                return Err(JoseError::UnsupportedJwk {
                    field: "kty",
                    value: crate::token::clip(other),
                });
            }
        };
        let alg = match jwk.alg.as_deref() {
            None => None,
            Some(name) => {
                let alg = Alg::from_name(name).ok_or_else(|| JoseError::UnsupportedJwk {
                    field: "alg",
                    value: crate::token::clip(name),
                })?;
                if alg.family() != family {
                    return Err(JoseError::KeyAlgMismatch { alg, family });
                }
                Some(alg)
            }
        };
        Ok(VerifyingKey {
            kid: jwk.kid.clone(),
            family,
            alg,
            material,
        })
    }

    /// Parses every key of a set, returning the usable keys and the errors for the rest
    /// (with their `kid`), so a caller can log a bad key without losing the good ones.
    pub fn from_jwk_set(set: &JwkSet) -> (Vec<VerifyingKey>, Vec<(Option<String>, JoseError)>) {
        let mut keys = Vec::with_capacity(set.keys.len());
        let mut rejected = Vec::new();
        for jwk in &set.keys {
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) => keys.push(key),
                Err(e) => rejected.push((jwk.kid.clone(), e)),
            }
        }
        (keys, rejected)
    }

    /// The key id, if the JWK had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's family, which determines the algorithms it can verify.
    pub fn family(&self) -> KeyFamily {
        self.family
    }

    /// The algorithm the JWK pinned with `alg`, if any.
    pub fn pinned_alg(&self) -> Option<Alg> {
        self.alg
    }

    /// Whether this key may verify `alg`: same family, and the pinned alg if any.
    pub fn accepts(&self, alg: Alg) -> bool {
        alg.family() == self.family && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// The DER `SubjectPublicKeyInfo`, e.g. for [`kubernetes_kid`](crate::kubernetes_kid).
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        let parsed = match &self.material {
            Material::Rsa(keys) => &keys.rs256,
            Material::Ec(k) | Material::Ed25519(k) => k,
        };
        parsed
            .as_der()
            .map(|der| der.as_ref().to_vec())
            .map_err(|_| JoseError::Crypto("encoding public key"))
    }

    /// Checks `signature` over `message` for `alg`. The caller has already checked
    /// policy (allowlist, family, pinned alg); a family mismatch here is still
    /// refused rather than trusted.
    pub(crate) fn verify_signature(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<()> {
        let parsed = match (&self.material, alg) {
            (Material::Rsa(k), Alg::RS256) => &k.rs256,
            (Material::Rsa(k), Alg::RS384) => &k.rs384,
            (Material::Rsa(k), Alg::RS512) => &k.rs512,
            (Material::Rsa(k), Alg::PS256) => &k.ps256,
            (Material::Rsa(k), Alg::PS384) => &k.ps384,
            (Material::Rsa(k), Alg::PS512) => &k.ps512,
            (Material::Ec(k), Alg::ES256) if self.family == KeyFamily::EcP256 => k,
            (Material::Ec(k), Alg::ES384) if self.family == KeyFamily::EcP384 => k,
            (Material::Ed25519(k), Alg::EdDSA) => k,
            _ => {
                return Err(JoseError::KeyAlgMismatch {
                    alg,
                    family: self.family,
                });
            }
        };
        parsed
            .verify_sig(message, sig)
            .map_err(|_| JoseError::BadSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn decode_member(value: Option<&String>, what: &'static str) -> Result<Vec<u8>> {
    let text = value.ok_or(JoseError::InvalidJwk(what))?;
    b64::decode(text).ok_or(JoseError::InvalidJwk(what))
}

fn rsa_material(jwk: &Jwk) -> Result<Material> {
    let n = decode_member(jwk.n.as_ref(), "RSA key needs base64url \"n\"")?;
    let e = decode_member(jwk.e.as_ref(), "RSA key needs base64url \"e\"")?;
    // RFC 7518 forbids leading zero octets, but some publishers emit one; aws-lc
    // rejects them, so strip rather than refuse an otherwise valid key.
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = bit_length(n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(JoseError::RsaKeySize { bits });
    }
    // aws-lc would refuse such exponents only at verification time, surfacing as a
    // confusing "bad signature"; refusing here names the real problem when the key
    // is loaded. (Every real key uses 65537.)
    let exponent = (e.len() <= 4).then(|| e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)));
    if exponent.is_none_or(|v| v < 3 || v % 2 == 0) {
        return Err(JoseError::InvalidJwk(
            "RSA exponent must be odd, at least 3 and at most 32 bits",
        ));
    }
    let components = RsaPublicKeyComponents { n, e };
    let parse = |params| components.to_parsed_public_key(params);
    Ok(Material::Rsa(Box::new(RsaKeys {
        rs256: parse(&signature::RSA_PKCS1_2048_8192_SHA256)?,
        rs384: parse(&signature::RSA_PKCS1_2048_8192_SHA384)?,
        rs512: parse(&signature::RSA_PKCS1_2048_8192_SHA512)?,
        ps256: parse(&signature::RSA_PSS_2048_8192_SHA256)?,
        ps384: parse(&signature::RSA_PSS_2048_8192_SHA384)?,
        ps512: parse(&signature::RSA_PSS_2048_8192_SHA512)?,
    })))
}

fn ec_material(jwk: &Jwk) -> Result<(KeyFamily, Material)> {
    let (family, coord_len, alg) = match jwk.crv.as_deref() {
        Some("P-256") => (KeyFamily::EcP256, 32, &signature::ECDSA_P256_SHA256_FIXED),
        Some("P-384") => (KeyFamily::EcP384, 48, &signature::ECDSA_P384_SHA384_FIXED),
        Some(other) => {
            return Err(JoseError::UnsupportedJwk {
                field: "crv",
                value: crate::token::clip(other),
            });
        }
        None => return Err(JoseError::InvalidJwk("EC key needs \"crv\"")),
    };
    let x = decode_member(jwk.x.as_ref(), "EC key needs base64url \"x\"")?;
    let y = decode_member(jwk.y.as_ref(), "EC key needs base64url \"y\"")?;
    // RFC 7518 §6.2.1.2: coordinates are always the full field size.
    if x.len() != coord_len || y.len() != coord_len {
        return Err(JoseError::InvalidJwk(
            "EC coordinates must be exactly the curve's field size",
        ));
    }
    // Uncompressed SEC1 point; aws-lc checks that it lies on the curve.
    let mut point = Vec::with_capacity(1 + 2 * coord_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((family, Material::Ec(ParsedPublicKey::new(alg, point)?)))
}

fn okp_material(jwk: &Jwk) -> Result<Material> {
    match jwk.crv.as_deref() {
        Some("Ed25519") => {}
        Some(other) => {
            return Err(JoseError::UnsupportedJwk {
                field: "crv",
                value: crate::token::clip(other),
            });
        }
        None => return Err(JoseError::InvalidJwk("OKP key needs \"crv\"")),
    }
    let x = decode_member(jwk.x.as_ref(), "OKP key needs base64url \"x\"")?;
    if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
        return Err(JoseError::InvalidJwk("Ed25519 public key must be 32 bytes"));
    }
    Ok(Material::Ed25519(ParsedPublicKey::new(
        &signature::ED25519,
        x,
    )?))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_length(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(first) => (be.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn ec_jwk(crv: &str, x: &[u8], y: &[u8]) -> Jwk {
        Jwk {
            kty: "EC".into(),
            use_: None,
            kid: None,
            alg: None,
            n: None,
            e: None,
            crv: Some(crv.into()),
            x: Some(b64::encode(x)),
            y: Some(b64::encode(y)),
        }
    }

    #[test]
    fn bit_length_counts_from_top_bit() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(strip_leading_zeros(&[0, 0, 5]), &[5]);
        assert_eq!(strip_leading_zeros(&[0, 0]), &[] as &[u8]);
    }

    #[test]
    fn rejects_small_rsa_modulus() {
        let mut n = vec![0xff; 255]; // 2040 bits
        n[254] |= 1;
        let jwk = Jwk {
            kty: "RSA".into(),
            use_: None,
            kid: None,
            alg: None,
            n: Some(b64::encode(&n)),
            e: Some("AQAB".into()),
            crv: None,
            x: None,
            y: None,
        };
        assert!(matches!(
            VerifyingKey::from_jwk(&jwk),
            Err(JoseError::RsaKeySize { bits: 2040 })
        ));
    }

    #[test]
    fn rejects_point_off_curve_and_short_coordinates() {
        assert!(matches!(
            VerifyingKey::from_jwk(&ec_jwk("P-256", &[1; 32], &[2; 32])),
            Err(JoseError::KeyRejected(_))
        ));
        assert!(matches!(
            VerifyingKey::from_jwk(&ec_jwk("P-256", &[1; 31], &[2; 32])),
            Err(JoseError::InvalidJwk(_))
        ));
        assert!(matches!(
            VerifyingKey::from_jwk(&ec_jwk("P-521", &[1; 66], &[2; 66])),
            Err(JoseError::UnsupportedJwk { field: "crv", .. })
        ));
    }

    #[test]
    fn verifying_key_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<VerifyingKey>();
    }
}
