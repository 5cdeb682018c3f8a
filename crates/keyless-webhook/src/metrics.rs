//! Prometheus metrics of the webhook, rendered as the text exposition format. Plain
//! atomics, and short locks on maps that only grow with namespaces and fixed reasons.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What became of one admission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A patch was returned.
    Mutated,
    /// Selected, but nothing to add (already mutated, or every container skipped).
    Unchanged,
    /// Not selected (no `azure.workload.identity/use: "true"`, or not a pod create).
    NotSelected,
    /// Refused for something the user must fix (400).
    Rejected,
    /// Refused because the webhook could not do its work (500).
    Error,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Mutated => "mutated",
            Outcome::Unchanged => "unchanged",
            Outcome::NotSelected => "not_selected",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (slot, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *slot += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The webhook's counters. Shared behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    mutations: Mutex<BTreeMap<(String, Outcome), Histogram>>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    malformed_reviews: AtomicU64,
    tls_reloads_ok: AtomicU64,
    tls_reloads_failed: AtomicU64,
    cache_entries: AtomicU64,
    cache_relists: AtomicU64,
    direct_found: AtomicU64,
    direct_not_found: AtomicU64,
    direct_failed: AtomicU64,
}

/// Result of a direct ServiceAccount read (cache miss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectRead {
    /// Found.
    Found,
    /// 404.
    NotFound,
    /// The API server could not answer.
    Failed,
}

impl Metrics {
    /// Records one admission: latency by namespace and outcome, and the rejection reason.
    pub fn record(
        &self,
        namespace: &str,
        outcome: Outcome,
        elapsed: Duration,
        reason: Option<&'static str>,
    ) {
        if let Ok(mut m) = self.mutations.lock() {
            m.entry((namespace.to_owned(), outcome))
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
        if let Some(reason) = reason
            && let Ok(mut r) = self.rejections.lock()
        {
            *r.entry(reason).or_default() += 1;
        }
    }

    /// Counts a body that was not an AdmissionReview (answered with HTTP 400).
    pub fn malformed_review(&self) {
        self.malformed_reviews.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a certificate reload attempt.
    pub fn tls_reload(&self, ok: bool) {
        let c = if ok {
            &self.tls_reloads_ok
        } else {
            &self.tls_reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the number of ServiceAccounts in the cache.
    pub fn set_cache_entries(&self, n: usize) {
        self.cache_entries
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts a full re-list of ServiceAccounts.
    pub fn cache_relist(&self) {
        self.cache_relists.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a direct read after a cache miss.
    pub fn direct_read(&self, result: DirectRead) {
        let c = match result {
            DirectRead::Found => &self.direct_found,
            DirectRead::NotFound => &self.direct_not_found,
            DirectRead::Failed => &self.direct_failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let name = "keyless_webhook_mutation_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer an admission review, by namespace and outcome."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        if let Ok(m) = self.mutations.lock() {
            for ((ns, outcome), h) in m.iter() {
                let labels = format!(
                    "namespace=\"{}\",outcome=\"{}\"",
                    escape(ns),
                    outcome.as_str()
                );
                for (bound, count) in BUCKETS.iter().zip(h.buckets) {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }
        }
        let name = "keyless_webhook_rejections_total";
        let _ = writeln!(out, "# HELP {name} Pods refused, by reason.");
        let _ = writeln!(out, "# TYPE {name} counter");
        if let Ok(r) = self.rejections.lock() {
            for (reason, n) in r.iter() {
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
            }
        }
        counter(
            &mut out,
            "keyless_webhook_malformed_reviews_total",
            "Request bodies that were not an AdmissionReview (HTTP 400).",
            &[("", &self.malformed_reviews)],
        );
        counter(
            &mut out,
            "keyless_webhook_tls_reloads_total",
            "Certificate reloads after the files changed, by result.",
            &[
                ("result=\"ok\"", &self.tls_reloads_ok),
                ("result=\"error\"", &self.tls_reloads_failed),
            ],
        );
        let name = "keyless_webhook_serviceaccount_cache_entries";
        let _ = writeln!(out, "# HELP {name} ServiceAccounts in the watch cache.");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {}", self.cache_entries.load(Ordering::Relaxed));
        counter(
            &mut out,
            "keyless_webhook_serviceaccount_relists_total",
            "Full lists of ServiceAccounts (start, expired watch, errors).",
            &[("", &self.cache_relists)],
        );
        counter(
            &mut out,
            "keyless_webhook_serviceaccount_direct_reads_total",
            "Direct reads from the API server after a cache miss, by result.",
            &[
                ("result=\"found\"", &self.direct_found),
                ("result=\"not_found\"", &self.direct_not_found),
                ("result=\"error\"", &self.direct_failed),
            ],
        );
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, series: &[(&str, &AtomicU64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (labels, value) in series {
        let v = value.load(Ordering::Relaxed);
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Escapes a label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_labelled() {
        let m = Metrics::default();
        m.record("ns1", Outcome::Mutated, Duration::from_millis(3), None);
        m.record(
            "ns1",
            Outcome::Rejected,
            Duration::from_millis(20),
            Some("invalid_token_expiration"),
        );
        let text = m.render();
        assert!(text.contains(
            "keyless_webhook_mutation_duration_seconds_bucket{namespace=\"ns1\",outcome=\"mutated\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains(
            "keyless_webhook_mutation_duration_seconds_bucket{namespace=\"ns1\",outcome=\"mutated\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "keyless_webhook_mutation_duration_seconds_count{namespace=\"ns1\",outcome=\"rejected\"} 1"
        ));
        assert!(
            text.contains(
                "keyless_webhook_rejections_total{reason=\"invalid_token_expiration\"} 1"
            )
        );
    }
}
