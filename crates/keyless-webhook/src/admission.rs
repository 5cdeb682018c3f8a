//! One review in, one response out: decoding, selection, ServiceAccount lookup,
//! mutation, metrics and a log line.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::config::MutationConfig;
use crate::error::Rejection;
use crate::keys::USE_LABEL;
use crate::kube::ServiceAccountLookup;
use crate::metrics::{Metrics, Outcome};
use crate::mutate::mutate;
use crate::pod;
use crate::review::{self, AdmissionRequest, ReviewError, Verdict};

/// How pods are selected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Selection {
    /// Only pods labelled `azure.workload.identity/use: "true"` (the default, and what
    /// the MutatingWebhookConfiguration's objectSelector also enforces).
    #[default]
    PodLabel,
    /// Also pods whose ServiceAccount carries the `azure.workload.identity/use` label or
    /// annotation (any value): the pre-v1.0 azure-workload-identity behaviour, opt-in for
    /// compatibility only (the objectSelector must then be removed).
    PodLabelOrServiceAccount,
}

/// The admission handler.
pub struct Admitter {
    /// What to inject.
    pub config: MutationConfig,
    /// Where ServiceAccounts come from.
    pub lookup: Arc<dyn ServiceAccountLookup>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// How pods are selected.
    pub selection: Selection,
}

impl std::fmt::Debug for Admitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitter")
            .field("config", &self.config)
            .field("selection", &self.selection)
            .finish_non_exhaustive()
    }
}

impl Admitter {
    /// Answers one request body. `Err` only when the body is not an `AdmissionReview`
    /// (the caller answers HTTP 400); every decodable review gets a response review.
    pub async fn review(&self, body: &[u8]) -> Result<Value, ReviewError> {
        let start = Instant::now();
        let request = review::decode(body).inspect_err(|_| self.metrics.malformed_review())?;
        let namespace = request
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| {
                request
                    .object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let (verdict, outcome) = self.admit(&request, &namespace).await;
        let elapsed = start.elapsed();
        let reason = match &verdict {
            Verdict::Deny(r) => Some(r.reason()),
            Verdict::Allow(_) => None,
        };
        self.metrics.record(&namespace, outcome, elapsed, reason);
        let pod_name = pod::display_name(&request.object);
        match &verdict {
            Verdict::Deny(r) => tracing::warn!(
                uid = %request.uid, namespace = %namespace, pod = %pod_name,
                outcome = outcome.as_str(), reason = r.reason(), message = %r,
                "pod refused"
            ),
            Verdict::Allow(ops) => tracing::info!(
                uid = %request.uid, namespace = %namespace, pod = %pod_name,
                outcome = outcome.as_str(), ops = ops.len(), elapsed_ms = elapsed.as_millis() as u64,
                "pod admitted"
            ),
        }
        Ok(review::respond(&request.uid, &verdict))
    }

    /// The verdict for a decoded request.
    pub async fn admit(&self, request: &AdmissionRequest, namespace: &str) -> (Verdict, Outcome) {
        if !request.is_pod_create() {
            return (Verdict::Allow(Vec::new()), Outcome::NotSelected);
        }
        let pod = &request.object;
        if !pod.is_object() {
            return deny(Rejection::InvalidPod(
                "the request's object is not a JSON object".to_owned(),
            ));
        }
        let labelled = pod::is_selected(pod);
        if !labelled && self.selection == Selection::PodLabel {
            return (Verdict::Allow(Vec::new()), Outcome::NotSelected);
        }
        let name = pod::service_account_name(pod);
        let sa = match self.lookup.lookup(namespace, name).await {
            Ok(Some(sa)) => sa,
            // An unlabelled pod is only a candidate: never block it on a failed lookup.
            Ok(None) | Err(_) if !labelled => {
                return (Verdict::Allow(Vec::new()), Outcome::NotSelected);
            }
            Ok(None) => {
                return deny(Rejection::ServiceAccountNotFound {
                    name: name.to_owned(),
                });
            }
            Err(e) => {
                return deny(Rejection::ApiUnavailable {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    detail: e.to_string(),
                });
            }
        };
        if !labelled
            && !sa.labels.contains_key(USE_LABEL)
            && !sa.annotations.contains_key(USE_LABEL)
        {
            return (Verdict::Allow(Vec::new()), Outcome::NotSelected);
        }
        match mutate(pod, &sa, &self.config) {
            Ok(ops) if ops.is_empty() => (Verdict::Allow(ops), Outcome::Unchanged),
            Ok(ops) => (Verdict::Allow(ops), Outcome::Mutated),
            Err(r) => deny(r),
        }
    }
}

fn deny(r: Rejection) -> (Verdict, Outcome) {
    let outcome = if r.code() >= 500 {
        Outcome::Error
    } else {
        Outcome::Rejected
    };
    (Verdict::Deny(r), outcome)
}
