//! The managed-identity sidecar injection: each test applies the returned JSON Patch to
//! the pod with an independent RFC 6902 implementation (json-patch), checks the result,
//! and mutates the result again (reinvocation) to check nothing more is added.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyless_webhook::mutate::mutate;
use keyless_webhook::patch::to_json;
use keyless_webhook::{MutationConfig, Rejection, ServiceAccount};
use serde_json::{Value, json};

const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

fn cfg() -> MutationConfig {
    let mut c = MutationConfig::new(TENANT, "https://keyless.example:8443/");
    c.identity_endpoint.image = "registry.example/keyless:1.2.3".to_owned();
    c
}

fn sa() -> ServiceAccount {
    ServiceAccount::new(
        "apps",
        "legacy",
        [("azure.workload.identity/client-id", CLIENT)],
    )
}

/// A Deployment's pod as the API server sends it in an AdmissionReview (no name yet).
fn pod(annotations: Value, extra_spec: Value) -> Value {
    let mut spec = json!({
        "serviceAccountName": "legacy",
        "initContainers": [{"name": "migrate", "image": "app:1", "command": ["migrate"]}],
        "containers": [{
            "name": "app",
            "image": "app:1",
            "env": [{"name": "LOG_LEVEL", "value": "info"}],
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "imagePullPolicy": "IfNotPresent",
        }],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
    });
    for (k, v) in extra_spec.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    json!({
        "metadata": {
            "generateName": "legacy-7c9f8d-",
            "namespace": "apps",
            "labels": {"azure.workload.identity/use": "true", "app": "legacy"},
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// Mutates, applies, checks only `add` operations, and checks a second mutation of the
/// result adds nothing.
fn mutated(pod: &Value) -> Value {
    let ops = mutate(pod, &sa(), &cfg()).unwrap();
    assert!(ops.iter().all(|op| op.op() == "add"));
    let patch: json_patch::Patch = serde_json::from_slice(&to_json(&ops)).unwrap();
    let mut doc = pod.clone();
    json_patch::patch(&mut doc, &patch).unwrap();
    let again = mutate(&doc, &sa(), &cfg()).unwrap();
    assert!(again.is_empty(), "reinvocation added {again:?}");
    doc
}

fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn env(container: &Value, name: &str) -> Option<String> {
    env_of(container)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

#[test]
fn keyless_mode_adds_a_native_sidecar_and_the_app_service_variables() {
    let doc = mutated(&pod(
        json!({"keyless.io/managed-identity-endpoint": "true"}),
        json!({}),
    ));
    let inits = doc["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(inits.len(), 2, "{inits:?}");
    assert_eq!(inits[0]["name"], "migrate");
    let sidecar = &inits[1];
    assert_eq!(sidecar["name"], "keyless-imds");
    assert_eq!(sidecar["image"], "registry.example/keyless:1.2.3");
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert_eq!(
        sidecar["args"],
        json!(["imds", "--listen", "127.0.0.1:8000"])
    );
    assert_eq!(sidecar["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        sidecar["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(
        sidecar["securityContext"]["capabilities"]
            .get("add")
            .is_none()
    );
    assert_eq!(sidecar["resources"]["requests"]["memory"], "16Mi");
    // The sidecar exchanges the projected token: it has the workload identity variables
    // and the token mount, but is not itself pointed at an identity endpoint.
    assert_eq!(env(sidecar, "AZURE_CLIENT_ID").as_deref(), Some(CLIENT));
    assert_eq!(env(sidecar, "AZURE_TENANT_ID").as_deref(), Some(TENANT));
    assert_eq!(
        env(sidecar, "AZURE_FEDERATED_TOKEN_FILE").as_deref(),
        Some(TOKEN_FILE)
    );
    assert!(env(sidecar, "IDENTITY_ENDPOINT").is_none());
    let header = env(sidecar, "IDENTITY_HEADER").unwrap();
    assert!(header.len() >= 32, "{header}");
    assert_eq!(
        sidecar["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/azure/tokens"
    );

    for c in [&doc["spec"]["containers"][0], &inits[0]] {
        assert_eq!(
            env(c, "IDENTITY_ENDPOINT").as_deref(),
            Some("http://127.0.0.1:8000/msi/token"),
            "{c}"
        );
        assert_eq!(env(c, "IDENTITY_HEADER").as_deref(), Some(header.as_str()));
        assert_eq!(env(c, "AZURE_CLIENT_ID").as_deref(), Some(CLIENT));
    }
    // The user's own variables are kept, first.
    assert_eq!(env_of(&doc["spec"]["containers"][0])[0].0, "LOG_LEVEL");

    // Another pod gets another secret.
    let other = mutated(&pod(
        json!({"keyless.io/managed-identity-endpoint": "true"}),
        json!({}),
    ));
    assert_ne!(
        env(&other["spec"]["initContainers"][1], "IDENTITY_HEADER").unwrap(),
        header
    );
}

#[test]
fn a_container_added_by_another_webhook_gets_the_same_secret_on_reinvocation() {
    let mut doc = mutated(&pod(
        json!({"keyless.io/managed-identity-endpoint": "true"}),
        json!({}),
    ));
    let header = env(&doc["spec"]["initContainers"][1], "IDENTITY_HEADER").unwrap();
    doc["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "mesh-proxy", "image": "mesh:1"}));
    let doc = {
        let ops = mutate(&doc, &sa(), &cfg()).unwrap();
        assert!(!ops.is_empty());
        let patch: json_patch::Patch = serde_json::from_slice(&to_json(&ops)).unwrap();
        let mut d = doc.clone();
        json_patch::patch(&mut d, &patch).unwrap();
        d
    };
    assert_eq!(doc["spec"]["initContainers"].as_array().unwrap().len(), 2);
    assert_eq!(
        env(&doc["spec"]["containers"][1], "IDENTITY_HEADER"),
        Some(header)
    );
}

#[test]
fn keyless_mode_on_host_network_turns_the_imds_path_off_and_uses_the_port() {
    let doc = mutated(&pod(
        json!({
            "keyless.io/managed-identity-endpoint": "true",
            "azure.workload.identity/proxy-sidecar-port": "18080",
        }),
        json!({"hostNetwork": true, "initContainers": null}),
    ));
    let sidecar = &doc["spec"]["initContainers"][0];
    assert_eq!(
        sidecar["args"],
        json!(["imds", "--listen", "127.0.0.1:18080", "--no-imds"])
    );
    assert_eq!(
        env(&doc["spec"]["containers"][0], "IDENTITY_ENDPOINT").as_deref(),
        Some("http://127.0.0.1:18080/msi/token")
    );
}

#[test]
fn proxy_mode_keeps_the_reference_meaning() {
    // Key presence, whatever the value (the reference's behaviour).
    let doc = mutated(&pod(
        json!({
            "azure.workload.identity/inject-proxy-sidecar": "false",
            "azure.workload.identity/proxy-sidecar-port": "9000",
        }),
        json!({}),
    ));
    let inits = doc["spec"]["initContainers"].as_array().unwrap();
    let names: Vec<&str> = inits.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["migrate", "azwi-proxy-init", "azwi-proxy"]);
    let init = &inits[1];
    assert_eq!(env(init, "PROXY_PORT").as_deref(), Some("9000"));
    assert_eq!(
        init["securityContext"]["capabilities"]["add"],
        json!(["NET_ADMIN"])
    );
    assert!(init.get("restartPolicy").is_none());
    let proxy = &inits[2];
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["args"], json!(["imds", "--listen", "127.0.0.1:9000"]));
    // The uid the redirection exempts, so the sidecar's own traffic is not looped back.
    assert_eq!(proxy["securityContext"]["runAsUser"], 1501);
    assert_eq!(
        env(proxy, "AZURE_FEDERATED_TOKEN_FILE").as_deref(),
        Some(TOKEN_FILE)
    );
    // Apps use the IMDS address: no App Service variables.
    assert!(env(&doc["spec"]["containers"][0], "IDENTITY_ENDPOINT").is_none());
}

#[test]
fn refusals() {
    let proxy_on_host_network = pod(
        json!({"azure.workload.identity/inject-proxy-sidecar": "true"}),
        json!({"hostNetwork": true}),
    );
    let e = mutate(&proxy_on_host_network, &sa(), &cfg()).unwrap_err();
    assert_eq!(e.code(), 400);
    assert!(e.to_string().contains("hostNetwork"), "{e}");
    assert!(
        e.to_string()
            .contains("keyless.io/managed-identity-endpoint"),
        "{e}"
    );
    for bad in ["0", "65536", "-1", "80a", " 80", ""] {
        let p = pod(
            json!({
                "keyless.io/managed-identity-endpoint": "true",
                "azure.workload.identity/proxy-sidecar-port": bad,
            }),
            json!({}),
        );
        let e = mutate(&p, &sa(), &cfg()).unwrap_err();
        assert!(matches!(e, Rejection::IdentityEndpoint(_)), "{bad:?}: {e}");
        assert_eq!(e.code(), 400);
    }
}

#[test]
fn not_asked_or_every_container_skipped_adds_no_sidecar() {
    for annotations in [
        json!({}),
        json!({"keyless.io/managed-identity-endpoint": "false"}),
    ] {
        let doc = mutated(&pod(annotations, json!({})));
        assert_eq!(doc["spec"]["initContainers"].as_array().unwrap().len(), 1);
        assert!(env(&doc["spec"]["containers"][0], "IDENTITY_ENDPOINT").is_none());
    }
    let p = pod(
        json!({
            "keyless.io/managed-identity-endpoint": "true",
            "azure.workload.identity/skip-containers": "migrate;app;keyless-imds",
        }),
        json!({}),
    );
    assert!(mutate(&p, &sa(), &cfg()).unwrap().is_empty());
}
