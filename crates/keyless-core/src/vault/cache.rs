//! Last-known-good copies of secrets, so vault reads keep working while the database
//! is briefly unreachable (degraded mode). Filled by every successful read, emptied
//! for a secret on every local write to it and entirely when another replica signals a
//! change; used only when the store fails.

use std::collections::HashMap;
use std::sync::RwLock;

use keyless_store::SecretRecord;

/// Most secrets kept; past that the cache starts over (it is a fallback, not a tier).
const MAX_ENTRIES: usize = 10_000;

/// The cache.
#[derive(Debug, Default)]
pub struct SecretCache {
    secrets: RwLock<HashMap<(String, String), SecretRecord>>,
    lists: RwLock<HashMap<String, Vec<SecretRecord>>>,
}

fn key(vault: &str, name: &str) -> (String, String) {
    (vault.to_ascii_lowercase(), name.to_ascii_lowercase())
}

impl SecretCache {
    /// Remembers a secret read from the store.
    pub fn put(&self, s: &SecretRecord) {
        if let Ok(mut m) = self.secrets.write() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(key(&s.vault, &s.name), s.clone());
        }
    }

    /// A remembered secret.
    pub fn get(&self, vault: &str, name: &str) -> Option<SecretRecord> {
        self.secrets.read().ok()?.get(&key(vault, name)).cloned()
    }

    /// Remembers a vault's listing.
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

    /// Forgets a secret (and its vault's listing) after a local write.
    pub fn forget(&self, vault: &str, name: &str) {
        if let Ok(mut m) = self.secrets.write() {
            m.remove(&key(vault, name));
        }
        if let Ok(mut m) = self.lists.write() {
            m.remove(&vault.to_ascii_lowercase());
        }
    }

    /// Forgets everything (another replica changed something).
    pub fn clear(&self) {
        if let Ok(mut m) = self.secrets.write() {
            m.clear();
        }
        if let Ok(mut m) = self.lists.write() {
            m.clear();
        }
    }
}
