//! The admission handler on review bodies: selection, ServiceAccount lookup outcomes,
//! status codes and metrics (the HTTP layer is covered by the `keyless` integration
//! tests, which run the real binary).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use keyless_webhook::admission::{Admitter, Selection};
use keyless_webhook::kube::{LookupError, ServiceAccountLookup, StaticServiceAccounts};
use keyless_webhook::metrics::Metrics;
use keyless_webhook::{MutationConfig, ServiceAccount};
use serde_json::{Value, json};

fn admitter(lookup: Arc<dyn ServiceAccountLookup>, selection: Selection) -> Admitter {
    Admitter {
        config: MutationConfig::new("tenant", "https://keyless.example/"),
        lookup,
        metrics: Arc::new(Metrics::default()),
        selection,
    }
}

fn accounts() -> Arc<StaticServiceAccounts> {
    let mut legacy = ServiceAccount::new(
        "ns1",
        "legacy",
        [("azure.workload.identity/client-id", "c2")],
    );
    legacy
        .labels
        .insert("azure.workload.identity/use".into(), "true".into());
    Arc::new(StaticServiceAccounts(vec![
        ServiceAccount::new(
            "ns1",
            "default",
            [("azure.workload.identity/client-id", "c0")],
        ),
        ServiceAccount::new("ns1", "sa", [("azure.workload.identity/client-id", "c1")]),
        legacy,
    ]))
}

fn review(namespace: Option<&str>, operation: &str, pod: Value) -> Vec<u8> {
    let mut request = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": pod,
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    });
    if let Some(ns) = namespace {
        request["namespace"] = json!(ns);
    }
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})).unwrap()
}

fn labelled(sa: Option<&str>) -> Value {
    let mut pod = json!({"metadata": {"generateName": "web-", "labels": {"azure.workload.identity/use": "true"}},
                         "spec": {"containers": [{"name": "app"}]}});
    if let Some(sa) = sa {
        pod["spec"]["serviceAccountName"] = json!(sa);
    }
    pod
}

fn patch_of(r: &Value) -> Value {
    let b64 = r["response"]["patch"].as_str().expect("a patch");
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn labelled_pod_is_mutated_with_the_request_namespace_and_default_sa() {
    let a = admitter(accounts(), Selection::PodLabel);
    let r = a
        .review(&review(Some("ns1"), "CREATE", labelled(None)))
        .await
        .unwrap();
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(r["kind"], "AdmissionReview");
    assert_eq!(r["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["response"]["allowed"], true);
    assert_eq!(r["response"]["patchType"], "JSONPatch");
    let patch = patch_of(&r);
    assert!(
        patch.to_string().contains("\"c0\""),
        "default SA's client id: {patch}"
    );
    let text = a.metrics.render();
    assert!(
        text.contains("namespace=\"ns1\",outcome=\"mutated\""),
        "{text}"
    );
}

#[tokio::test]
async fn unlabelled_or_wrongly_labelled_pods_and_other_operations_pass_untouched() {
    let a = admitter(accounts(), Selection::PodLabel);
    for pod in [
        json!({"spec": {"containers": [{"name": "app"}]}}),
        json!({"metadata": {"labels": {"azure.workload.identity/use": "True"}}, "spec": {"containers": [{"name": "app"}]}}),
        json!({"metadata": {"labels": {"azure.workload.identity/use": "false"}}, "spec": {"containers": [{"name": "app"}]}}),
    ] {
        let r = a.review(&review(Some("ns1"), "CREATE", pod)).await.unwrap();
        assert_eq!(r["response"]["allowed"], true);
        assert!(r["response"].get("patch").is_none(), "{r}");
    }
    let r = a
        .review(&review(Some("ns1"), "UPDATE", labelled(None)))
        .await
        .unwrap();
    assert_eq!(
        r["response"],
        json!({"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": true})
    );
}

#[tokio::test]
async fn missing_service_account_is_a_400_with_the_reference_message() {
    let a = admitter(accounts(), Selection::PodLabel);
    let r = a
        .review(&review(Some("ns1"), "CREATE", labelled(Some("nope"))))
        .await
        .unwrap();
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 400);
    assert_eq!(
        r["response"]["status"]["message"],
        "serviceaccounts \"nope\" not found"
    );
    // Same SA name in another namespace does not count.
    let r = a
        .review(&review(Some("ns2"), "CREATE", labelled(Some("sa"))))
        .await
        .unwrap();
    assert_eq!(r["response"]["status"]["code"], 400);
    assert!(
        a.metrics
            .render()
            .contains("keyless_webhook_rejections_total{reason=\"service_account_not_found\"} 2")
    );
}

struct Unreachable;

#[async_trait]
impl ServiceAccountLookup for Unreachable {
    async fn lookup(&self, _: &str, _: &str) -> Result<Option<ServiceAccount>, LookupError> {
        Err(LookupError("connection refused".into()))
    }
    fn is_ready(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn unreachable_api_server_is_a_500_for_labelled_pods_only() {
    let a = admitter(Arc::new(Unreachable), Selection::PodLabelOrServiceAccount);
    let r = a
        .review(&review(Some("ns1"), "CREATE", labelled(Some("sa"))))
        .await
        .unwrap();
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 500);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("ns1/sa") && msg.contains("connection refused"),
        "{msg}"
    );
    // An unlabelled candidate (compatibility mode) is never blocked by the lookup.
    let pod = json!({"spec": {"serviceAccountName": "sa", "containers": [{"name": "app"}]}});
    let r = a.review(&review(Some("ns1"), "CREATE", pod)).await.unwrap();
    assert_eq!(r["response"]["allowed"], true);
}

#[tokio::test]
async fn compatibility_mode_selects_by_service_account_label() {
    let a = admitter(accounts(), Selection::PodLabelOrServiceAccount);
    let pod =
        |sa: &str| json!({"spec": {"serviceAccountName": sa, "containers": [{"name": "app"}]}});
    let r = a
        .review(&review(Some("ns1"), "CREATE", pod("legacy")))
        .await
        .unwrap();
    assert!(patch_of(&r).to_string().contains("\"c2\""));
    let r = a
        .review(&review(Some("ns1"), "CREATE", pod("sa")))
        .await
        .unwrap();
    assert!(r["response"].get("patch").is_none());
    // Without the flag, the ServiceAccount label selects nothing.
    let a = admitter(accounts(), Selection::PodLabel);
    let r = a
        .review(&review(Some("ns1"), "CREATE", pod("legacy")))
        .await
        .unwrap();
    assert!(r["response"].get("patch").is_none());
}

#[tokio::test]
async fn namespace_falls_back_to_the_pod_and_bad_objects_are_refused_inside_the_review() {
    let a = admitter(accounts(), Selection::PodLabel);
    let mut pod = labelled(Some("sa"));
    pod["metadata"]["namespace"] = json!("ns1");
    let r = a.review(&review(None, "CREATE", pod)).await.unwrap();
    assert!(patch_of(&r).to_string().contains("\"c1\""));

    let r = a
        .review(&review(Some("ns1"), "CREATE", json!("not a pod")))
        .await
        .unwrap();
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 400);
    let r = a
        .review(&review(
            Some("ns1"),
            "CREATE",
            json!({"metadata": {"labels": {"azure.workload.identity/use": "true"}}}),
        ))
        .await
        .unwrap();
    assert_eq!(r["response"]["status"]["code"], 400);
}

#[tokio::test]
async fn bodies_that_are_not_reviews_are_errors_and_counted() {
    let a = admitter(accounts(), Selection::PodLabel);
    for body in [&b"{"[..], b"null", br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#] {
        assert!(a.review(body).await.is_err());
    }
    assert!(
        a.metrics
            .render()
            .contains("keyless_webhook_malformed_reviews_total 3")
    );
}
