//! Policy-checked signature verification of an [`UnverifiedJwt`].

use crate::alg::Alg;
use crate::error::{JoseError, Result};
use crate::token::UnverifiedJwt;
use crate::verifying_key::VerifyingKey;

impl UnverifiedJwt {
    /// Verifies the signature with `key`, enforcing, in order:
    /// 1. the token's alg is in `allowlist` ([`JoseError::AlgNotAllowed`]);
    /// 2. the key's family fits the alg ([`JoseError::KeyAlgMismatch`]): an RSA key
    ///    never verifies an ES token, a P-256 key never verifies ES384;
    /// 3. if the JWK pinned an `alg`, it equals the token's ([`JoseError::KeyAlgPinned`]);
    /// 4. the signature is valid ([`JoseError::BadSignature`]). ES signatures are the
    ///    fixed-length JOSE `r || s` form, not DER.
    ///
    /// Claims are not checked here; see [`RegisteredClaims`](crate::RegisteredClaims).
    pub fn verify(&self, key: &VerifyingKey, allowlist: &[Alg]) -> Result<()> {
        let alg = self.alg();
        if !allowlist.contains(&alg) {
            return Err(JoseError::AlgNotAllowed(alg));
        }
        if key.family() != alg.family() {
            return Err(JoseError::KeyAlgMismatch {
                alg,
                family: key.family(),
            });
        }
        if let Some(key_alg) = key.pinned_alg()
            && key_alg != alg
        {
            return Err(JoseError::KeyAlgPinned { alg, key_alg });
        }
        key.verify_signature(alg, self.signing_input().as_bytes(), self.signature())
    }

    /// [`select_key`] by the token's `kid` and alg, then [`verify`](Self::verify).
    /// Returns the key that verified, e.g. to log its `kid`.
    pub fn verify_with<'a>(
        &self,
        keys: &'a [VerifyingKey],
        allowlist: &[Alg],
    ) -> Result<&'a VerifyingKey> {
        // Check the allowlist first so a forbidden alg is reported as such, not as
        // a missing key.
        if !allowlist.contains(&self.alg()) {
            return Err(JoseError::AlgNotAllowed(self.alg()));
        }
        let key = select_key(keys, self.kid(), self.alg())?;
        self.verify(key, allowlist)?;
        Ok(key)
    }
}

/// Picks the key for a token.
///
/// With a `kid`, the key with exactly that `kid` (`UnknownKid` if none). Should a set
/// reuse a `kid` across key types, the one that fits `alg` wins; if none fits, a
/// `kid` match is still returned so [`UnverifiedJwt::verify`] reports the mismatch.
/// Without one, only when exactly one key can verify `alg` (`NoKid` otherwise): with
/// several candidates, trying each would turn one bad token into many verifications.
pub fn select_key<'a>(
    keys: &'a [VerifyingKey],
    kid: Option<&str>,
    alg: Alg,
) -> Result<&'a VerifyingKey> {
    match kid {
        Some(kid) => {
            let mut matching = keys.iter().filter(|k| k.kid() == Some(kid));
            let first = matching
                .next()
                .ok_or_else(|| JoseError::UnknownKid(crate::token::clip(kid)))?;
            if first.accepts(alg) {
                return Ok(first);
            }
            Ok(matching.find(|k| k.accepts(alg)).unwrap_or(first))
        }
        None => {
            let mut fitting = keys.iter().filter(|k| k.accepts(alg));
            match (fitting.next(), fitting.next()) {
                (Some(only), None) => Ok(only),
                (None, _) => Err(JoseError::NoKid { candidates: 0 }),
                (Some(_), Some(_)) => Err(JoseError::NoKid {
                    candidates: 2 + fitting.count(),
                }),
            }
        }
    }
}
