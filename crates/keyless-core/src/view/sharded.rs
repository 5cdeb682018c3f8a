//! A hash map split into a fixed number of shards, each behind its own [`Arc`], so a
//! changed copy shares every shard it did not touch.
//!
//! Cloning a [`ShardedMap`] costs one reference count. Changing one key of a clone copies
//! the shard table (an array of [`SHARDS`] pointers) once and then only the one shard
//! the key hashes to (`len / SHARDS` entries on average), never the whole map: that is
//! what lets the view apply one change to an immutable snapshot in time independent of
//! the tenant's size. Values are meant to be cheap to clone (`Arc`s, small records).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// How many shards every map has. 512 keeps a shard around 200 entries at 100,000 keys,
/// and an empty map's table at a few kilobytes.
pub const SHARDS: usize = 512;

/// A persistent (copy-on-write per shard) hash map.
#[derive(Clone)]
pub struct ShardedMap<K, V> {
    // Which shard a key lives in: fixed for the map's lifetime (clones keep it).
    hasher: RandomState,
    shards: Arc<Vec<Arc<HashMap<K, V>>>>,
    len: usize,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: Arc::new((0..SHARDS).map(|_| Arc::new(HashMap::new())).collect()),
            len: 0,
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V> ShardedMap<K, V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// Every value.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The high bits: the shard's own HashMap uses another hasher, so no correlation
        // with its buckets either way.
        (self.hasher.hash_one(key) >> 32) as usize % SHARDS
    }

    /// The entry for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards.get(self.shard_of(key))?.get(key)
    }

    /// The stored key and value for `key`.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards.get(self.shard_of(key))?.get_key_value(key)
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    fn shard_mut(&mut self, index: usize) -> Option<&mut HashMap<K, V>> {
        // Copies the pointer table if another snapshot shares it, then the one shard if
        // another snapshot shares that.
        Arc::make_mut(&mut self.shards)
            .get_mut(index)
            .map(Arc::make_mut)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let index = self.shard_of(&key);
        let previous = self.shard_mut(index)?.insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let index = self.shard_of(key);
        // Untouched when absent: no shard copied for nothing.
        self.shards.get(index)?.get(key)?;
        let removed = self.shard_mut(index)?.remove(key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }
}

impl<K: Hash + Eq + Clone, V: Clone> FromIterator<(K, V)> for ShardedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let hasher = RandomState::new();
        let mut shards: Vec<HashMap<K, V>> = (0..SHARDS).map(|_| HashMap::new()).collect();
        let mut len = 0;
        for (k, v) in iter {
            let index = (hasher.hash_one(&k) >> 32) as usize % SHARDS;
            if let Some(shard) = shards.get_mut(index)
                && shard.insert(k, v).is_none()
            {
                len += 1;
            }
        }
        Self {
            hasher,
            shards: Arc::new(shards.into_iter().map(Arc::new).collect()),
            len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_clone_leaves_the_original_and_shares_other_shards() {
        let a: ShardedMap<String, u32> = (0..10_000).map(|i| (i.to_string(), i)).collect();
        let mut b = a.clone();
        assert_eq!(b.insert("5".into(), 50), Some(5));
        assert_eq!(b.insert("new".into(), 1), None);
        assert_eq!(b.remove("7"), Some(7));
        assert_eq!(b.remove("absent"), None);
        assert_eq!(a.get("5"), Some(&5));
        assert_eq!(a.get("7"), Some(&7));
        assert_eq!(a.len(), 10_000);
        assert_eq!(b.get("5"), Some(&50));
        assert!(!b.contains_key("7"));
        assert_eq!(b.len(), 10_000);
        assert_eq!(b.iter().count(), 10_000);
        let shared = a
            .shards
            .iter()
            .zip(b.shards.iter())
            .filter(|(x, y)| Arc::ptr_eq(x, y))
            .count();
        assert!(shared >= SHARDS - 3, "{shared} shards shared");
    }
}
