//! A bounded cache of access tokens that passed validation, so a client repeating a
//! request with the same token (a vault read loop, an SDK's pipeline) pays for one
//! signature verification, not one per request.
//!
//! What a hit still checks, every time: the audience asked for, the token's `nbf` and
//! `exp` against the current time (so nothing is served past its expiry), and that
//! the token's signing key is still in the key ring (a retired key's tokens stop at
//! once). What it skips is only what cannot change for the same bytes: the signature,
//! the tenant/key match, the issuer and the lifetime rule. Only successes are cached:
//! a refused token is checked in full each time.
//!
//! The key is the token itself (compared in full, not by a hash), so two different
//! tokens never share an entry. The cache holds at most `capacity` tokens; when full,
//! expired entries go first, and if none have expired the cache starts over (cheap,
//! and a flood of distinct valid tokens gains nothing). The lock is synchronous and
//! held for a map lookup, never across an await.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::keyring::KeyRing;
use crate::settings::PublicUrl;

use super::validate::{Validated, check_times, validate_with_details};
use super::{Caller, TimeRules, TokenRejection};

/// Default number of tokens remembered (about 1.5 KB each).
pub const DEFAULT_CAPACITY: usize = 4096;

#[derive(Debug)]
struct Entry {
    audience: Box<str>,
    validated: Validated,
}

/// Verified tokens by their text.
#[derive(Debug)]
pub struct VerifiedTokens {
    capacity: usize,
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens (0: no caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Tokens remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`super::validate_access_token`], answered from the cache when `token` was
    /// validated before for the same audience and is still within its times and
    /// signed by a published key.
    pub fn validate(
        &self,
        token: &str,
        ring: &KeyRing,
        public: &PublicUrl,
        audience: &str,
        times: TimeRules,
    ) -> Result<Caller, TokenRejection> {
        if self.capacity == 0 {
            return validate_with_details(token, ring, public, audience, times).map(|v| v.caller);
        }
        let hit = {
            let entries = self.lock();
            entries.get(token).and_then(|e| {
                let same_audience =
                    e.audience.trim_end_matches('/') == audience.trim_end_matches('/');
                let key_published = ring.by_kid(&e.validated.kid).is_some();
                (same_audience && key_published).then(|| e.validated.clone())
            })
        };
        if let Some(v) = hit {
            // Outside the lock: the time check can refuse, and then the entry goes.
            return match check_times(v.nbf, v.exp, times.now, times.leeway) {
                Ok(()) => Ok(v.caller),
                Err(e) => {
                    self.lock().remove(token);
                    Err(e)
                }
            };
        }
        let validated = validate_with_details(token, ring, public, audience, times)?;
        let caller = validated.caller.clone();
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            let now = times.now;
            entries.retain(|_, e| now.saturating_sub(times.leeway) < e.validated.exp);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                audience: audience.into(),
                validated,
            },
        );
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use keyless_jose::{Alg, Kek};

    use super::*;
    use crate::tokens::AccessTokenClaims;

    const TENANT: &str = "7f3e1c9a-0000-4000-8000-000000000001";
    const NOW: i64 = 1_800_000_000;

    fn public() -> PublicUrl {
        PublicUrl {
            host: "keyless.test".into(),
            port: 8443,
        }
    }

    fn times(now: i64) -> TimeRules {
        TimeRules {
            now,
            leeway: 0,
            max_lifetime: 3600,
        }
    }

    fn token(ring: &KeyRing, oid: &str) -> String {
        let public = public();
        let claims = AccessTokenClaims {
            aud: public.resource_manager(),
            iss: public.issuer_v1(TENANT),
            iat: NOW,
            nbf: NOW,
            exp: NOW + 3600,
            appid: "app".into(),
            appidacr: "2".into(),
            idtyp: "app".into(),
            oid: oid.into(),
            sub: oid.into(),
            tid: TENANT.into(),
            uti: "u".into(),
            ver: "1.0".into(),
            xms_mirid: None,
        };
        ring.signer(TENANT, NOW)
            .unwrap()
            .signer
            .sign_jwt("JWT", &claims)
            .unwrap()
    }

    #[test]
    fn a_hit_still_checks_audience_expiry_and_the_key() {
        let kek = Kek::generate().unwrap();
        let rec = KeyRing::generate(TENANT, Alg::ES256, NOW - 100, NOW - 100, &kek).unwrap();
        let ring = KeyRing::load(vec![rec], &kek).unwrap();
        let cache = VerifiedTokens::new(16);
        let p = public();
        let arm = p.resource_manager();
        let t = token(&ring, "oid-1");
        assert_eq!(
            cache
                .validate(&t, &ring, &p, &arm, times(NOW))
                .unwrap()
                .object_id,
            "oid-1"
        );
        assert_eq!(cache.len(), 1);
        // Served from the cache: same answer.
        assert_eq!(
            cache
                .validate(&t, &ring, &p, &arm, times(NOW + 10))
                .unwrap()
                .object_id,
            "oid-1"
        );
        // Another audience is checked in full (and refused).
        assert!(matches!(
            cache.validate(&t, &ring, &p, &p.vault_resource(), times(NOW)),
            Err(TokenRejection::WrongAudience { .. })
        ));
        // Past its expiry: refused, and forgotten.
        assert!(matches!(
            cache.validate(&t, &ring, &p, &arm, times(NOW + 3600)),
            Err(TokenRejection::Expired { .. })
        ));
        assert_eq!(cache.len(), 0);
        // A ring without the key (retired): refused although cached before.
        assert!(cache.validate(&t, &ring, &p, &arm, times(NOW)).is_ok());
        let other = KeyRing::load(
            vec![KeyRing::generate(TENANT, Alg::ES256, NOW - 100, NOW - 100, &kek).unwrap()],
            &kek,
        )
        .unwrap();
        assert!(matches!(
            cache.validate(&t, &other, &p, &arm, times(NOW)),
            Err(TokenRejection::UnknownKey(_))
        ));
    }

    #[test]
    fn refusals_are_not_cached_and_the_size_is_bounded() {
        let kek = Kek::generate().unwrap();
        let rec = KeyRing::generate(TENANT, Alg::ES256, NOW - 100, NOW - 100, &kek).unwrap();
        let ring = KeyRing::load(vec![rec], &kek).unwrap();
        let cache = VerifiedTokens::new(4);
        let p = public();
        let arm = p.resource_manager();
        let t = token(&ring, "oid");
        // A tampered signature: refused every time, never remembered.
        let forged = format!("{}AAAA", &t[..t.len() - 4]);
        for _ in 0..3 {
            assert!(
                cache
                    .validate(&forged, &ring, &p, &arm, times(NOW))
                    .is_err()
            );
        }
        assert!(cache.is_empty());
        for i in 0..10 {
            let t = token(&ring, &format!("oid-{i}"));
            assert!(cache.validate(&t, &ring, &p, &arm, times(NOW)).is_ok());
            assert!(cache.len() <= 4);
        }
    }
}
