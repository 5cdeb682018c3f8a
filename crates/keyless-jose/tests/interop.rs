//! Interoperability with an independent JOSE implementation (jsonwebtoken 12 on
//! aws-lc-rs): tokens it signs verify with our keys, and tokens we sign verify with it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyless_jose::{Alg, JoseError, SigningKey, UnverifiedJwt, VerifyingKey};
use serde_json::{Value, json};

fn install_provider() {
    // Ignored error: another test in this binary may have installed it already.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

fn claims() -> Value {
    // Far-future exp so jsonwebtoken's own (wall-clock) validation passes.
    json!({"iss":"https://issuer.example","sub":"s","aud":"api://keyless","iat":1_700_000_000,"exp":4_000_000_000_i64})
}

/// jsonwebtoken wants PKCS#1 `RSAPrivateKey` DER for RSA, and PKCS#8 wraps exactly
/// that in an OCTET STRING: SEQUENCE { INTEGER 0, AlgorithmIdentifier, OCTET STRING }.
fn pkcs8_to_pkcs1(der: &[u8]) -> Vec<u8> {
    fn read(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = der[0];
        let (len, header) = match der[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81 => (der[2] as usize, 3),
            0x82 => (((der[2] as usize) << 8) | der[3] as usize, 4),
            other => panic!("unsupported DER length form {other:#x}"),
        };
        (tag, &der[header..header + len], &der[header + len..])
    }
    let (tag, body, _) = read(der);
    assert_eq!(tag, 0x30);
    let (tag, _, rest) = read(body);
    assert_eq!(tag, 0x02);
    let (tag, _, rest) = read(rest);
    assert_eq!(tag, 0x30);
    let (tag, pkcs1, _) = read(rest);
    assert_eq!(tag, 0x04);
    pkcs1.to_vec()
}

#[test]
fn tokens_signed_by_jsonwebtoken_verify_with_our_keys() {
    install_provider();
    let cases = [
        (Alg::RS256, Algorithm::RS256),
        (Alg::PS256, Algorithm::PS256),
        (Alg::ES256, Algorithm::ES256),
        (Alg::ES384, Algorithm::ES384),
        (Alg::EdDSA, Algorithm::EdDSA),
    ];
    for (alg, theirs) in cases {
        let key = SigningKey::generate(alg, format!("k-{alg}")).unwrap();
        let encoding = match alg.family() {
            keyless_jose::KeyFamily::Rsa => {
                EncodingKey::from_rsa_der(&pkcs8_to_pkcs1(key.pkcs8_der()))
            }
            keyless_jose::KeyFamily::OkpEd25519 => EncodingKey::from_ed_der(key.pkcs8_der()),
            _ => EncodingKey::from_ec_der(key.pkcs8_der()),
        };
        let mut header = Header::new(theirs);
        header.kid = Some(key.kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims(), &encoding).unwrap();

        let ours = VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
        let jwt = UnverifiedJwt::parse(&token, 16 * 1024).unwrap();
        jwt.verify(&ours, Alg::ASSERTION_ALLOWLIST)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(jwt.claims()["sub"], "s");

        // A different key of ours must not verify their token.
        let stranger = SigningKey::generate(alg, key.kid().to_owned()).unwrap();
        let stranger = VerifyingKey::from_jwk(&stranger.public_jwk()).unwrap();
        assert!(matches!(
            jwt.verify(&stranger, Alg::ASSERTION_ALLOWLIST),
            Err(JoseError::BadSignature)
        ));
    }
}

#[test]
fn tokens_we_sign_verify_with_jsonwebtoken() {
    install_provider();
    for &alg in Alg::ASSERTION_ALLOWLIST {
        let key = SigningKey::generate(alg, format!("k-{alg}")).unwrap();
        let token = key.sign_jwt("JWT", &claims()).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(serde_json::to_value(key.public_jwk()).unwrap()).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let their_alg: Algorithm = alg.as_str().parse().unwrap();
        let mut validation = Validation::new(their_alg);
        validation.set_audience(&["api://keyless"]);
        validation.set_issuer(&["https://issuer.example"]);
        let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
        assert_eq!(data.claims["sub"], "s");
    }
}
