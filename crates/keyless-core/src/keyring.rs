//! Keyless' own token signing keys, per tenant, with rotation.
//!
//! A key's life: created and published in the JWKS at once; signs from `active_from`
//! (a rotation may set that in the future so relying parties see the key before any
//! token uses it); retired when a newer key becomes active; unpublished and deleted
//! once every token it signed has expired (retired + token lifetime + leeway).
//! Private keys are stored sealed with the key-encryption key, bound to their kid.

use std::collections::HashMap;
use std::sync::Arc;

use keyless_jose::{Alg, Jwk, JwkSet, Kek, SigningKey, VerifyingKey};
use keyless_store::SigningKeyRecord;

/// Errors loading or creating keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// A stored key could not be unsealed: the key-encryption key does not match.
    #[error("signing key {kid} cannot be decrypted with this key-encryption key")]
    Unseal {
        /// The key id.
        kid: String,
    },
    /// A crypto operation failed.
    #[error("signing key {kid}: {source}")]
    Crypto {
        /// The key id.
        kid: String,
        /// What failed.
        #[source]
        source: keyless_jose::JoseError,
    },
}

/// One loaded key.
#[derive(Debug)]
pub struct LoadedKey {
    /// The stored record (sealed private key included).
    pub record: SigningKeyRecord,
    /// The private key, ready to sign.
    pub signer: Arc<SigningKey>,
    /// The public key, ready to verify.
    pub verifier: VerifyingKey,
    /// The published JWK.
    pub jwk: Jwk,
}

/// All keys, indexed for the hot path. Immutable: a change builds a new ring.
#[derive(Debug, Default)]
pub struct KeyRing {
    by_tenant: HashMap<String, Vec<Arc<LoadedKey>>>,
    by_kid: HashMap<String, Arc<LoadedKey>>,
}

fn aad(kid: &str) -> Vec<u8> {
    format!("keyless-signing-key:{kid}").into_bytes()
}

impl KeyRing {
    /// Unseals and indexes stored keys.
    pub fn load(records: Vec<SigningKeyRecord>, kek: &Kek) -> Result<KeyRing, KeyRingError> {
        let mut ring = KeyRing::default();
        for record in records {
            let der = kek
                .open(&record.sealed_private_key, &aad(&record.kid))
                .map_err(|_| KeyRingError::Unseal {
                    kid: record.kid.clone(),
                })?;
            let crypto = |source| KeyRingError::Crypto {
                kid: record.kid.clone(),
                source,
            };
            let alg = Alg::from_name(&record.alg).ok_or_else(|| {
                crypto(keyless_jose::JoseError::UnsupportedAlg(record.alg.clone()))
            })?;
            let signer = SigningKey::from_pkcs8(alg, record.kid.clone(), &der).map_err(crypto)?;
            let verifier = signer.verifying_key().map_err(crypto)?;
            let jwk = signer.public_jwk();
            let key = Arc::new(LoadedKey {
                record,
                signer: Arc::new(signer),
                verifier,
                jwk,
            });
            ring.by_kid.insert(key.record.kid.clone(), key.clone());
            ring.by_tenant
                .entry(key.record.tenant_id.clone())
                .or_default()
                .push(key);
        }
        for keys in ring.by_tenant.values_mut() {
            keys.sort_by_key(|k| (k.record.active_from, k.record.created_at));
        }
        Ok(ring)
    }

    /// Generates a new sealed key record for `tenant`, signing from `active_from`.
    pub fn generate(
        tenant: &str,
        alg: Alg,
        now: i64,
        active_from: i64,
        kek: &Kek,
    ) -> Result<SigningKeyRecord, KeyRingError> {
        let crypto = |source| KeyRingError::Crypto {
            kid: "(new)".into(),
            source,
        };
        // A random kid: the key is not derivable from it and it never repeats.
        let kid_bytes = keyless_jose::random_bytes::<18>().map_err(crypto)?;
        let kid =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, kid_bytes);
        let key = SigningKey::generate(alg, kid.clone()).map_err(crypto)?;
        let sealed = kek.seal(key.pkcs8_der(), &aad(&kid)).map_err(crypto)?;
        Ok(SigningKeyRecord {
            kid,
            tenant_id: tenant.to_string(),
            alg: alg.as_str().to_string(),
            sealed_private_key: sealed,
            created_at: now,
            active_from,
            retired_at: None,
        })
    }

    /// The key that signs for `tenant` at `now`: the newest one already active and not
    /// yet retired (a key retired at `now` has been replaced, even within the same second).
    pub fn signer(&self, tenant: &str, now: i64) -> Option<&Arc<LoadedKey>> {
        self.by_tenant
            .get(tenant)?
            .iter()
            .rev()
            .find(|k| k.record.active_from <= now && k.record.retired_at.is_none_or(|r| r > now))
    }

    /// Whether `tenant` has a key that will sign now or later (not retired).
    pub fn has_current_or_next(&self, tenant: &str) -> bool {
        self.by_tenant
            .get(tenant)
            .is_some_and(|keys| keys.iter().any(|k| k.record.retired_at.is_none()))
    }

    /// The newest key of a tenant, active or pre-published.
    pub fn newest(&self, tenant: &str) -> Option<&Arc<LoadedKey>> {
        // The key no rotation has retired yet is the newest; times are whole seconds,
        // so ordering by time alone cannot tell two keys made in the same second apart.
        let keys = self.by_tenant.get(tenant)?;
        keys.iter()
            .rev()
            .find(|k| k.record.retired_at.is_none())
            .or_else(|| keys.last())
    }

    /// Every key of a tenant (retired ones included until deleted).
    pub fn tenant_keys(&self, tenant: &str) -> &[Arc<LoadedKey>] {
        self.by_tenant.get(tenant).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The published JWKS of a tenant.
    pub fn jwks(&self, tenant: &str) -> JwkSet {
        JwkSet {
            keys: self
                .tenant_keys(tenant)
                .iter()
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// A key by id (any tenant).
    pub fn by_kid(&self, kid: &str) -> Option<&Arc<LoadedKey>> {
        self.by_kid.get(kid)
    }
}
