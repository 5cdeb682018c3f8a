//! `admission`: an `AdmissionReview` body as the API server posts it to the webhook
//! (`Admitter::review`: decoding, selection, ServiceAccount lookup, mutation). Every
//! patch the webhook answers with must apply to the pod it was made for.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use keyless_webhook::admission::{Admitter, Selection};
use keyless_webhook::kube::StaticServiceAccounts;
use keyless_webhook::metrics::Metrics;
use keyless_webhook::{MutationConfig, ServiceAccount};
use serde_json::Value;

struct Harness {
    rt: tokio::runtime::Runtime,
    admitter: Admitter,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let mut legacy = ServiceAccount::new(
            "ns1",
            "legacy",
            [
                ("azure.workload.identity/client-id", "c2"),
                ("azure.workload.identity/tenant-id", "t2"),
                (
                    "azure.workload.identity/service-account-token-expiration",
                    "3600",
                ),
            ],
        );
        legacy
            .labels
            .insert("azure.workload.identity/use".into(), "true".into());
        let accounts = StaticServiceAccounts(vec![
            ServiceAccount::new(
                "ns1",
                "default",
                [("azure.workload.identity/client-id", "c0")],
            ),
            ServiceAccount::new("ns1", "sa", [("azure.workload.identity/client-id", "c1")]),
            legacy,
        ]);
        Harness {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            admitter: Admitter {
                config: MutationConfig::new("tenant", "https://keyless.example/"),
                lookup: Arc::new(accounts),
                metrics: Arc::new(Metrics::default()),
                selection: Selection::PodLabelOrServiceAccount,
            },
        }
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let h = harness();
    let Ok(review) = h.rt.block_on(h.admitter.review(data)) else {
        return;
    };
    let response = &review["response"];
    assert!(response["allowed"].is_boolean(), "{review}");
    let Some(patch) = response["patch"].as_str() else {
        return;
    };
    let patch = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .expect("patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("patch is a JSON Patch");
    let request: Value = serde_json::from_slice(data).expect("a decoded review is JSON");
    let mut pod = request["request"]["object"].clone();
    if let Err(e) = json_patch::patch(&mut pod, &patch) {
        panic!("the patch does not apply to the pod: {e}\npatch: {patch:?}");
    }
}
