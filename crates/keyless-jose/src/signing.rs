//! Keyless' own signing keys: generation, PKCS#8 import/export, JWT signing.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, RsaEncoding,
    RsaKeyPair,
};
use serde::Serialize;

use crate::alg::{Alg, KeyFamily};
use crate::b64;
use crate::error::{JoseError, Result};
use crate::jwk::Jwk;
use crate::verifying_key::VerifyingKey;

/// A private signing key bound to one algorithm and key id.
///
/// The aws-lc key object is parsed once and kept, so signing does no key decoding.
/// `Send + Sync`; share it behind an `Arc`. `Debug` never prints the secret.
pub struct SigningKey {
    alg: Alg,
    kid: String,
    pair: Pair,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
    jwk: Jwk,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ed25519(Ed25519KeyPair),
}

/// Serialised in this field order, which is what Entra ID tokens use. Without a
/// `typ` it is `{"alg":..,"kid":..}`, the header of Kubernetes service-account tokens.
#[derive(Serialize)]
struct JwsHeader<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    alg: Alg,
    kid: &'a str,
}

impl SigningKey {
    /// Generates a fresh key for `alg`: P-256 for ES256, P-384 for ES384, Ed25519 for
    /// EdDSA, and a 2048-bit RSA key for every RS*/PS* alg (the size Entra ID uses;
    /// verification everywhere accepts it, and signing stays fast).
    pub fn generate(alg: Alg, kid: String) -> Result<SigningKey> {
        let failed = |_| JoseError::Crypto("key generation");
        let pkcs8: Vec<u8> = match alg.family() {
            KeyFamily::Rsa => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(failed)?;
                der.as_ref().to_vec()
            }
            KeyFamily::EcP256 | KeyFamily::EcP384 => {
                let pair = EcdsaKeyPair::generate(ecdsa_signing(alg)?).map_err(failed)?;
                pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()
            }
            KeyFamily::OkpEd25519 => {
                let pair = Ed25519KeyPair::generate().map_err(failed)?;
                pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()
            }
        };
        SigningKey::from_pkcs8(alg, kid, &pkcs8)
    }

    /// Loads a key from unencrypted PKCS#8 DER (as produced by [`pkcs8_der`](Self::pkcs8_der)
    /// or `openssl genpkey`). The key type must fit `alg`; RSA keys must be 2048 to
    /// 8192 bits.
    pub fn from_pkcs8(alg: Alg, kid: String, der: &[u8]) -> Result<SigningKey> {
        let encode_failed = |_| JoseError::Crypto("encoding public key");
        let (pair, spki, jwk) = match alg.family() {
            KeyFamily::Rsa => {
                let pair = RsaKeyPair::from_pkcs8(der)?;
                let public = pair.public_key();
                let spki = public.as_der().map_err(encode_failed)?.as_ref().to_vec();
                let jwk = Jwk {
                    n: Some(b64::encode(
                        public.modulus().big_endian_without_leading_zero(),
                    )),
                    e: Some(b64::encode(
                        public.exponent().big_endian_without_leading_zero(),
                    )),
                    ..public_jwk_template(alg, &kid)
                };
                (Pair::Rsa(pair, rsa_encoding(alg)?), spki, jwk)
            }
            KeyFamily::EcP256 | KeyFamily::EcP384 => {
                let pair = EcdsaKeyPair::from_pkcs8(ecdsa_signing(alg)?, der)?;
                let public = pair.public_key();
                let spki = public.as_der().map_err(encode_failed)?.as_ref().to_vec();
                // aws-lc exposes the uncompressed SEC1 point: 0x04 || x || y.
                let point = public.as_ref();
                let coords = point
                    .split_first()
                    .filter(|(tag, rest)| **tag == 0x04 && rest.len() % 2 == 0)
                    .map(|(_, rest)| rest.split_at(rest.len() / 2))
                    .ok_or(JoseError::Crypto("unexpected EC public key encoding"))?;
                let jwk = Jwk {
                    x: Some(b64::encode(coords.0)),
                    y: Some(b64::encode(coords.1)),
                    ..public_jwk_template(alg, &kid)
                };
                (Pair::Ecdsa(pair), spki, jwk)
            }
            KeyFamily::OkpEd25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(der)?;
                let public = pair.public_key();
                let spki = public.as_der().map_err(encode_failed)?.as_ref().to_vec();
                let jwk = Jwk {
                    x: Some(b64::encode(public.as_ref())),
                    ..public_jwk_template(alg, &kid)
                };
                (Pair::Ed25519(pair), spki, jwk)
            }
        };
        Ok(SigningKey {
            alg,
            kid,
            pair,
            pkcs8: der.to_vec(),
            spki,
            jwk,
        })
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key id put in every token's header and in the published JWK.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 DER. SECRET: store it sealed or in a 0600 file, never log it.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as DER `SubjectPublicKeyInfo` (input to [`kubernetes_kid`](crate::kubernetes_kid)).
    pub fn public_spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The public JWK for the JWKS endpoint, with `kid`, `use: "sig"` and `alg`.
    pub fn public_jwk(&self) -> Jwk {
        self.jwk.clone()
    }

    /// A verifying key for this key's public half, e.g. to check Keyless' own tokens.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_jwk(&self.jwk)
    }

    /// Signs `claims` as a compact JWS with header `{"typ":typ,"alg":..,"kid":..}`.
    /// The claims must serialise to a JSON object.
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> Result<String> {
        self.sign_with_header(Some(typ), claims)
    }

    /// Signs `claims` as a compact JWS with header `{"alg":..,"kid":..}` and no `typ`,
    /// as the Kubernetes API server signs service-account tokens (used by the dev
    /// cluster issuer to mimic them byte for byte).
    pub fn sign_jwt_untyped(&self, claims: &impl Serialize) -> Result<String> {
        self.sign_with_header(None, claims)
    }

    fn sign_with_header(&self, typ: Option<&str>, claims: &impl Serialize) -> Result<String> {
        let header = serde_json::to_vec(&JwsHeader {
            typ,
            alg: self.alg,
            kid: &self.kid,
        })
        .map_err(JoseError::Serialize)?;
        let payload = serde_json::to_vec(claims).map_err(JoseError::Serialize)?;
        if payload.first() != Some(&b'{') {
            return Err(JoseError::Malformed(
                "claims must serialise to a JSON object",
            ));
        }
        // base64 grows by 4/3; 700 covers the signature of a 4096-bit RSA key.
        let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 700);
        b64::encode_into(&header, &mut token);
        token.push('.');
        b64::encode_into(&payload, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        b64::encode_into(&signature, &mut token);
        Ok(token)
    }

    /// Raw JWS signature over `message` (ECDSA in fixed `r || s` form).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let failed = |_| JoseError::Crypto("signing");
        match &self.pair {
            Pair::Ecdsa(pair) => Ok(pair
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Rsa(pair, encoding) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            Pair::Ed25519(pair) => Ok(pair.try_sign(message).map_err(failed)?.as_ref().to_vec()),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

fn public_jwk_template(alg: Alg, kid: &str) -> Jwk {
    Jwk {
        kty: alg.family().kty().to_owned(),
        use_: Some("sig".to_owned()),
        kid: Some(kid.to_owned()),
        alg: Some(alg.as_str().to_owned()),
        n: None,
        e: None,
        crv: alg.family().crv().map(str::to_owned),
        x: None,
        y: None,
    }
}

fn ecdsa_signing(alg: Alg) -> Result<&'static EcdsaSigningAlgorithm> {
    match alg {
        Alg::ES256 => Ok(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        Alg::ES384 => Ok(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        other => Err(JoseError::UnsupportedSigningAlg(other)),
    }
}

fn rsa_encoding(alg: Alg) -> Result<&'static dyn RsaEncoding> {
    match alg {
        Alg::RS256 => Ok(&signature::RSA_PKCS1_SHA256),
        Alg::RS384 => Ok(&signature::RSA_PKCS1_SHA384),
        Alg::RS512 => Ok(&signature::RSA_PKCS1_SHA512),
        Alg::PS256 => Ok(&signature::RSA_PSS_SHA256),
        Alg::PS384 => Ok(&signature::RSA_PSS_SHA384),
        Alg::PS512 => Ok(&signature::RSA_PSS_SHA512),
        other => Err(JoseError::UnsupportedSigningAlg(other)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signing_key_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SigningKey>();
    }

    #[test]
    fn debug_redacts_the_private_key() {
        let key = SigningKey::generate(Alg::ES256, "k".into()).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("redacted"), "{debug}");
        assert!(!debug.contains(&b64::encode(key.pkcs8_der())));
        assert!(!debug.contains(&format!("{:?}", key.pkcs8_der())));
    }

    #[test]
    fn pkcs8_must_fit_the_alg() {
        let ec = SigningKey::generate(Alg::ES256, "k".into()).unwrap();
        assert!(SigningKey::from_pkcs8(Alg::ES384, "k".into(), ec.pkcs8_der()).is_err());
        assert!(SigningKey::from_pkcs8(Alg::RS256, "k".into(), ec.pkcs8_der()).is_err());
        assert!(SigningKey::from_pkcs8(Alg::EdDSA, "k".into(), ec.pkcs8_der()).is_err());
        assert!(SigningKey::from_pkcs8(Alg::ES256, "k".into(), b"garbage").is_err());
    }

    #[test]
    fn header_field_order_is_typ_alg_kid() {
        let key = SigningKey::generate(Alg::ES256, "kid-1".into()).unwrap();
        let token = key.sign_jwt("JWT", &serde_json::json!({"a": 1})).unwrap();
        let header = token.split('.').next().unwrap();
        assert_eq!(
            b64::decode(header).unwrap(),
            br#"{"typ":"JWT","alg":"ES256","kid":"kid-1"}"#
        );
        assert!(matches!(
            key.sign_jwt("JWT", &[1, 2]),
            Err(JoseError::Malformed(_))
        ));
    }

    #[test]
    fn untyped_header_is_alg_kid_only_and_verifies() {
        let key = SigningKey::generate(Alg::ES256, "kid-2".into()).unwrap();
        let token = key.sign_jwt_untyped(&serde_json::json!({"a": 1})).unwrap();
        let header = token.split('.').next().unwrap();
        assert_eq!(
            b64::decode(header).unwrap(),
            br#"{"alg":"ES256","kid":"kid-2"}"#
        );
        let jwt = crate::UnverifiedJwt::parse(&token, 16 * 1024).unwrap();
        assert_eq!(jwt.typ(), None);
        jwt.verify(&key.verifying_key().unwrap(), &[Alg::ES256])
            .unwrap();
    }
}
