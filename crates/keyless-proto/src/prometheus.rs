//! The Prometheus text exposition format (version 0.0.4), as served on `/metrics` by
//! the server and the webhook: `# HELP` and `# TYPE` lines per family, then one line per
//! sample, with label values and help texts escaped as the format requires.
//!
//! ```
//! use keyless_proto::prometheus::{Exposition, MetricType};
//! let mut out = Exposition::default();
//! out.family("jobs_total", "Jobs done, by result.", MetricType::Counter);
//! out.sample("jobs_total", &[("result", "ok")], 3_u64);
//! out.family("job_seconds", "Time per job.", MetricType::Histogram);
//! out.histogram("job_seconds", &[], [(0.5, 1), (1.0, 2)], 2, 1.25);
//! assert_eq!(out.finish(), "\
//! ## HELP jobs_total Jobs done, by result.
//! ## TYPE jobs_total counter
//! jobs_total{result=\"ok\"} 3
//! ## HELP job_seconds Time per job.
//! ## TYPE job_seconds histogram
//! job_seconds_bucket{le=\"0.5\"} 1
//! job_seconds_bucket{le=\"1\"} 2
//! job_seconds_bucket{le=\"+Inf\"} 2
//! job_seconds_sum 1.25
//! job_seconds_count 2
//! ");
//! ```

use std::fmt::Write;

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_sum` and `_count` (and optional quantiles).
    Summary,
    /// Cumulative `_bucket`s with an `le` label, `_sum` and `_count`.
    Histogram,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Histogram => "histogram",
        }
    }
}

/// A sample value: an integer, or a float (`NaN`, `+Inf`, `-Inf` spelled as the
/// format wants).
pub trait SampleValue {
    /// Appends the value to `out`.
    fn write_to(&self, out: &mut String);
}

impl SampleValue for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

/// A `/metrics` body being written. Families are written in call order; the caller
/// writes each family's [`family`](Self::family) header before its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// The `# HELP` and `# TYPE` lines of a family.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{label="value",...} value`, or `name value` without labels.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl SampleValue) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        value.write_to(&mut self.out);
        self.out.push('\n');
    }

    /// The series of one histogram: a `{name}_bucket` line per upper bound with its
    /// cumulative count, the `+Inf` bucket (`count`), `{name}_sum` and `{name}_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: impl IntoIterator<Item = (f64, u64)>,
        count: u64,
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut bound = String::new();
        for (le, n) in buckets {
            bound.clear();
            le.write_to(&mut bound);
            self.bucket(&bucket, labels, &bound, n);
        }
        self.bucket(&bucket, labels, "+Inf", count);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count);
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }

    fn bucket(&mut self, bucket: &str, labels: &[(&str, &str)], le: &str, n: u64) {
        self.out.push_str(bucket);
        self.labels(labels, Some(le));
        self.out.push(' ');
        n.write_to(&mut self.out);
        self.out.push('\n');
    }

    /// `{a="x",b="y"}` (nothing when there are no labels), `le` last when given.
    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        let le = le.map(|v| ("le", v));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_none() {
            return;
        }
        self.out.push('{');
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{name}=\"{}\"", escape_label_value(value));
        }
        self.out.push('}');
    }
}

/// A label value as the format wants it: `\`, `"` and line feed escaped.
///
/// ```
/// assert_eq!(keyless_proto::prometheus::escape_label_value("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
/// ```
pub fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A help text as the format wants it: `\` and line feed escaped (quotes stay).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_le_comes_last() {
        let mut out = Exposition::default();
        out.histogram(
            "d",
            &[("ns", "a\"b\\c\nd"), ("outcome", "ok")],
            [(0.0005, 0), (2.5, 1)],
            3,
            0.75,
        );
        assert_eq!(
            out.finish(),
            concat!(
                "d_bucket{ns=\"a\\\"b\\\\c\\nd\",outcome=\"ok\",le=\"0.0005\"} 0\n",
                "d_bucket{ns=\"a\\\"b\\\\c\\nd\",outcome=\"ok\",le=\"2.5\"} 1\n",
                "d_bucket{ns=\"a\\\"b\\\\c\\nd\",outcome=\"ok\",le=\"+Inf\"} 3\n",
                "d_sum{ns=\"a\\\"b\\\\c\\nd\",outcome=\"ok\"} 0.75\n",
                "d_count{ns=\"a\\\"b\\\\c\\nd\",outcome=\"ok\"} 3\n",
            )
        );
    }

    #[test]
    fn help_escapes_backslash_and_newline_only() {
        let mut out = Exposition::default();
        out.family("g", "a \"b\"\\\nc", MetricType::Gauge);
        out.sample("g", &[], 2_u64);
        assert_eq!(
            out.finish(),
            "# HELP g a \"b\"\\\\\\nc\n# TYPE g gauge\ng 2\n"
        );
    }

    #[test]
    fn special_floats_use_the_format_spelling() {
        let mut out = Exposition::default();
        out.sample("a", &[], f64::INFINITY);
        out.sample("b", &[], f64::NEG_INFINITY);
        out.sample("c", &[], f64::NAN);
        out.sample("d", &[], 1.0_f64);
        assert_eq!(out.finish(), "a +Inf\nb -Inf\nc NaN\nd 1\n");
    }
}
