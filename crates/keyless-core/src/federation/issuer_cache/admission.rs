//! Which tenant uses which issuer: the per-tenant quota and the expiry of entries.
//!
//! An issuer's entry is shared (fetched once however many tenants use it) and
//! admitted per tenant: a tenant holds at most `max_issuers_per_tenant` distinct
//! issuers, and only its own admissions count and expire, so a tenant that fills its
//! quota neither evicts nor blocks another's issuers. An admission expires when unused
//! for `idle_ttl_secs`, or `failed_ttl_secs` while the issuer has never been fetched
//! successfully (failures are cheap to create and must not hold a slot for a day). An
//! entry no admission refers to is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{CacheSettings, Entry, IssuerError};

/// One tenant's use of one issuer.
#[derive(Debug)]
pub(super) struct Admission {
    /// The shared entry of the issuer.
    pub entry: Arc<Entry>,
    last_used: AtomicI64,
}

impl Admission {
    /// Records a use at `now`: an atomic store, so a cache hit stays lock-free. Only
    /// written when the second changes, to keep concurrent hits off one cache line.
    pub fn touch(&self, now: i64) {
        if self.last_used.load(Ordering::Relaxed) < now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }

    fn expired(&self, now: i64, settings: &CacheSettings) -> bool {
        let ttl = if self.entry.keys.load().is_some() {
            settings.idle_ttl_secs
        } else {
            settings.failed_ttl_secs
        };
        // A fetch under way is not idle: requests are waiting on it.
        now.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= ttl
            && self.entry.refresh.try_lock().is_ok()
    }
}

/// The admissions of every tenant and the entries they share.
#[derive(Debug, Default)]
pub(super) struct Index {
    tenants: HashMap<String, HashMap<String, Arc<Admission>>>,
    issuers: HashMap<String, Arc<Entry>>,
}

impl Index {
    /// `tenant`'s admission of `issuer`, if it holds one.
    pub fn get(&self, tenant: &str, issuer: &str) -> Option<&Arc<Admission>> {
        self.tenants.get(tenant)?.get(issuer)
    }

    /// Admits `issuer` for `tenant`, first dropping the tenant's expired admissions
    /// when it is at its quota; refused when it still is.
    pub fn admit(
        &mut self,
        tenant: &str,
        issuer: &str,
        now: i64,
        settings: &CacheSettings,
    ) -> Result<Arc<Admission>, IssuerError> {
        if let Some(a) = self.get(tenant, issuer) {
            return Ok(a.clone());
        }
        if self.count(tenant) >= settings.max_issuers_per_tenant {
            self.sweep_tenant(tenant, now, settings);
        }
        if self.count(tenant) >= settings.max_issuers_per_tenant {
            return Err(IssuerError::TenantQuota {
                limit: settings.max_issuers_per_tenant,
            });
        }
        let entry = self
            .issuers
            .entry(issuer.to_string())
            .or_insert_with(|| Arc::new(Entry::new()))
            .clone();
        let admission = Arc::new(Admission {
            entry,
            last_used: AtomicI64::new(now),
        });
        self.tenants
            .entry(tenant.to_string())
            .or_default()
            .insert(issuer.to_string(), admission.clone());
        Ok(admission)
    }

    /// Distinct issuers `tenant` holds.
    pub fn count(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, HashMap::len)
    }

    /// Distinct issuers cached (shared entries, whatever the number of tenants).
    pub fn issuers(&self) -> usize {
        self.issuers.len()
    }

    /// Whether anything has expired (checked under the read lock, so a periodic
    /// sweep that finds nothing never takes the write lock).
    pub fn has_expired(&self, now: i64, settings: &CacheSettings) -> bool {
        self.tenants
            .values()
            .flat_map(HashMap::values)
            .any(|a| a.expired(now, settings))
            || self.issuers.values().any(|e| Arc::strong_count(e) == 1)
    }

    /// Drops every expired admission and every entry left without one; returns how
    /// many admissions were dropped.
    pub fn sweep(&mut self, now: i64, settings: &CacheSettings) -> usize {
        let mut dropped = 0;
        for admissions in self.tenants.values_mut() {
            let before = admissions.len();
            admissions.retain(|_, a| !a.expired(now, settings));
            dropped += before - admissions.len();
        }
        self.tenants.retain(|_, admissions| !admissions.is_empty());
        self.drop_orphans();
        dropped
    }

    /// Whether admitting a new issuer for `tenant` would be refused: at its quota with
    /// nothing expired. Checked under the read lock, so a tenant hammering its full
    /// quota never takes the write lock other tenants' misses need.
    pub fn refuses(&self, tenant: &str, now: i64, settings: &CacheSettings) -> bool {
        self.tenants.get(tenant).is_some_and(|admissions| {
            admissions.len() >= settings.max_issuers_per_tenant
                && !admissions.values().any(|a| a.expired(now, settings))
        })
    }

    fn sweep_tenant(&mut self, tenant: &str, now: i64, settings: &CacheSettings) {
        let Some(admissions) = self.tenants.get_mut(tenant) else {
            return;
        };
        let mut freed = Vec::new();
        admissions.retain(|issuer, a| {
            let keep = !a.expired(now, settings);
            if !keep {
                freed.push(issuer.clone());
            }
            keep
        });
        // Only the issuers just released can have become orphans.
        for issuer in freed {
            if self
                .issuers
                .get(&issuer)
                .is_some_and(|e| Arc::strong_count(e) == 1)
            {
                self.issuers.remove(&issuer);
            }
        }
    }

    /// Entries only the index refers to: no tenant holds them and no request is using
    /// them (a request in flight keeps its entry until a later sweep).
    fn drop_orphans(&mut self) {
        self.issuers.retain(|_, e| Arc::strong_count(e) > 1);
    }
}
