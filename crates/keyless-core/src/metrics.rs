//! Counters for the Prometheus endpoint. Plain atomics on the success path; the
//! per-code failure map takes a short lock only when a request fails.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Token endpoint counters.
#[derive(Debug, Default)]
pub struct Metrics {
    secret_grants: AtomicU64,
    assertion_grants: AtomicU64,
    failures: Mutex<BTreeMap<u32, u64>>,
    latency_us_sum: AtomicU64,
    latency_count: AtomicU64,
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

    /// Renders the Prometheus text format, with the gauges the caller adds.
    pub fn render(&self, extra: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP keyless_tokens_issued_total Access tokens issued, by grant."
        );
        let _ = writeln!(out, "# TYPE keyless_tokens_issued_total counter");
        let _ = writeln!(
            out,
            "keyless_tokens_issued_total{{grant=\"client_secret\"}} {}",
            self.secret_grants.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "keyless_tokens_issued_total{{grant=\"client_assertion\"}} {}",
            self.assertion_grants.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP keyless_token_requests_failed_total Refused token requests, by AADSTS code."
        );
        let _ = writeln!(out, "# TYPE keyless_token_requests_failed_total counter");
        if let Ok(m) = self.failures.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "keyless_token_requests_failed_total{{code=\"{code}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP keyless_token_request_duration_microseconds Server-side time of token requests."
        );
        let _ = writeln!(
            out,
            "# TYPE keyless_token_request_duration_microseconds summary"
        );
        let _ = writeln!(
            out,
            "keyless_token_request_duration_microseconds_sum {}",
            self.latency_us_sum.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "keyless_token_request_duration_microseconds_count {}",
            self.latency_count.load(Ordering::Relaxed)
        );
        for (name, help, value) in extra {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}
