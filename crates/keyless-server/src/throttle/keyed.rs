//! Buckets by key, bounded in memory whatever keys a hostile client invents.
//!
//! Keys are hashed with a per-process random key (SipHash), so an entry is a fixed
//! 8 bytes whatever the key's length, and nobody outside can aim two keys at one slot.
//! The map is split into shards (one short, synchronous lock each, never held across
//! an await). A shard that reaches its share of the cap first forgets full buckets (a
//! full bucket is the same as none); if every bucket is still in use, new keys share
//! the shard's overflow bucket, which throttles a flood of new keys as one client
//! instead of letting it grow the map. Besides, a shard forgets its full buckets at
//! most once per fill time when a new key arrives, so memory follows the keys active
//! in the last few seconds, not the cap.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::bucket::{Bucket, Rate};

const SHARDS: usize = 16;

/// Token buckets by key, at one rate.
#[derive(Debug)]
pub(crate) struct KeyedBuckets {
    rate: Rate,
    per_shard: usize,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

#[derive(Debug)]
struct Shard {
    buckets: HashMap<u64, Bucket>,
    overflow: Option<Bucket>,
    /// When full buckets were last forgotten.
    swept: Option<Instant>,
}

impl KeyedBuckets {
    /// Buckets at `rate`, at most about `max_keys` of them.
    pub(crate) fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        overflow: None,
                        swept: None,
                    })
                })
                .collect(),
        }
    }

    /// Takes a token from `key`'s bucket, or says how long until one is there.
    pub(crate) fn take(&self, key: impl Hash, now: Instant) -> Result<(), Duration> {
        self.with_bucket(key, now, |b, rate| b.take(rate, now))
    }

    /// Whether `key`'s bucket has a token, without taking it.
    pub(crate) fn peek(&self, key: impl Hash, now: Instant) -> Result<(), Duration> {
        self.with_bucket(key, now, |b, rate| b.peek(rate, now))
    }

    /// Takes a token from `key`'s bucket after the fact (never into debt).
    pub(crate) fn charge(&self, key: impl Hash, now: Instant) {
        self.with_bucket(key, now, |b, rate| b.charge(rate, now));
    }

    /// Buckets held now (all shards).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.buckets.len()).unwrap_or(0))
            .sum()
    }

    fn with_bucket<T>(
        &self,
        key: impl Hash,
        now: Instant,
        f: impl FnOnce(&mut Bucket, &Rate) -> T,
    ) -> T {
        let hash = self.hasher.hash_one(key);
        // The low bits pick the shard; the map hashes the whole value again.
        let index = usize::try_from(hash % SHARDS as u64).unwrap_or(0);
        let rate = &self.rate;
        let Some(shard) = self.shards.get(index) else {
            // Unreachable (index < SHARDS); a throwaway full bucket serves the request.
            return f(&mut Bucket::full(rate, now), rate);
        };
        // A poisoned lock only means another request panicked mid-update of a few
        // numbers; the data is still usable.
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !shard.buckets.contains_key(&hash) {
            let due = shard
                .swept
                .is_none_or(|t| now.saturating_duration_since(t) >= rate.fill_time());
            if due || shard.buckets.len() >= self.per_shard {
                shard.buckets.retain(|_, b| !b.is_full(rate, now));
                shard.swept = Some(now);
                if shard.buckets.capacity() > 4 * shard.buckets.len().max(16) {
                    shard.buckets.shrink_to_fit();
                }
            }
            if shard.buckets.len() >= self.per_shard {
                let overflow = shard
                    .overflow
                    .get_or_insert_with(|| Bucket::full(rate, now));
                return f(overflow, rate);
            }
        }
        let bucket = shard
            .buckets
            .entry(hash)
            .or_insert_with(|| Bucket::full(rate, now));
        f(bucket, rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst_seconds: u32) -> Rate {
        Rate::per_second(per_second, burst_seconds).unwrap()
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let k = KeyedBuckets::new(rate(1, 2), 1000);
        let t = Instant::now();
        assert!(k.take("a", t).is_ok());
        assert!(k.take("a", t).is_ok());
        assert!(k.take("a", t).is_err());
        assert!(k.take("b", t).is_ok());
        assert!(k.peek("a", t + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn a_flood_of_new_keys_stays_within_the_cap_and_shares_one_bucket_per_shard() {
        let k = KeyedBuckets::new(rate(1, 1), 160);
        let t = Instant::now();
        let mut refused = 0;
        for i in 0..100_000u32 {
            if k.take(i, t).is_err() {
                refused += 1;
            }
        }
        assert!(k.len() <= 160, "{} buckets", k.len());
        // 160 keys got their own token, one overflow token per shard, the rest refused.
        assert!(refused >= 100_000 - 160 - SHARDS, "{refused}");
        // Once the buckets are full again they are forgotten and new keys are served.
        let later = t + Duration::from_secs(2);
        assert!(k.take(1_000_000u32, later).is_ok());
    }

    #[test]
    fn idle_buckets_are_forgotten_without_waiting_for_the_cap() {
        let k = KeyedBuckets::new(rate(1, 1), 1_000_000);
        let t = Instant::now();
        for i in 0..10_000u32 {
            let _ = k.take(i, t);
        }
        assert_eq!(k.len(), 10_000);
        // A second later every one of them is full again; new keys sweep their shard.
        let later = t + Duration::from_secs(2);
        for i in 0..(SHARDS as u32 * 20) {
            let _ = k.take(1_000_000 + i, later);
        }
        assert!(k.len() <= SHARDS * 20, "{} buckets kept", k.len());
    }
}
