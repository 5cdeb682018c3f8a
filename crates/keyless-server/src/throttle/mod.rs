//! Request rate limits: token buckets that refuse a request with 429 and `Retry-After`
//! before it costs any cryptography or writes anything.
//!
//! | limit | key | charged for | checked |
//! |---|---|---|---|
//! | per client | tenant + `client_id` of a token request | every token request | before the exchange |
//! | failures per address | client address (IPv6: its /64) | a refused token request; a management or vault request whose bearer token was refused | before anything, on every request |
//! | per principal | the caller's object id | every authenticated management or vault request | right after authentication |
//!
//! Failures are charged after the fact and only checked before: a thousand pods
//! renewing tokens through one ingress address never touch the address limit, however
//! bursty, because successes cost nothing there. Limits are per replica. See
//! `docs/design/abuse.md`.

mod address;
mod bucket;
mod keyed;
mod layer;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use address::{Cidr, address_key, client_address};
pub use bucket::Rate;
pub use layer::ClientAddress;
pub(crate) use layer::{Protocol, limit_failures, throttled};

use keyed::KeyedBuckets;

/// Seconds of its rate a bucket holds: the burst a quiet client may send at once.
pub const BURST_SECONDS: u32 = 5;

/// Most keys one limit tracks (about 50 bytes each); beyond it, new keys share a bucket.
pub const MAX_KEYS: usize = 200_000;

/// The request rate limits of one server. `0` turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Token requests per second per tenant and `client_id`.
    pub per_client: u32,
    /// Failed requests per second per client address.
    pub failures_per_address: u32,
    /// Management and vault requests per second per authenticated principal.
    pub per_principal: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
}

impl RateLimits {
    /// Every limit off (tests that measure something else, benchmarks of the crypto).
    pub fn off() -> Self {
        Self {
            per_client: 0,
            failures_per_address: 0,
            per_principal: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for RateLimits {
    /// The defaults of `keyless serve`: far above what normal use sends.
    fn default() -> Self {
        Self {
            per_client: 200,
            failures_per_address: 50,
            per_principal: 1_000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Per tenant and client id.
    Client,
    /// Failures per address.
    FailuresPerAddress,
    /// Per principal.
    Principal,
}

/// A request refused by a limit, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// The limit.
    pub limit: Limit,
    /// Whole seconds until the limit would let one request through (at least 1).
    pub retry_after: u64,
}

/// The buckets of every limit.
#[derive(Debug)]
pub struct Throttle {
    per_client: Option<KeyedBuckets>,
    failures: Option<KeyedBuckets>,
    per_principal: Option<KeyedBuckets>,
    trusted_proxies: Vec<Cidr>,
    refused: [AtomicU64; 3],
}

impl Throttle {
    /// Buckets for `limits`.
    pub fn new(limits: &RateLimits) -> Self {
        let buckets = |per_second| {
            Rate::per_second(per_second, BURST_SECONDS).map(|r| KeyedBuckets::new(r, MAX_KEYS))
        };
        Self {
            per_client: buckets(limits.per_client),
            failures: buckets(limits.failures_per_address),
            per_principal: buckets(limits.per_principal),
            trusted_proxies: limits.trusted_proxies.clone(),
            refused: Default::default(),
        }
    }

    /// The proxies trusted to name the client.
    pub fn trusted_proxies(&self) -> &[Cidr] {
        &self.trusted_proxies
    }

    /// Refuses a request from `address` while its failures are over their limit.
    pub fn check_address(&self, address: IpAddr, now: Instant) -> Result<(), Throttled> {
        self.check(self.failures.as_ref(), Limit::FailuresPerAddress, |b| {
            b.peek(address_key(address), now)
        })
    }

    /// Counts a failed request against `address`.
    pub fn charge_failure(&self, address: IpAddr, now: Instant) {
        if let Some(b) = &self.failures {
            b.charge(address_key(address), now);
        }
    }

    /// Takes one token request of `client_id` in `tenant`.
    pub fn take_client(
        &self,
        tenant: &str,
        client_id: &str,
        now: Instant,
    ) -> Result<(), Throttled> {
        // Tenant ids and client ids are GUIDs compared case-insensitively by the
        // exchange; so is the key, so case variants share one bucket.
        let key = CaseFolded(tenant, client_id);
        self.check(self.per_client.as_ref(), Limit::Client, |b| {
            b.take(&key, now)
        })
    }

    /// Takes one management or vault request of the principal `object_id`.
    pub fn take_principal(&self, object_id: &str, now: Instant) -> Result<(), Throttled> {
        self.check(self.per_principal.as_ref(), Limit::Principal, |b| {
            b.take(object_id, now)
        })
    }

    /// Requests refused so far by each limit (client, failures per address, principal).
    pub fn refused(&self) -> [(Limit, u64); 3] {
        [Limit::Client, Limit::FailuresPerAddress, Limit::Principal]
            .map(|l| (l, self.counter(l).load(Ordering::Relaxed)))
    }

    fn counter(&self, limit: Limit) -> &AtomicU64 {
        let [client, address, principal] = &self.refused;
        match limit {
            Limit::Client => client,
            Limit::FailuresPerAddress => address,
            Limit::Principal => principal,
        }
    }

    fn check(
        &self,
        buckets: Option<&KeyedBuckets>,
        limit: Limit,
        f: impl FnOnce(&KeyedBuckets) -> Result<(), Duration>,
    ) -> Result<(), Throttled> {
        let Some(b) = buckets else { return Ok(()) };
        f(b).map_err(|wait| {
            self.counter(limit).fetch_add(1, Ordering::Relaxed);
            Throttled {
                limit,
                retry_after: retry_after_seconds(wait),
            }
        })
    }

    /// Prometheus text for the refusals.
    pub fn render_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP keyless_requests_throttled_total Requests refused with 429 by a rate limit.\n\
             # TYPE keyless_requests_throttled_total counter\n",
        );
        for (limit, n) in self.refused() {
            let name = match limit {
                Limit::Client => "per_client",
                Limit::FailuresPerAddress => "failures_per_address",
                Limit::Principal => "per_principal",
            };
            out.push_str(&format!(
                "keyless_requests_throttled_total{{limit=\"{name}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP keyless_rate_limit_buckets Clients, addresses and principals each limit tracks now.\n\
             # TYPE keyless_rate_limit_buckets gauge\n",
        );
        for (name, buckets) in [
            ("per_client", &self.per_client),
            ("failures_per_address", &self.failures),
            ("per_principal", &self.per_principal),
        ] {
            let n = buckets.as_ref().map_or(0, KeyedBuckets::len);
            out.push_str(&format!(
                "keyless_rate_limit_buckets{{limit=\"{name}\"}} {n}\n"
            ));
        }
        out
    }
}

/// A (tenant, client id) key that hashes as its ASCII-lowercase form, without
/// allocating one on the token endpoint's path.
struct CaseFolded<'a>(&'a str, &'a str);

impl std::hash::Hash for CaseFolded<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for part in [self.0, self.1] {
            for b in part.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
            // A separator, so ("ab", "c") and ("a", "bc") differ.
            state.write_u8(0xff);
        }
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_with_a_retry_time_and_count() {
        let t = Throttle::new(&RateLimits {
            per_client: 1,
            failures_per_address: 1,
            per_principal: 1,
            trusted_proxies: vec![],
        });
        let now = Instant::now();
        for _ in 0..BURST_SECONDS {
            assert!(t.take_client("T", "C", now).is_ok());
        }
        // Case variants of the same GUIDs share the bucket.
        let refused = t.take_client("t", "c", now).unwrap_err();
        assert_eq!(
            refused,
            Throttled {
                limit: Limit::Client,
                retry_after: 1
            }
        );
        assert!(t.take_client("t", "other", now).is_ok());

        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..BURST_SECONDS {
            assert!(t.check_address(a, now).is_ok());
            t.charge_failure(a, now);
        }
        // Same /64: the neighbour is refused too.
        assert!(t.check_address(b, now).is_err());
        assert!(
            t.check_address("2001:db8:0:1::1".parse().unwrap(), now)
                .is_ok()
        );
        assert_eq!(t.refused()[0], (Limit::Client, 1));
        assert_eq!(t.refused()[1], (Limit::FailuresPerAddress, 1));
        assert!(t.render_metrics().contains("limit=\"per_client\"} 1\n"));
    }

    #[test]
    fn off_never_refuses() {
        let t = Throttle::new(&RateLimits::off());
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10_000 {
            assert!(t.take_client("t", "c", now).is_ok());
            assert!(t.take_principal("p", now).is_ok());
            t.charge_failure(a, now);
            assert!(t.check_address(a, now).is_ok());
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
