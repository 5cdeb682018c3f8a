//! Counters for the Prometheus endpoint. Plain atomics on the success path; the
//! per-code failure map takes a short lock only when a request fails.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use keyless_proto::prometheus::{Exposition, MetricType};

/// Token endpoint counters.
#[derive(Debug, Default)]
pub struct Metrics {
    secret_grants: AtomicU64,
    assertion_grants: AtomicU64,
    failures: Mutex<BTreeMap<u32, u64>>,
    latency_us_sum: AtomicU64,
    latency_count: AtomicU64,
    resyncs_skipped: AtomicU64,
}

impl Metrics {
    /// Counts a successful grant.
    pub fn success(&self, assertion: bool, latency_us: u64) {
        let c = if assertion {
            &self.assertion_grants
        } else {
            &self.secret_grants
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.latency_us_sum.fetch_add(latency_us, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused request by AADSTS code.
    pub fn failure(&self, code: u32, latency_us: u64) {
        if let Ok(mut m) = self.failures.lock() {
            *m.entry(code).or_default() += 1;
        }
        self.latency_us_sum.fetch_add(latency_us, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a periodic resync skipped because the change feed missed nothing.
    pub fn resync_skipped(&self) {
        self.resyncs_skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Periodic resyncs skipped so far.
    pub fn resyncs_skipped(&self) -> u64 {
        self.resyncs_skipped.load(Ordering::Relaxed)
    }

    /// Renders the Prometheus text format, with the counters the caller adds.
    pub fn render(&self, extra: &[(&str, &str, u64)]) -> String {
        let mut out = Exposition::default();
        let name = "keyless_tokens_issued_total";
        out.family(name, "Access tokens issued, by grant.", MetricType::Counter);
        out.sample(
            name,
            &[("grant", "client_secret")],
            self.secret_grants.load(Ordering::Relaxed),
        );
        out.sample(
            name,
            &[("grant", "client_assertion")],
            self.assertion_grants.load(Ordering::Relaxed),
        );
        let name = "keyless_token_requests_failed_total";
        out.family(
            name,
            "Refused token requests, by AADSTS code.",
            MetricType::Counter,
        );
        if let Ok(m) = self.failures.lock() {
            for (code, n) in m.iter() {
                out.sample(name, &[("code", &code.to_string())], *n);
            }
        }
        let name = "keyless_token_request_duration_microseconds";
        out.family(
            name,
            "Server-side time of token requests.",
            MetricType::Summary,
        );
        out.sample(
            &format!("{name}_sum"),
            &[],
            self.latency_us_sum.load(Ordering::Relaxed),
        );
        out.sample(
            &format!("{name}_count"),
            &[],
            self.latency_count.load(Ordering::Relaxed),
        );
        for (name, help, value) in extra {
            out.family(name, help, MetricType::Counter);
            out.sample(name, &[], *value);
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact text scrapers and dashboards rely on.
    #[test]
    fn exposition_is_stable() {
        let m = Metrics::default();
        m.success(false, 10);
        m.success(true, 20);
        m.failure(700016, 5);
        assert_eq!(
            m.render(&[("x_total", "X.", 7)]),
            concat!(
                "# HELP keyless_tokens_issued_total Access tokens issued, by grant.\n",
                "# TYPE keyless_tokens_issued_total counter\n",
                "keyless_tokens_issued_total{grant=\"client_secret\"} 1\n",
                "keyless_tokens_issued_total{grant=\"client_assertion\"} 1\n",
                "# HELP keyless_token_requests_failed_total Refused token requests, by AADSTS code.\n",
                "# TYPE keyless_token_requests_failed_total counter\n",
                "keyless_token_requests_failed_total{code=\"700016\"} 1\n",
                "# HELP keyless_token_request_duration_microseconds Server-side time of token requests.\n",
                "# TYPE keyless_token_request_duration_microseconds summary\n",
                "keyless_token_request_duration_microseconds_sum 35\n",
                "keyless_token_request_duration_microseconds_count 3\n",
                "# HELP x_total X.\n",
                "# TYPE x_total counter\n",
                "x_total 7\n",
            )
        );
    }
}
