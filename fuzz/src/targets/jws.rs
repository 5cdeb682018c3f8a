//! `jws`: compact JWS parsing (`UnverifiedJwt::parse`) and signature verification with
//! keys of every family, as a client assertion or a bearer token is handled.

use std::sync::OnceLock;

use keyless_jose::{Alg, SigningKey, UnverifiedJwt, VerifyingKey};

/// Largest token accepted, as the token endpoint uses.
const MAX_LEN: usize = 16 * 1024;

fn keys() -> &'static [VerifyingKey] {
    static KEYS: OnceLock<Vec<VerifyingKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [Alg::RS256, Alg::ES256, Alg::ES384, Alg::PS256, Alg::EdDSA]
            .into_iter()
            .filter_map(|alg| SigningKey::generate(alg, format!("{alg:?}")).ok())
            .filter_map(|k| VerifyingKey::from_jwk(&k.public_jwk()).ok())
            .collect()
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(jwt) = UnverifiedJwt::parse(&text, MAX_LEN) else {
        return;
    };
    let _ = (jwt.alg(), jwt.kid(), jwt.typ(), jwt.claims().len());
    assert!(jwt.signing_input().len() <= text.len());
    let all = [
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
    for key in keys() {
        // A random input never carries a valid signature of a key made at start-up.
        assert!(jwt.verify(key, &all).is_err(), "forged signature accepted");
    }
}
