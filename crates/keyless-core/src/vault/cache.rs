//! Secrets held in memory, so a vault read does not go to the database: a read-through
//! cache that is coherent with this server's writes and follows other replicas' writes
//! through the store's change feed. It also keeps vault reads working while the
//! database is briefly unreachable (degraded mode): a cached secret is served, a miss
//! fails.
//!
//! Coherence: every change to a secret empties its entry *after* the write commits, and
//! every entry point that cannot name the secrets it changed (another replica's change
//! notification, a vault or group deleted, housekeeping purges) empties the whole cache.
//! Each emptying advances a generation; a read that went to the database stores its
//! result only if no emptying happened while it was in flight, so a slow read of the old
//! state can never land after the write that replaced it. Entries carry the sealed
//! (encrypted) values, as the database does; values are opened per read.
//!
//! Bounded: at most [`MAX_ENTRIES`] secrets and [`MAX_BYTES`] of sealed values; past
//! either the cache starts over (cheap, and a hostile writer cannot make it grow).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keyless_store::SecretRecord;

/// Most secrets kept.
const MAX_ENTRIES: usize = 10_000;
/// Most bytes of sealed values kept (a secret is at most 25 KB a version).
const MAX_BYTES: usize = 64 << 20;

/// The cache.
#[derive(Debug, Default)]
pub struct SecretCache {
    inner: RwLock<Inner>,
    lists: RwLock<HashMap<String, Vec<SecretRecord>>>,
}

#[derive(Debug, Default)]
struct Inner {
    secrets: HashMap<(String, String), Arc<SecretRecord>>,
    bytes: usize,
    /// Advanced by every emptying; see the module documentation.
    generation: u64,
}

/// The generation a read started at, for [`SecretCache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Generation(u64);

fn key(vault: &str, name: &str) -> (String, String) {
    (vault.to_ascii_lowercase(), name.to_ascii_lowercase())
}

fn size(s: &SecretRecord) -> usize {
    s.versions
        .iter()
        .map(|v| v.sealed_value.len() + v.version.len() + 64)
        .sum::<usize>()
        + s.name.len()
}

impl SecretCache {
    /// The generation to pass to [`SecretCache::put`] for a read starting now.
    pub fn generation(&self) -> Generation {
        Generation(self.inner.read().map(|i| i.generation).unwrap_or(u64::MAX))
    }

    /// Stores a secret read from the store by a read that started at `at`, unless the
    /// cache was emptied since (the read may have seen a state already replaced).
    /// Returns the secret, shared.
    pub fn put(&self, at: Generation, s: SecretRecord) -> Arc<SecretRecord> {
        let s = Arc::new(s);
        if let Ok(mut i) = self.inner.write()
            && i.generation == at.0
        {
            let add = size(&s);
            if i.secrets.len() >= MAX_ENTRIES || i.bytes + add > MAX_BYTES {
                i.secrets.clear();
                i.bytes = 0;
            }
            if let Some(old) = i.secrets.insert(key(&s.vault, &s.name), s.clone()) {
                i.bytes = i.bytes.saturating_sub(size(&old));
            }
            i.bytes += add;
        }
        s
    }

    /// A cached secret.
    pub fn get(&self, vault: &str, name: &str) -> Option<Arc<SecretRecord>> {
        self.inner
            .read()
            .ok()?
            .secrets
            .get(&key(vault, name))
            .cloned()
    }

    /// Remembers a vault's listing (served only while the database is unreachable).
    pub fn put_list(&self, vault: &str, list: &[SecretRecord]) {
        if let Ok(mut m) = self.lists.write() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(vault.to_ascii_lowercase(), list.to_vec());
        }
    }

    /// A remembered listing.
    pub fn list(&self, vault: &str) -> Option<Vec<SecretRecord>> {
        self.lists
            .read()
            .ok()?
            .get(&vault.to_ascii_lowercase())
            .cloned()
    }

    /// Forgets a secret (and its vault's listing): call after a local write to it has
    /// committed (or failed).
    pub fn forget(&self, vault: &str, name: &str) {
        if let Ok(mut i) = self.inner.write() {
            if let Some(old) = i.secrets.remove(&key(vault, name)) {
                i.bytes = i.bytes.saturating_sub(size(&old));
            }
            i.generation = i.generation.wrapping_add(1);
        }
        if let Ok(mut m) = self.lists.write() {
            m.remove(&vault.to_ascii_lowercase());
        }
    }

    /// Forgets everything (another replica changed something, or a change this server
    /// made cannot name the secrets it touched).
    pub fn clear(&self) {
        if let Ok(mut i) = self.inner.write() {
            i.secrets.clear();
            i.bytes = 0;
            i.generation = i.generation.wrapping_add(1);
        }
        if let Ok(mut m) = self.lists.write() {
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_store::SecretVersionRecord;

    fn secret(vault: &str, name: &str, value: &[u8]) -> SecretRecord {
        SecretRecord {
            vault: vault.into(),
            name: name.into(),
            deleted_at: None,
            purge_at: None,
            versions: vec![SecretVersionRecord {
                vault: vault.into(),
                name: name.into(),
                version: "v1".into(),
                sealed_value: value.to_vec(),
                content_type: None,
                tags: Default::default(),
                enabled: true,
                nbf: None,
                exp: None,
                created_at: 0,
                updated_at: 0,
            }],
        }
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_stored() {
        let c = SecretCache::default();
        let before = c.generation();
        // A write commits and forgets the secret while the read is in flight.
        c.forget("v", "s");
        c.put(before, secret("v", "s", b"old"));
        assert!(c.get("v", "s").is_none(), "the stale read was cached");
        // A read that started after the write is stored, case-insensitively.
        let after = c.generation();
        c.put(after, secret("V", "S", b"new"));
        let hit = c.get("v", "s").expect("cached");
        assert_eq!(hit.versions[0].sealed_value, b"new");
        c.clear();
        assert!(c.get("v", "s").is_none());
        c.put(after, secret("v", "s", b"new"));
        assert!(
            c.get("v", "s").is_none(),
            "a read from before clear() was cached"
        );
    }

    #[test]
    fn size_is_bounded_by_bytes() {
        let c = SecretCache::default();
        let big = vec![0u8; 25 * 1024];
        for i in 0..(MAX_BYTES / big.len() + 10) {
            c.put(c.generation(), secret("v", &format!("s{i}"), &big));
        }
        let i = c.inner.read().unwrap();
        assert!(i.bytes <= MAX_BYTES, "{} bytes", i.bytes);
        assert!(i.secrets.len() < MAX_BYTES / big.len() + 10);
    }
}
