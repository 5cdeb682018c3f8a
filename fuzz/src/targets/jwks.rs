//! `jwks`: a JWK Set as an issuer publishes it (`JwkSet::parse`), then every key made
//! into a verifying key (`VerifyingKey::from_jwk_set`) as the issuer cache does.

use keyless_jose::{JwkSet, VerifyingKey};

/// Most keys accepted per issuer (the issuer cache's default).
const MAX_KEYS: usize = 100;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(set) = JwkSet::parse(data, MAX_KEYS) else {
        return;
    };
    assert!(set.keys.len() <= MAX_KEYS);
    let (keys, bad) = VerifyingKey::from_jwk_set(&set);
    assert_eq!(keys.len() + bad.len(), set.keys.len());
    for key in &keys {
        let _ = (key.kid(), key.family(), key.pinned_alg(), key.spki_der());
    }
    if let Some(kid) = set.keys.first().and_then(|k| k.kid.as_deref()) {
        assert!(set.find(kid).is_some());
    }
}
