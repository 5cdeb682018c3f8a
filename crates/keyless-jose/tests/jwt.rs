//! End-to-end behaviour of signing, parsing and verification through the public API.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keyless_jose::{
    Alg, JoseError, Jwk, JwkSet, RegisteredClaims, SigningKey, TimePolicy, UnverifiedJwt,
    VerifyingKey, kubernetes_kid, select_key,
};
use serde_json::{Value, json};

const MAX: usize = 16 * 1024;
const NOW: i64 = 1_700_000_000;

/// RSA key generation is the slow part; make each alg's key once per test process.
fn key(alg: Alg) -> &'static SigningKey {
    static KEYS: [OnceLock<SigningKey>; 9] = [const { OnceLock::new() }; 9];
    let index = Alg::ASSERTION_ALLOWLIST
        .iter()
        .position(|a| *a == alg)
        .unwrap();
    KEYS[index].get_or_init(|| SigningKey::generate(alg, format!("kid-{alg}")).unwrap())
}

fn claims() -> Value {
    json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:org/repo:ref:refs/heads/main",
        "aud": ["api://AzureADTokenExchange"],
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 600,
        "jti": "abc",
        "extra": {"nested": [1, 2, 3]},
    })
}

fn vk(key: &SigningKey) -> VerifyingKey {
    VerifyingKey::from_jwk(&key.public_jwk()).unwrap()
}

/// Replaces the payload of a token, keeping its header and signature.
fn with_payload(token: &str, payload: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], B64.encode(payload), parts[2])
}

#[test]
fn sign_then_verify_every_alg() {
    for &alg in Alg::ASSERTION_ALLOWLIST {
        let key = key(alg);
        let token = key.sign_jwt("JWT", &claims()).unwrap();
        let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
        assert_eq!(jwt.alg(), alg);
        assert_eq!(jwt.kid(), Some(key.kid()));
        assert_eq!(jwt.typ(), Some("JWT"));
        jwt.verify(&vk(key), Alg::ASSERTION_ALLOWLIST)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(jwt.claims()["extra"]["nested"][2], 3);

        let registered = RegisteredClaims::from_claims(jwt.claims()).unwrap();
        assert_eq!(registered.aud, ["api://AzureADTokenExchange"]);
        registered.check_times(NOW, TimePolicy::default()).unwrap();

        // The same key reloaded from its PKCS#8 signs verifiable tokens too.
        let reloaded = SigningKey::from_pkcs8(alg, key.kid().to_owned(), key.pkcs8_der()).unwrap();
        assert_eq!(reloaded.public_jwk(), key.public_jwk());
        assert_eq!(reloaded.public_spki_der(), key.public_spki_der());
        let token = reloaded.sign_jwt("at+jwt", &claims()).unwrap();
        UnverifiedJwt::parse(&token, MAX)
            .unwrap()
            .verify(&vk(key), &[alg])
            .unwrap();
    }
}

#[test]
fn public_jwk_shape() {
    let jwk = key(Alg::ES256).public_jwk();
    assert_eq!(
        (jwk.kty.as_str(), jwk.crv.as_deref(), jwk.use_.as_deref()),
        ("EC", Some("P-256"), Some("sig"))
    );
    assert_eq!(jwk.alg.as_deref(), Some("ES256"));
    assert_eq!(jwk.kid.as_deref(), Some("kid-ES256"));
    assert_eq!(B64.decode(jwk.x.unwrap()).unwrap().len(), 32);
    let jwk = key(Alg::RS256).public_jwk();
    assert_eq!(jwk.e.as_deref(), Some("AQAB"));
    assert_eq!(B64.decode(jwk.n.unwrap()).unwrap().len(), 256);
    let jwk = key(Alg::EdDSA).public_jwk();
    assert_eq!(
        (jwk.kty.as_str(), jwk.crv.as_deref()),
        ("OKP", Some("Ed25519"))
    );
}

#[test]
fn tampered_tokens_fail() {
    for alg in [Alg::ES256, Alg::RS256, Alg::PS256, Alg::EdDSA] {
        let key = key(alg);
        let token = key.sign_jwt("JWT", &claims()).unwrap();
        let mut forged = claims();
        forged["sub"] = json!("repo:attacker/repo:ref:refs/heads/main");
        let tampered = with_payload(&token, &forged.to_string());
        let jwt = UnverifiedJwt::parse(&tampered, MAX).unwrap();
        assert!(matches!(
            jwt.verify(&vk(key), Alg::ASSERTION_ALLOWLIST),
            Err(JoseError::BadSignature)
        ));

        // A flipped signature bit.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = B64.decode(sig).unwrap();
        sig[5] ^= 1;
        let flipped = format!("{input}.{}", B64.encode(&sig));
        let jwt = UnverifiedJwt::parse(&flipped, MAX).unwrap();
        assert!(matches!(
            jwt.verify(&vk(key), Alg::ASSERTION_ALLOWLIST),
            Err(JoseError::BadSignature)
        ));

        // Signed by a different key of the same type.
        let other = SigningKey::generate(alg, key.kid().to_owned()).unwrap();
        let token = other.sign_jwt("JWT", &claims()).unwrap();
        let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
        assert!(matches!(
            jwt.verify(&vk(key), Alg::ASSERTION_ALLOWLIST),
            Err(JoseError::BadSignature)
        ));
    }
}

#[test]
fn der_encoded_ecdsa_signature_is_rejected() {
    // JOSE uses fixed r||s; a DER signature (what many libraries emit by default)
    // must not verify even though it is a valid ECDSA signature.
    let key = key(Alg::ES256);
    let token = key.sign_jwt("JWT", &claims()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = B64.decode(sig).unwrap();
    let der = fixed_to_der(&sig);
    let token = format!("{input}.{}", B64.encode(&der));
    let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
    assert!(matches!(
        jwt.verify(&vk(key), &[Alg::ES256]),
        Err(JoseError::BadSignature)
    ));
}

fn fixed_to_der(sig: &[u8]) -> Vec<u8> {
    fn int(bytes: &[u8]) -> Vec<u8> {
        let mut b: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if b[0] & 0x80 != 0 {
            b.insert(0, 0);
        }
        let mut out = vec![0x02, b.len() as u8];
        out.extend(b);
        out
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn alg_allowlist_is_enforced() {
    let key = key(Alg::RS256);
    let token = key.sign_jwt("JWT", &claims()).unwrap();
    let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
    assert!(matches!(
        jwt.verify(&vk(key), &[Alg::ES256, Alg::PS256]),
        Err(JoseError::AlgNotAllowed(Alg::RS256))
    ));
    assert!(matches!(
        jwt.verify_with(&[vk(key)], &[Alg::ES256]),
        Err(JoseError::AlgNotAllowed(Alg::RS256))
    ));
}

#[test]
fn key_family_must_match_alg() {
    // An RS256 token presented with the kid of an EC key.
    let rsa_token = key(Alg::RS256).sign_jwt("JWT", &claims()).unwrap();
    let jwt = UnverifiedJwt::parse(&rsa_token, MAX).unwrap();
    let ec = vk(key(Alg::ES256));
    assert!(matches!(
        jwt.verify(&ec, Alg::ASSERTION_ALLOWLIST),
        Err(JoseError::KeyAlgMismatch {
            alg: Alg::RS256,
            ..
        })
    ));
    // And the other way round.
    let ec_token = key(Alg::ES256).sign_jwt("JWT", &claims()).unwrap();
    let jwt = UnverifiedJwt::parse(&ec_token, MAX).unwrap();
    assert!(matches!(
        jwt.verify(&vk(key(Alg::RS256)), Alg::ASSERTION_ALLOWLIST),
        Err(JoseError::KeyAlgMismatch {
            alg: Alg::ES256,
            ..
        })
    ));
    // ES384 token against a P-256 key, and ES256 against P-384.
    let es384 = key(Alg::ES384).sign_jwt("JWT", &claims()).unwrap();
    let jwt = UnverifiedJwt::parse(&es384, MAX).unwrap();
    assert!(matches!(
        jwt.verify(&ec, Alg::ASSERTION_ALLOWLIST),
        Err(JoseError::KeyAlgMismatch {
            alg: Alg::ES384,
            ..
        })
    ));
    let jwt = UnverifiedJwt::parse(&ec_token, MAX).unwrap();
    assert!(matches!(
        jwt.verify(&vk(key(Alg::ES384)), Alg::ASSERTION_ALLOWLIST),
        Err(JoseError::KeyAlgMismatch { .. })
    ));
    // EdDSA token against an EC key.
    let ed = key(Alg::EdDSA).sign_jwt("JWT", &claims()).unwrap();
    let jwt = UnverifiedJwt::parse(&ed, MAX).unwrap();
    assert!(matches!(
        jwt.verify(&ec, Alg::ASSERTION_ALLOWLIST),
        Err(JoseError::KeyAlgMismatch { .. })
    ));
}

#[test]
fn jwk_pinned_alg_must_match_token() {
    // The RS256 key's JWK carries alg RS256; a PS256 token by the same private key
    // must be refused even though the signature itself is valid.
    let rs = key(Alg::RS256);
    let ps = SigningKey::from_pkcs8(Alg::PS256, rs.kid().to_owned(), rs.pkcs8_der()).unwrap();
    let token = ps.sign_jwt("JWT", &claims()).unwrap();
    let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
    assert!(matches!(
        jwt.verify(&vk(rs), Alg::ASSERTION_ALLOWLIST),
        Err(JoseError::KeyAlgPinned {
            alg: Alg::PS256,
            key_alg: Alg::RS256
        })
    ));
    // Without the pin the same key verifies PS256.
    let mut unpinned = rs.public_jwk();
    unpinned.alg = None;
    jwt.verify(
        &VerifyingKey::from_jwk(&unpinned).unwrap(),
        Alg::ASSERTION_ALLOWLIST,
    )
    .unwrap();
    // A JWK whose alg contradicts its own key type is refused when loaded.
    let mut contradictory = rs.public_jwk();
    contradictory.alg = Some("ES256".into());
    assert!(matches!(
        VerifyingKey::from_jwk(&contradictory),
        Err(JoseError::KeyAlgMismatch { .. })
    ));
}

#[test]
fn hs256_with_rsa_public_key_as_secret_is_rejected_before_verification() {
    // The classic confusion attack: HMAC the token with the issuer's public key bytes
    // as the secret, hoping the verifier feeds its "key" to HMAC.
    let rsa = key(Alg::RS256);
    for secret in [
        rsa.public_spki_der().to_vec(),
        serde_json::to_vec(&rsa.public_jwk()).unwrap(),
    ] {
        let header = B64.encode(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, rsa.kid()));
        let payload = B64.encode(claims().to_string());
        let input = format!("{header}.{payload}");
        let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(&hmac_key, input.as_bytes());
        let token = format!("{input}.{}", B64.encode(tag.as_ref()));
        match UnverifiedJwt::parse(&token, MAX) {
            Err(JoseError::SymmetricAlg(alg)) => assert_eq!(alg, "HS256"),
            other => panic!("expected SymmetricAlg, got {other:?}"),
        }
    }
}

#[test]
fn alg_none_is_rejected() {
    let header = B64.encode(r#"{"alg":"none","kid":"kid-ES256"}"#);
    let payload = B64.encode(claims().to_string());
    for sig in ["", "AAAA"] {
        let token = format!("{header}.{payload}.{sig}");
        assert!(matches!(
            UnverifiedJwt::parse(&token, MAX),
            Err(JoseError::Unsecured)
        ));
    }
}

#[test]
fn embedded_and_remote_key_headers_are_ignored() {
    let legit = key(Alg::ES256);
    let attacker = SigningKey::generate(Alg::ES256, legit.kid().to_owned()).unwrap();
    let attacker_jwk = serde_json::to_string(&attacker.public_jwk()).unwrap();
    let header = format!(
        r#"{{"alg":"ES256","kid":"{}","jku":"https://evil.example/jwks","x5u":"https://evil.example/cert","jwk":{attacker_jwk},"x5c":["MIIBAA=="]}}"#,
        legit.kid()
    );
    let payload = claims().to_string();
    let jwks = [vk(legit)];

    // Signed by the legitimate key: the extra headers do not get in the way.
    let token = sign_raw(legit, &header, &payload);
    let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
    let used = jwt.verify_with(&jwks, Alg::ASSERTION_ALLOWLIST).unwrap();
    assert_eq!(used.kid(), Some(legit.kid()));

    // Signed by the attacker with their key embedded: the embedded jwk is never used.
    let token = sign_raw(&attacker, &header, &payload);
    let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
    assert!(matches!(
        jwt.verify_with(&jwks, Alg::ASSERTION_ALLOWLIST),
        Err(JoseError::BadSignature)
    ));
}

/// Signs arbitrary header/payload JSON with a key's PKCS#8, bypassing `sign_jwt`.
fn sign_raw(key: &SigningKey, header: &str, payload: &str) -> String {
    assert_eq!(key.alg(), Alg::ES256);
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        key.pkcs8_der(),
    )
    .unwrap();
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let sig = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

#[test]
fn key_selection() {
    let es = vk(key(Alg::ES256));
    let rs = vk(key(Alg::RS256));
    let ps = vk(key(Alg::PS256));
    let keys = [es.clone(), rs.clone(), ps.clone()];

    assert_eq!(
        select_key(&keys, Some("kid-RS256"), Alg::RS256)
            .unwrap()
            .kid(),
        Some("kid-RS256")
    );
    assert!(matches!(
        select_key(&keys, Some("kid-rs256"), Alg::RS256),
        Err(JoseError::UnknownKid(k)) if k == "kid-rs256"
    ));
    // No kid: exactly one EC key fits ES256.
    assert_eq!(
        select_key(&keys, None, Alg::ES256).unwrap().kid(),
        Some("kid-ES256")
    );
    // No kid: the RS256 JWK is pinned to RS256, so only it fits RS256...
    assert_eq!(
        select_key(&keys, None, Alg::RS256).unwrap().kid(),
        Some("kid-RS256")
    );
    // ...but two unpinned RSA keys are ambiguous.
    let unpin = |k: &SigningKey| {
        let mut jwk = k.public_jwk();
        jwk.alg = None;
        VerifyingKey::from_jwk(&jwk).unwrap()
    };
    let ambiguous = [unpin(key(Alg::RS256)), unpin(key(Alg::PS256))];
    assert!(matches!(
        select_key(&ambiguous, None, Alg::RS512),
        Err(JoseError::NoKid { candidates: 2 })
    ));
    assert!(matches!(
        select_key(&keys, None, Alg::EdDSA),
        Err(JoseError::NoKid { candidates: 0 })
    ));
    // A token without kid verifies when exactly one key fits.
    let key = key(Alg::ES256);
    let token = sign_raw(key, r#"{"alg":"ES256"}"#, &claims().to_string());
    let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
    assert_eq!(jwt.kid(), None);
    jwt.verify_with(&keys, Alg::ASSERTION_ALLOWLIST).unwrap();
}

#[test]
fn jwks_round_trip_through_json() {
    let set = JwkSet {
        keys: Alg::ASSERTION_ALLOWLIST
            .iter()
            .map(|a| key(*a).public_jwk())
            .collect(),
    };
    let doc = serde_json::to_vec(&set).unwrap();
    let parsed = JwkSet::parse(&doc, 100).unwrap();
    assert_eq!(parsed, set);
    let (keys, rejected) = VerifyingKey::from_jwk_set(&parsed);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(keys.len(), Alg::ASSERTION_ALLOWLIST.len());
    assert!(matches!(
        JwkSet::parse(&doc, 8),
        Err(JoseError::TooManyKeys { count: 9, max: 8 })
    ));
    for &alg in Alg::ASSERTION_ALLOWLIST {
        let token = key(alg).sign_jwt("JWT", &claims()).unwrap();
        let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
        assert_eq!(
            jwt.verify_with(&keys, Alg::ASSERTION_ALLOWLIST)
                .unwrap()
                .kid(),
            Some(key(alg).kid())
        );
    }
}

/// A P-256 test key generated with `openssl genpkey`; the expected kid was computed
/// independently with `openssl pkey -pubout -outform DER | openssl dgst -sha256`.
const FIXTURE_PKCS8_HEX: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420b36a219ac5577a9095d4fedf0185dbe90eafce58e6da981cef4e983cde8e5a06a144034200044b27ee57360463374cf88fa7c7b57116cfd80e237862884d00fa8fae9932fa9550cc56fc3f96115285725cd573d5879f04a286cc8e2cc13662fa07ec2af6a063";
const FIXTURE_SPKI_HEX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200044b27ee57360463374cf88fa7c7b57116cfd80e237862884d00fa8fae9932fa9550cc56fc3f96115285725cd573d5879f04a286cc8e2cc13662fa07ec2af6a063";
const FIXTURE_KID: &str = "GkeT0Ntf-Fys_gL6wFWmdvsOQEJWVEZgDtyR8e834cA";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn kubernetes_kid_matches_openssl() {
    let key = SigningKey::from_pkcs8(Alg::ES256, "x".into(), &unhex(FIXTURE_PKCS8_HEX)).unwrap();
    assert_eq!(key.public_spki_der(), unhex(FIXTURE_SPKI_HEX));
    assert_eq!(kubernetes_kid(key.public_spki_der()), FIXTURE_KID);
    // The verifying side derives the same SPKI from the JWK alone.
    let spki = vk(&key).spki_der().unwrap();
    assert_eq!(kubernetes_kid(&spki), FIXTURE_KID);
    // And for RSA and Ed25519, both sides agree.
    for alg in [Alg::RS256, Alg::EdDSA, Alg::ES384] {
        let k = self::key(alg);
        assert_eq!(vk(k).spki_der().unwrap(), k.public_spki_der(), "{alg}");
    }
}

#[test]
fn rsa_modulus_with_leading_zero_is_accepted() {
    let key = key(Alg::RS256);
    let mut jwk: Jwk = key.public_jwk();
    let mut n = B64.decode(jwk.n.as_ref().unwrap()).unwrap();
    n.insert(0, 0);
    jwk.n = Some(B64.encode(&n));
    let token = key.sign_jwt("JWT", &claims()).unwrap();
    UnverifiedJwt::parse(&token, MAX)
        .unwrap()
        .verify(&VerifyingKey::from_jwk(&jwk).unwrap(), &[Alg::RS256])
        .unwrap();
}

#[test]
fn verified_claims_then_time_policy() {
    let key = key(Alg::ES256);
    let mut c = claims();
    c["exp"] = json!(NOW - 61);
    let token = key.sign_jwt("JWT", &c).unwrap();
    let jwt = UnverifiedJwt::parse(&token, MAX).unwrap();
    jwt.verify(&vk(key), &[Alg::ES256]).unwrap();
    let registered = RegisteredClaims::from_claims(jwt.claims()).unwrap();
    let err = registered
        .check_times(NOW, TimePolicy::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("token expired at {} (now {NOW})", NOW - 61)
    );
}

#[test]
fn every_single_character_change_is_refused() {
    let key = key(Alg::ES256);
    let token = key.sign_jwt("JWT", &claims()).unwrap();
    let keys = [vk(key)];
    let mut refused = 0;
    for (i, original) in token.char_indices() {
        for replacement in ['A', 'f', '-', '_', '.', '='] {
            if replacement == original {
                continue;
            }
            let mut mutated = token.clone();
            mutated.replace_range(i..i + 1, &replacement.to_string());
            let outcome = UnverifiedJwt::parse(&mutated, MAX)
                .and_then(|jwt| jwt.verify_with(&keys, Alg::ASSERTION_ALLOWLIST).map(|_| ()));
            assert!(
                outcome.is_err(),
                "mutation at {i} to {replacement:?} verified"
            );
            refused += 1;
        }
    }
    assert!(refused > 1000);
}
