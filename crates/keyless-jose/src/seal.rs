//! Sealing data at rest (signing keys, vault secrets) under a key-encryption key.
//!
//! Format: `version (1 byte) || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)`.
//! The caller's AAD should name what the data is and where it belongs (e.g.
//! `b"signing-key:<tenant>:<kid>"`), so a sealed blob copied to another row fails to open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::digest::{random_bytes, sha256};
use crate::error::{JoseError, Result};

/// The only format version so far; bumped if the layout or cipher changes.
const VERSION: u8 = 1;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// A 256-bit AES-GCM key-encryption key. `Debug` shows only its fingerprint.
pub struct Kek {
    bytes: [u8; KEY_LEN],
    key: LessSafeKey,
}

impl Kek {
    /// A fresh random KEK.
    pub fn generate() -> Result<Kek> {
        Kek::from_array(random_bytes()?)
    }

    /// A KEK from exactly 32 bytes (e.g. read from a 0600 file or a secret manager).
    pub fn from_bytes(bytes: &[u8]) -> Result<Kek> {
        let array: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| JoseError::KekLength(bytes.len()))?;
        Kek::from_array(array)
    }

    fn from_array(bytes: [u8; KEY_LEN]) -> Result<Kek> {
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| JoseError::Crypto("loading AES-256-GCM key"))?;
        Ok(Kek {
            bytes,
            key: LessSafeKey::new(unbound),
        })
    }

    /// The raw key. SECRET: only for writing it to protected storage.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.bytes
    }

    /// A short, non-secret identifier of this key (16 hex digits of a domain-separated
    /// SHA-256), stored next to sealed data so a server can tell at startup that it was
    /// given a KEK that does not match its database, instead of failing on every open.
    pub fn fingerprint(&self) -> String {
        let mut input = Vec::with_capacity(32 + KEY_LEN);
        // Domain separation: the fingerprint must not equal a hash of the key that
        // any other part of the system might publish.
        input.extend_from_slice(b"keyless/kek-fingerprint/v1\0");
        input.extend_from_slice(&self.bytes);
        sha256(&input)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Encrypts and authenticates `plaintext`, binding it to `aad`.
    ///
    /// Each call draws a random 96-bit nonce; with random nonces a key stays safe
    /// for about 2^32 seals, far above what a KEK protects here.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(plaintext);
        let header_len = 1 + NONCE_LEN;
        let (_, body) = out.split_at_mut(header_len);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                body,
            )
            .map_err(|_| JoseError::Crypto("sealing"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts data from [`seal`](Self::seal). Fails with [`JoseError::Unseal`] if it
    /// was altered or truncated, or if the key or `aad` differ.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let (&version, rest) = sealed.split_first().ok_or(JoseError::Unseal)?;
        if version != VERSION {
            return Err(JoseError::SealVersion(version));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(JoseError::Unseal);
        }
        let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| JoseError::Unseal)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| JoseError::Unseal)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trip() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(b"private key", b"signing-key:t1:k1").unwrap();
        assert_eq!(sealed.len(), 1 + 12 + 11 + 16);
        assert_eq!(sealed[0], 1);
        assert_eq!(
            kek.open(&sealed, b"signing-key:t1:k1").unwrap(),
            b"private key"
        );
        // Fresh nonce every time.
        assert_ne!(
            sealed,
            kek.seal(b"private key", b"signing-key:t1:k1").unwrap()
        );
        let empty = kek.seal(b"", b"").unwrap();
        assert_eq!(kek.open(&empty, b"").unwrap(), b"");
        // Reloaded from bytes, the same key opens it.
        let again = Kek::from_bytes(&kek.to_bytes()).unwrap();
        assert_eq!(again.fingerprint(), kek.fingerprint());
        assert_eq!(
            again.open(&sealed, b"signing-key:t1:k1").unwrap(),
            b"private key"
        );
    }

    #[test]
    fn tamper_wrong_aad_wrong_key_truncation() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(b"secret", b"aad").unwrap();
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(kek.open(&bad, b"aad"), Err(JoseError::Unseal)),
                "byte {i}"
            );
        }
        assert!(matches!(kek.open(&sealed, b"aae"), Err(JoseError::Unseal)));
        assert!(matches!(kek.open(&sealed, b""), Err(JoseError::Unseal)));
        let other = Kek::generate().unwrap();
        assert_ne!(other.fingerprint(), kek.fingerprint());
        assert!(matches!(
            other.open(&sealed, b"aad"),
            Err(JoseError::Unseal)
        ));
        for len in 0..sealed.len() {
            assert!(kek.open(&sealed[..len], b"aad").is_err(), "len {len}");
        }
        let mut future = sealed.clone();
        future[0] = 2;
        assert!(matches!(
            kek.open(&future, b"aad"),
            Err(JoseError::SealVersion(2))
        ));
    }

    #[test]
    fn key_length_and_debug() {
        assert!(matches!(
            Kek::from_bytes(&[0; 31]),
            Err(JoseError::KekLength(31))
        ));
        assert!(matches!(
            Kek::from_bytes(&[0; 33]),
            Err(JoseError::KekLength(33))
        ));
        let kek = Kek::from_bytes(&[7; 32]).unwrap();
        let debug = format!("{kek:?}");
        assert!(debug.contains(&kek.fingerprint()));
        assert!(!debug.contains("7, 7"));
        assert_eq!(kek.fingerprint().len(), 16);
        // Pinned (computed independently with Python's hashlib): a changed
        // fingerprint would make every existing database look like it has the wrong KEK.
        assert_eq!(kek.fingerprint(), "f972c3b4656f249e");
    }
}
