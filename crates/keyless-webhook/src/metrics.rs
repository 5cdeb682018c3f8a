//! Prometheus metrics of the webhook, rendered as the text exposition format. Plain
//! atomics, and short locks on maps that only grow with namespaces and fixed reasons.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyless_proto::prometheus::{Exposition, MetricType};

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
    mutations: Mutex<Mutations>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    malformed_reviews: AtomicU64,
    tls_reloads_ok: AtomicU64,
    tls_reloads_failed: AtomicU64,
    cache_entries: AtomicU64,
    cache_relists: AtomicU64,
    direct_found: AtomicU64,
    direct_not_found: AtomicU64,
    direct_failed: AtomicU64,
    direct_skipped_absent: AtomicU64,
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
    /// Not read: the ServiceAccount was found absent moments ago (negative cache).
    KnownAbsent,
}

/// Latency histograms by (namespace, outcome), and the namespaces that have series of
/// their own (counted, so the bound costs one lookup per admission).
#[derive(Debug, Default)]
struct Mutations {
    series: BTreeMap<(String, Outcome), Histogram>,
    namespaces: std::collections::HashSet<String>,
}

/// Most distinct namespaces that get series of their own. The namespace of a review is
/// whatever the caller of the webhook endpoint wrote, so without a bound a client could
/// grow the exposition (and the scraper's storage) without limit; past the bound,
/// admissions are counted under [`OTHER_NAMESPACES`].
pub const MAX_NAMESPACE_SERIES: usize = 500;

/// The namespace label of admissions beyond [`MAX_NAMESPACE_SERIES`].
pub const OTHER_NAMESPACES: &str = "_other";

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
            let own_series = m.namespaces.contains(namespace)
                || (m.namespaces.len() < MAX_NAMESPACE_SERIES
                    && m.namespaces.insert(namespace.to_owned()));
            let label = if own_series {
                namespace
            } else {
                OTHER_NAMESPACES
            };
            m.series
                .entry((label.to_owned(), outcome))
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
            DirectRead::KnownAbsent => &self.direct_skipped_absent,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Exposition::default();
        let name = "keyless_webhook_mutation_duration_seconds";
        out.family(
            name,
            "Time to answer an admission review, by namespace and outcome.",
            MetricType::Histogram,
        );
        if let Ok(m) = self.mutations.lock() {
            for ((ns, outcome), h) in m.series.iter() {
                out.histogram(
                    name,
                    &[("namespace", ns), ("outcome", outcome.as_str())],
                    BUCKETS.into_iter().zip(h.buckets),
                    h.count,
                    h.sum,
                );
            }
        }
        let name = "keyless_webhook_rejections_total";
        out.family(name, "Pods refused, by reason.", MetricType::Counter);
        if let Ok(r) = self.rejections.lock() {
            for (reason, n) in r.iter() {
                out.sample(name, &[("reason", reason)], *n);
            }
        }
        counter(
            &mut out,
            "keyless_webhook_malformed_reviews_total",
            "Request bodies that were not an AdmissionReview (HTTP 400).",
            &[(None, &self.malformed_reviews)],
        );
        counter(
            &mut out,
            "keyless_webhook_tls_reloads_total",
            "Certificate reloads after the files changed, by result.",
            &[
                (Some(("result", "ok")), &self.tls_reloads_ok),
                (Some(("result", "error")), &self.tls_reloads_failed),
            ],
        );
        let name = "keyless_webhook_serviceaccount_cache_entries";
        out.family(
            name,
            "ServiceAccounts in the watch cache.",
            MetricType::Gauge,
        );
        out.sample(name, &[], self.cache_entries.load(Ordering::Relaxed));
        counter(
            &mut out,
            "keyless_webhook_serviceaccount_relists_total",
            "Full lists of ServiceAccounts (start, expired watch, errors).",
            &[(None, &self.cache_relists)],
        );
        counter(
            &mut out,
            "keyless_webhook_serviceaccount_direct_reads_total",
            "Direct reads from the API server after a cache miss, by result.",
            &[
                (Some(("result", "found")), &self.direct_found),
                (Some(("result", "not_found")), &self.direct_not_found),
                (Some(("result", "error")), &self.direct_failed),
                (
                    Some(("result", "known_absent")),
                    &self.direct_skipped_absent,
                ),
            ],
        );
        out.finish()
    }
}

/// A counter family whose series have at most one label.
fn counter(
    out: &mut Exposition,
    name: &str,
    help: &str,
    series: &[(Option<(&str, &str)>, &AtomicU64)],
) {
    out.family(name, help, MetricType::Counter);
    for (label, value) in series {
        let labels: &[(&str, &str)] = match label {
            Some(l) => std::slice::from_ref(l),
            None => &[],
        };
        out.sample(name, labels, value.load(Ordering::Relaxed));
    }
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

    /// The exact text scrapers and dashboards rely on.
    #[test]
    fn namespace_series_are_bounded() {
        let m = Metrics::default();
        let d = Duration::from_millis(1);
        for i in 0..MAX_NAMESPACE_SERIES + 50 {
            m.record(&format!("ns-{i}"), Outcome::Mutated, d, None);
        }
        // A namespace that already has series keeps them, whatever the outcome.
        m.record("ns-0", Outcome::Rejected, d, Some("x"));
        let text = m.render();
        let namespaces: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.split("namespace=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(
            namespaces.len(),
            MAX_NAMESPACE_SERIES + 1,
            "the bound plus _other"
        );
        assert!(namespaces.contains(OTHER_NAMESPACES));
        assert!(text.contains("namespace=\"ns-0\",outcome=\"rejected\""));
        assert!(
            text.contains(&format!(
                "keyless_webhook_mutation_duration_seconds_count{{namespace=\"{OTHER_NAMESPACES}\",outcome=\"mutated\"}} 50"
            )),
            "{text}"
        );
    }

    #[test]
    fn exposition_is_stable() {
        let m = Metrics::default();
        m.record("ns\"1", Outcome::Mutated, Duration::from_millis(3), None);
        m.tls_reload(true);
        m.set_cache_entries(2);
        let h = "keyless_webhook_mutation_duration_seconds";
        let l = "namespace=\"ns\\\"1\",outcome=\"mutated\"";
        let mut expected = format!(
            "# HELP {h} Time to answer an admission review, by namespace and outcome.\n# TYPE {h} histogram\n"
        );
        for (le, n) in [
            ("0.0005", 0),
            ("0.001", 0),
            ("0.0025", 0),
            ("0.005", 1),
            ("0.01", 1),
            ("0.025", 1),
            ("0.05", 1),
            ("0.1", 1),
            ("0.25", 1),
            ("0.5", 1),
            ("1", 1),
            ("2.5", 1),
            ("5", 1),
            ("10", 1),
            ("+Inf", 1),
        ] {
            expected += &format!("{h}_bucket{{{l},le=\"{le}\"}} {n}\n");
        }
        expected += &format!("{h}_sum{{{l}}} 0.003\n{h}_count{{{l}}} 1\n");
        expected += concat!(
            "# HELP keyless_webhook_rejections_total Pods refused, by reason.\n",
            "# TYPE keyless_webhook_rejections_total counter\n",
            "# HELP keyless_webhook_malformed_reviews_total Request bodies that were not an AdmissionReview (HTTP 400).\n",
            "# TYPE keyless_webhook_malformed_reviews_total counter\n",
            "keyless_webhook_malformed_reviews_total 0\n",
            "# HELP keyless_webhook_tls_reloads_total Certificate reloads after the files changed, by result.\n",
            "# TYPE keyless_webhook_tls_reloads_total counter\n",
            "keyless_webhook_tls_reloads_total{result=\"ok\"} 1\n",
            "keyless_webhook_tls_reloads_total{result=\"error\"} 0\n",
            "# HELP keyless_webhook_serviceaccount_cache_entries ServiceAccounts in the watch cache.\n",
            "# TYPE keyless_webhook_serviceaccount_cache_entries gauge\n",
            "keyless_webhook_serviceaccount_cache_entries 2\n",
            "# HELP keyless_webhook_serviceaccount_relists_total Full lists of ServiceAccounts (start, expired watch, errors).\n",
            "# TYPE keyless_webhook_serviceaccount_relists_total counter\n",
            "keyless_webhook_serviceaccount_relists_total 0\n",
            "# HELP keyless_webhook_serviceaccount_direct_reads_total Direct reads from the API server after a cache miss, by result.\n",
            "# TYPE keyless_webhook_serviceaccount_direct_reads_total counter\n",
            "keyless_webhook_serviceaccount_direct_reads_total{result=\"found\"} 0\n",
            "keyless_webhook_serviceaccount_direct_reads_total{result=\"not_found\"} 0\n",
            "keyless_webhook_serviceaccount_direct_reads_total{result=\"error\"} 0\n",
            "keyless_webhook_serviceaccount_direct_reads_total{result=\"known_absent\"} 0\n",
        );
        assert_eq!(m.render(), expected);
    }
}
