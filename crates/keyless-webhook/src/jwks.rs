//! A JWKS from PEM keys, for clusters that publish their own service-account issuer
//! discovery documents (`keyless jwks --public-key FILE`, like `azwi jwks`).
//!
//! Accepts public keys (`PUBLIC KEY`, `RSA PUBLIC KEY`) and private keys (`PRIVATE KEY`,
//! `RSA PRIVATE KEY`, `EC PRIVATE KEY`; only their public half is used), RSA and ECDSA
//! P-256/P-384/P-521. The `kid` is the kube-apiserver's: base64url(SHA-256(DER
//! SubjectPublicKeyInfo)), so it matches the `kid` in the cluster's tokens.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair, RsaKeyPair,
};
use base64::Engine;
use keyless_jose::{Jwk, kubernetes_kid};

/// Why a key could not be turned into a JWK.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not PEM.
    #[error("not PEM: {0}")]
    Pem(String),
    /// No key in the PEM.
    #[error(
        "no PEM key found (expected PUBLIC KEY, RSA PUBLIC KEY, PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
    )]
    Empty,
    /// A section of an unsupported kind.
    #[error("unsupported PEM section {0:?}")]
    Section(String),
    /// A key that could not be parsed or is of an unsupported type.
    #[error("{section}: {detail}")]
    Key {
        /// PEM label.
        section: String,
        /// What is wrong.
        detail: String,
    },
}

const RSA_OID: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const EC_OID: &[u64] = &[1, 2, 840, 10045, 2, 1];
const CURVES: [(&[u64], &str, &str, usize); 3] = [
    (&[1, 2, 840, 10045, 3, 1, 7], "P-256", "ES256", 32),
    (&[1, 3, 132, 0, 34], "P-384", "ES384", 48),
    (&[1, 3, 132, 0, 35], "P-521", "ES512", 66),
];

/// One JWK per key in the PEM text, in order.
pub fn jwks_from_pem(pem_text: &[u8]) -> Result<Vec<Jwk>, JwksError> {
    let sections = pem::parse_many(pem_text).map_err(|e| JwksError::Pem(e.to_string()))?;
    if sections.is_empty() {
        return Err(JwksError::Empty);
    }
    sections
        .iter()
        .map(|s| {
            let tag = s.tag();
            let key_err = |detail: String| JwksError::Key {
                section: tag.to_owned(),
                detail,
            };
            let spki = match tag {
                "PUBLIC KEY" => s.contents().to_vec(),
                "RSA PUBLIC KEY" => aws_lc_rs::rsa::PublicKey::from_der(s.contents())
                    .map_err(|e| key_err(e.to_string()))
                    .and_then(|k| spki_der(&k).map_err(key_err))?,
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                    private_to_spki(tag, s.contents()).map_err(key_err)?
                }
                other => return Err(JwksError::Section(other.to_owned())),
            };
            jwk_from_spki(&spki).map_err(key_err)
        })
        .collect()
}

fn spki_der(
    key: &impl AsDer<aws_lc_rs::encoding::PublicKeyX509Der<'static>>,
) -> Result<Vec<u8>, String> {
    key.as_der()
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| "cannot encode the public key".to_owned())
}

fn private_to_spki(tag: &str, der: &[u8]) -> Result<Vec<u8>, String> {
    let rsa = match tag {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(der).ok(),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(der).ok(),
        _ => None,
    };
    if let Some(k) = rsa {
        return spki_der(k.public_key());
    }
    let algs: [&'static EcdsaSigningAlgorithm; 3] = [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        &ECDSA_P521_SHA512_ASN1_SIGNING,
    ];
    for alg in algs {
        if let Ok(k) = EcdsaKeyPair::from_private_key_der(alg, der) {
            return spki_der(k.public_key());
        }
    }
    Err("not an RSA or ECDSA (P-256, P-384, P-521) private key".to_owned())
}

/// The JWK of a DER SubjectPublicKeyInfo (RSA or EC), with `use`, `alg` and the
/// Kubernetes `kid`.
pub fn jwk_from_spki(spki: &[u8]) -> Result<Jwk, String> {
    let bad = |e: yasna::ASN1Error| format!("not a SubjectPublicKeyInfo: {e}");
    let (oid, params, bits) = yasna::parse_der(spki, |r| {
        r.read_sequence(|r| {
            let (oid, params) = r.next().read_sequence(|r| {
                let oid = r.next().read_oid()?;
                let params = r.read_optional(|r| r.read_der())?;
                Ok((oid, params))
            })?;
            let bits = r.next().read_tagged_der()?;
            Ok((oid, params, bits.value().to_vec()))
        })
    })
    .map_err(bad)?;
    // A BIT STRING's first octet counts unused bits; a key uses whole octets.
    let key = match bits.split_first() {
        Some((0, rest)) => rest,
        _ => return Err("the public key BIT STRING is malformed".to_owned()),
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let kid = Some(kubernetes_kid(spki));
    let components = oid.components().as_slice();
    if components == RSA_OID {
        let (n, e) = yasna::parse_der(key, |r| {
            r.read_sequence(|r| {
                let n = r.next().read_bigint_bytes()?;
                let e = r.next().read_bigint_bytes()?;
                Ok((n, e))
            })
        })
        .map_err(|e| format!("not an RSA public key: {e}"))?;
        let strip = |b: &[u8]| {
            b.iter()
                .skip_while(|x| **x == 0)
                .copied()
                .collect::<Vec<u8>>()
        };
        return Ok(Jwk {
            kty: "RSA".to_owned(),
            use_: Some("sig".to_owned()),
            kid,
            alg: Some("RS256".to_owned()),
            n: Some(b64(&strip(&n.0))),
            e: Some(b64(&strip(&e.0))),
            crv: None,
            x: None,
            y: None,
        });
    }
    if components == EC_OID {
        let curve_oid = params
            .and_then(|p| yasna::parse_der(&p, |r| r.read_oid()).ok())
            .ok_or_else(|| "an EC key without a named curve".to_owned())?;
        let (_, crv, alg, len) = CURVES
            .iter()
            .find(|(oid, ..)| curve_oid.components().as_slice() == *oid)
            .ok_or_else(|| format!("unsupported EC curve {curve_oid}"))?;
        let point = match key.split_first() {
            Some((4, xy)) if xy.len() == 2 * len => xy,
            _ => return Err("only uncompressed EC points are supported".to_owned()),
        };
        let (x, y) = point.split_at(*len);
        return Ok(Jwk {
            kty: "EC".to_owned(),
            use_: Some("sig".to_owned()),
            kid,
            alg: Some((*alg).to_owned()),
            n: None,
            e: None,
            crv: Some((*crv).to_owned()),
            x: Some(b64(x)),
            y: Some(b64(y)),
        });
    }
    Err(format!("unsupported key algorithm {oid}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_jose::VerifyingKey;

    fn pem(tag: &str, der: &[u8]) -> String {
        pem::encode(&pem::Pem::new(tag, der.to_vec()))
    }

    #[test]
    fn rsa_private_and_public_give_the_same_jwk() {
        let key = keyless_jose::SigningKey::generate(keyless_jose::Alg::RS256, "x".into()).unwrap();
        let private = pem("PRIVATE KEY", key.pkcs8_der());
        let public = pem("PUBLIC KEY", key.public_spki_der());
        let both = format!("{private}{public}");
        let jwks = jwks_from_pem(both.as_bytes()).unwrap();
        assert_eq!(jwks.len(), 2);
        assert_eq!(jwks[0], jwks[1]);
        let jwk = &jwks[0];
        assert_eq!(
            jwk.kid.as_deref(),
            Some(kubernetes_kid(key.public_spki_der()).as_str())
        );
        assert_eq!(jwk.alg.as_deref(), Some("RS256"));
        assert_eq!(jwk.e.as_deref(), Some("AQAB"));
        // The JWK round-trips to the same key (same SPKI, same kid).
        let vk = VerifyingKey::from_jwk(jwk).unwrap();
        assert_eq!(vk.spki_der().unwrap(), key.public_spki_der());
        let ours = key.public_jwk();
        assert_eq!((ours.n, ours.e), (jwk.n.clone(), jwk.e.clone()));
    }

    #[test]
    fn ec_keys_get_curve_and_alg() {
        for (alg, crv, name) in [
            (keyless_jose::Alg::ES256, "P-256", "ES256"),
            (keyless_jose::Alg::ES384, "P-384", "ES384"),
        ] {
            let key = keyless_jose::SigningKey::generate(alg, "x".into()).unwrap();
            let jwks = jwks_from_pem(pem("PUBLIC KEY", key.public_spki_der()).as_bytes()).unwrap();
            let jwk = &jwks[0];
            assert_eq!(jwk.crv.as_deref(), Some(crv));
            assert_eq!(jwk.alg.as_deref(), Some(name));
            let ours = key.public_jwk();
            assert_eq!((ours.x, ours.y), (jwk.x.clone(), jwk.y.clone()));
            let jwks = jwks_from_pem(pem("PRIVATE KEY", key.pkcs8_der()).as_bytes()).unwrap();
            assert_eq!(jwks[0].kid, jwk.kid);
        }
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            jwks_from_pem(b"nothing here"),
            Err(JwksError::Empty)
        ));
        assert!(matches!(
            jwks_from_pem(pem("CERTIFICATE", b"x").as_bytes()),
            Err(JwksError::Section(_))
        ));
        let err = jwks_from_pem(pem("PUBLIC KEY", b"garbage").as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("PUBLIC KEY: "), "{err}");
    }
}
