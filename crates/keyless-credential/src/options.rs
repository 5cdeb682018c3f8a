//! Options shared by every credential: where the token service is, whom to trust,
//! when to refresh, how to retry.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::TokenCache;
use crate::clock::{Clock, SystemClock};

/// Default timeout of one token request (connect + TLS + response).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Options shared by every credential in this crate.
///
/// Everything has a default: the authority host comes from `AZURE_AUTHORITY_HOST`, else
/// Microsoft Entra ID's public cloud; certificates are checked against the platform's
/// trust store (which honours `SSL_CERT_FILE`); tokens are refreshed as
/// [`RefreshPolicy::default`] says and requests retried as [`RetryPolicy::default`] says.
///
/// ```
/// use std::time::Duration;
/// use keyless_credential::{CredentialOptions, RefreshPolicy, RetryPolicy};
///
/// let options = CredentialOptions::new()
///     .authority_host("https://keyless.example:8443")
///     .ca_file("/etc/keyless/ca.pem")
///     .refresh_policy(RefreshPolicy::default().lifetime_fraction(0.8))
///     .retry_policy(RetryPolicy::default().max_retries(5))
///     .timeout(Duration::from_secs(10));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct CredentialOptions {
    pub(crate) authority_host: Option<String>,
    pub(crate) ca: Option<CaSource>,
    pub(crate) trust_system_roots: bool,
    pub(crate) http_client: Option<reqwest::Client>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) refresh: RefreshPolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) cache: Option<TokenCache>,
    pub(crate) timeout: Duration,
}

/// Where extra trusted CA certificates come from.
#[derive(Clone)]
pub(crate) enum CaSource {
    Pem(Vec<u8>),
    File(PathBuf),
}

impl Default for CredentialOptions {
    fn default() -> Self {
        Self {
            authority_host: None,
            ca: None,
            trust_system_roots: false,
            http_client: None,
            clock: Arc::new(SystemClock),
            refresh: RefreshPolicy::default(),
            retry: RetryPolicy::default(),
            cache: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl CredentialOptions {
    /// The defaults (same as [`Default::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The token service's authority host, e.g. `https://login.microsoftonline.com` or
    /// a Keyless server's `https://keyless.example:8443`. Must be `https`; a path prefix
    /// is kept. Without it, `AZURE_AUTHORITY_HOST`, else Entra ID's public cloud.
    #[must_use]
    pub fn authority_host(mut self, url: impl Into<String>) -> Self {
        self.authority_host = Some(url.into());
        self
    }

    /// Trusts the CA certificate(s) in this PEM file (read when the credential is built).
    /// By default they are the *only* roots trusted — the right thing for a private
    /// Keyless; see [`trust_system_roots`](CredentialOptions::trust_system_roots).
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(CaSource::File(path.into()));
        self
    }

    /// Trusts the CA certificate(s) in this PEM text, like [`ca_file`](CredentialOptions::ca_file).
    #[must_use]
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(CaSource::Pem(pem.into()));
        self
    }

    /// With a CA from [`ca_file`](CredentialOptions::ca_file)/[`ca_pem`](CredentialOptions::ca_pem):
    /// also trust the platform's roots (e.g. behind a TLS-inspecting proxy in front of
    /// Entra ID). Off by default.
    #[must_use]
    pub fn trust_system_roots(mut self, yes: bool) -> Self {
        self.trust_system_roots = yes;
        self
    }

    /// Sends token requests with this client instead of building one (shares a
    /// connection pool, proxies, custom TLS). It should refuse plain http and not follow
    /// redirects. Cannot be combined with a CA option.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The clock used to judge freshness and expiry (tests pass a
    /// [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// When cached tokens are refreshed.
    #[must_use]
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.refresh = policy;
        self
    }

    /// How failed token requests are retried.
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Keeps tokens in this cache, which may be shared between credentials (entries are
    /// keyed by authority, tenant, client and scope). By default each credential has
    /// its own.
    #[must_use]
    pub fn token_cache(mut self, cache: TokenCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Timeout of one token request attempt (default 30 s). Ignored with
    /// [`http_client`](CredentialOptions::http_client), whose own timeouts apply.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for CredentialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialOptions")
            .field("authority_host", &self.authority_host)
            .field(
                "ca",
                &match &self.ca {
                    None => "none".to_owned(),
                    Some(CaSource::Pem(pem)) => format!("{} bytes of PEM", pem.len()),
                    Some(CaSource::File(path)) => path.display().to_string(),
                },
            )
            .field("trust_system_roots", &self.trust_system_roots)
            .field("http_client", &self.http_client.is_some())
            .field("clock", &self.clock)
            .field("refresh", &self.refresh)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// When a cached token is replaced.
///
/// A token is *fresh* until its refresh time, then a new one is fetched on the next
/// request while the old one is still handed out if that fetch fails (and still valid).
/// The refresh time is, in order:
///
/// 1. `refresh_in` from the token response, when the service sent it as an integer
///    smaller than `expires_in` (Entra does for long-lived tokens);
/// 2. else the earlier of `lifetime_fraction` of the lifetime and `before_expiry`
///    before expiry — by default half-way or 5 minutes before expiry, whichever comes
///    first; when the lifetime is shorter than `before_expiry`, the fraction alone.
///
/// A token is never handed out from the cache during the last `min_validity` of its
/// life (default 30 s), so a caller does not get a token that expires in flight.
///
/// ```
/// use std::time::Duration;
/// use keyless_credential::RefreshPolicy;
///
/// let policy = RefreshPolicy::default();
/// // A one-hour token is refreshed after 30 minutes...
/// assert_eq!(policy.refresh_after(Duration::from_secs(3600), None), Duration::from_secs(1800));
/// // ...unless the service said otherwise.
/// assert_eq!(
///     policy.refresh_after(Duration::from_secs(86_400), Some(Duration::from_secs(43_200))),
///     Duration::from_secs(43_200),
/// );
/// // 5 minutes before expiry comes first for a 6-minute token.
/// assert_eq!(policy.refresh_after(Duration::from_secs(360), None), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshPolicy {
    lifetime_fraction: f64,
    before_expiry: Duration,
    min_validity: Duration,
    retry_after_failure: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            lifetime_fraction: 0.5,
            before_expiry: Duration::from_secs(300),
            min_validity: Duration::from_secs(30),
            retry_after_failure: Duration::from_secs(30),
        }
    }
}

impl RefreshPolicy {
    /// Refresh after this fraction of the token's lifetime (0 < fraction ≤ 1; other
    /// values, NaN included, leave the policy unchanged). Default 0.5.
    #[must_use]
    pub fn lifetime_fraction(mut self, fraction: f64) -> Self {
        if fraction > 0.0 && fraction <= 1.0 {
            self.lifetime_fraction = fraction;
        }
        self
    }

    /// Refresh at the latest this long before expiry. Default 5 minutes.
    #[must_use]
    pub fn before_expiry(mut self, before: Duration) -> Self {
        self.before_expiry = before;
        self
    }

    /// Never hand out a cached token with less than this left. Default 30 s.
    #[must_use]
    pub fn min_validity(mut self, min: Duration) -> Self {
        self.min_validity = min;
        self
    }

    /// After a failed early refresh (the old token still being valid), wait this long
    /// before trying again, so an outage does not turn every call into a request.
    /// Default 30 s, like azure-identity.
    #[must_use]
    pub fn retry_after_failure(mut self, wait: Duration) -> Self {
        self.retry_after_failure = wait;
        self
    }

    /// How long after it was requested a token with this lifetime (and the service's
    /// `refresh_in`, if any) is refreshed.
    pub fn refresh_after(&self, lifetime: Duration, refresh_in: Option<Duration>) -> Duration {
        if let Some(hint) = refresh_in
            && !hint.is_zero()
            && hint < lifetime
        {
            return hint;
        }
        let by_fraction =
            Duration::try_from_secs_f64(lifetime.as_secs_f64() * self.lifetime_fraction)
                .unwrap_or(lifetime)
                .min(lifetime);
        match lifetime.checked_sub(self.before_expiry) {
            Some(by_offset) if !by_offset.is_zero() => by_fraction.min(by_offset),
            _ => by_fraction,
        }
    }

    pub(crate) fn is_fresh(
        &self,
        refresh_on: SystemTime,
        expires_on: SystemTime,
        now: SystemTime,
    ) -> bool {
        now < refresh_on && self.is_usable(expires_on, now)
    }

    pub(crate) fn is_usable(&self, expires_on: SystemTime, now: SystemTime) -> bool {
        now.checked_add(self.min_validity)
            .is_some_and(|later| later < expires_on)
    }

    pub(crate) fn failure_backoff(&self) -> Duration {
        self.retry_after_failure
    }
}

/// How failed token requests are retried.
///
/// Retried: HTTP 408, 429, 500, 502, 503 and 504, and connection failures and timeouts
/// (not certificate errors, which do not heal by themselves). The wait before retry
/// `n` (from 0) is `initial_delay × 2ⁿ`, capped at `max_delay`, with jitter (between half
/// and all of it); when the service sends `Retry-After` (seconds or an HTTP date) or
/// `retry-after-ms`, that is the wait instead — unless it exceeds `max_retry_after`,
/// in which case the error is returned at once with the wait in
/// [`ServiceError::retry_after`](crate::ServiceError::retry_after).
///
/// ```
/// use std::time::Duration;
/// use keyless_credential::RetryPolicy;
///
/// let patient = RetryPolicy::default().max_retries(6).max_delay(Duration::from_secs(60));
/// let never = RetryPolicy::none();
/// assert_eq!(never.retries(), 0);
/// # let _ = patient;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, starting at 0.8 s, at most 30 s apart; `Retry-After` up to 60 s.
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries: the first failure is returned.
    pub fn none() -> Self {
        Self::default().max_retries(0)
    }

    /// How many times a failed request is retried (so `n + 1` requests at most).
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The wait before the first retry, doubled for each further one.
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest wait between two attempts (without `Retry-After`).
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The longest `Retry-After` honoured by waiting; a longer one ends the retries.
    #[must_use]
    pub fn max_retry_after(mut self, delay: Duration) -> Self {
        self.max_retry_after = delay;
        self
    }

    /// The configured number of retries.
    pub fn retries(&self) -> u32 {
        self.max_retries
    }

    /// The wait before retry `retry` (from 0) without `Retry-After`; `jitter` in [0, 1)
    /// picks a point between half and all of the exponential delay.
    pub(crate) fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        let full = self
            .initial_delay
            .saturating_mul(factor)
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = full / 2;
        half.saturating_add(
            Duration::try_from_secs_f64(half.as_secs_f64() * jitter).unwrap_or(Duration::ZERO),
        )
    }

    pub(crate) fn max_retry_after_wait(&self) -> Duration {
        self.max_retry_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn refresh_time_follows_refresh_in_then_the_earlier_of_fraction_and_offset() {
        let p = RefreshPolicy::default();
        assert_eq!(p.refresh_after(s(3600), None), s(1800));
        assert_eq!(p.refresh_after(s(86_400), None), s(43_200));
        assert_eq!(p.refresh_after(s(400), None), s(100)); // 5 min before expiry
        assert_eq!(p.refresh_after(s(300), None), s(150)); // shorter than the offset: half
        assert_eq!(p.refresh_after(s(60), None), s(30));
        assert_eq!(p.refresh_after(s(3600), Some(s(600))), s(600));
        // A refresh_in at or past the lifetime, or zero, is not honoured.
        assert_eq!(p.refresh_after(s(3600), Some(s(3600))), s(1800));
        assert_eq!(p.refresh_after(s(3600), Some(s(0))), s(1800));
        let late = p.lifetime_fraction(0.95);
        assert_eq!(late.refresh_after(s(3600), None), s(3300));
        assert_eq!(
            late.before_expiry(s(60)).refresh_after(s(3600), None),
            s(3420)
        );
        // Out-of-range fractions are ignored.
        for bad in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(p.lifetime_fraction(bad), p, "{bad}");
        }
        assert_eq!(p.refresh_after(Duration::ZERO, None), Duration::ZERO);
        assert!(p.refresh_after(Duration::MAX, None) < Duration::MAX);
    }

    #[test]
    fn usable_means_more_than_min_validity_left() {
        let p = RefreshPolicy::default();
        let t0 = SystemTime::UNIX_EPOCH + s(1_000_000);
        let expires = t0 + s(300);
        assert!(p.is_usable(expires, t0 + s(269)));
        assert!(!p.is_usable(expires, t0 + s(270)));
        assert!(p.is_fresh(t0 + s(150), expires, t0 + s(149)));
        assert!(!p.is_fresh(t0 + s(150), expires, t0 + s(150)));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(400));
        assert_eq!(p.backoff(0, 1.0), Duration::from_millis(800));
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(1200));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(3200));
        assert_eq!(p.backoff(10, 1.0), s(30));
        assert_eq!(p.backoff(u32::MAX, 1.0), s(30));
        assert_eq!(p.backoff(1, f64::NAN), Duration::from_millis(800));
        let huge = RetryPolicy::default()
            .initial_delay(Duration::MAX)
            .max_delay(Duration::MAX);
        assert!(huge.backoff(5, 0.9) > s(1));
    }
}
