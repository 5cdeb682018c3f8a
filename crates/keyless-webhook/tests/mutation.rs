//! The mutation over many pod shapes: each test applies the returned JSON Patch to the
//! original pod with an independent RFC 6902 implementation (json-patch) and asserts the
//! exact result, that the patch only adds, that nothing of the original is lost or
//! changed, and that mutating the result again changes nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyless_webhook::patch::{PatchOp, to_json};
use keyless_webhook::{CaTrust, MutationConfig, Rejection, ServiceAccount, TokenLayout};
use serde_json::{Value, json};

const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";
const AUTHORITY: &str = "https://keyless.example:8443/";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

fn cfg() -> MutationConfig {
    MutationConfig::new(TENANT, AUTHORITY)
}

fn sa_with(annotations: &[(&str, &str)]) -> ServiceAccount {
    ServiceAccount::new("ns1", "workload", annotations.iter().copied())
}

fn sa() -> ServiceAccount {
    sa_with(&[("azure.workload.identity/client-id", CLIENT)])
}

fn apply(pod: &Value, ops: &[PatchOp]) -> Value {
    let patch: json_patch::Patch = serde_json::from_slice(&to_json(ops)).unwrap();
    let mut doc = pod.clone();
    json_patch::patch(&mut doc, &patch).unwrap();
    doc
}

/// Everything in `orig` is still in `new` at the same place with the same value
/// (arrays may only have grown at the end; a `null` list may have been filled).
fn assert_preserved(orig: &Value, new: &Value, at: &str) {
    match (orig, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let w = b.get(k).unwrap_or_else(|| panic!("{at}/{k} was removed"));
                assert_preserved(v, w, &format!("{at}/{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert!(b.len() >= a.len(), "{at} shrank");
            for (i, v) in a.iter().enumerate() {
                assert_preserved(v, &b[i], &format!("{at}/{i}"));
            }
        }
        // `null` is how an absent list is often serialised: filling it is not a change.
        (Value::Null, Value::Array(_)) => {}
        (a, b) => assert_eq!(a, b, "{at} changed"),
    }
}

/// Mutates, checks the invariants, and returns the patched pod.
fn mutated_with(pod: &Value, sa: &ServiceAccount, cfg: &MutationConfig) -> Value {
    let ops = keyless_webhook::mutate::mutate(pod, sa, cfg).unwrap();
    assert!(ops.iter().all(|o| o.op() == "add"), "only adds: {ops:?}");
    let out = apply(pod, &ops);
    assert_preserved(pod, &out, "");
    let again = keyless_webhook::mutate::mutate(&out, sa, cfg).unwrap();
    assert!(
        again.is_empty(),
        "second run must change nothing: {again:?}"
    );
    out
}

fn mutated(pod: &Value) -> Value {
    mutated_with(pod, &sa(), &cfg())
}

fn env_all() -> Value {
    json!([
        {"name": "AZURE_CLIENT_ID", "value": CLIENT},
        {"name": "AZURE_TENANT_ID", "value": TENANT},
        {"name": "AZURE_FEDERATED_TOKEN_FILE", "value": TOKEN_FILE},
        {"name": "AZURE_AUTHORITY_HOST", "value": AUTHORITY},
    ])
}

fn token_mount() -> Value {
    json!({"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens", "readOnly": true})
}

fn token_volume(expiration: u64) -> Value {
    json!({"name": "azure-identity-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "api://AzureADTokenExchange", "expirationSeconds": expiration, "path": "azure-identity-token"}}]}})
}

fn kube_api_access() -> Value {
    json!({"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    ]}})
}

fn api_mount() -> Value {
    json!({"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true})
}

#[test]
fn single_container_gets_exactly_env_mount_and_volume() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns1", "labels": {"azure.workload.identity/use": "true"}},
        "spec": {"serviceAccountName": "workload", "containers": [{"name": "app", "image": "app:1"}]}
    });
    let out = mutated(&pod);
    assert_eq!(
        out,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns1", "labels": {"azure.workload.identity/use": "true"}},
            "spec": {
                "serviceAccountName": "workload",
                "containers": [{"name": "app", "image": "app:1", "env": env_all(), "volumeMounts": [token_mount()]}],
                "volumes": [token_volume(3600)],
            }
        })
    );
}

#[test]
fn real_pod_with_kube_api_access_keeps_it_and_appends() {
    let pod = json!({
        "metadata": {"generateName": "web-7d9f-", "labels": {"azure.workload.identity/use": "true", "app": "web"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f", "uid": "u"}]},
        "spec": {
            "containers": [{"name": "web", "image": "web", "env": [{"name": "A", "value": "1"}], "volumeMounts": [api_mount()],
                            "resources": {}, "terminationMessagePath": "/dev/termination-log"}],
            "volumes": [kube_api_access()],
            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"
        }
    });
    let out = mutated(&pod);
    let c = &out["spec"]["containers"][0];
    let mut env = vec![json!({"name": "A", "value": "1"})];
    env.extend(env_all().as_array().unwrap().iter().cloned());
    assert_eq!(c["env"], Value::Array(env));
    assert_eq!(c["volumeMounts"], json!([api_mount(), token_mount()]));
    assert_eq!(
        out["spec"]["volumes"],
        json!([kube_api_access(), token_volume(3600)])
    );
}

#[test]
fn several_containers_init_containers_and_native_sidecars() {
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {
            "initContainers": [
                {"name": "migrate", "image": "m"},
                {"name": "proxy", "image": "envoy", "restartPolicy": "Always", "startupProbe": {"tcpSocket": {"port": 1}}}
            ],
            "containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b", "env": []}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]
        }
    });
    let out = mutated(&pod);
    for (field, i) in [
        ("initContainers", 0),
        ("initContainers", 1),
        ("containers", 0),
        ("containers", 1),
    ] {
        let c = &out["spec"][field][i];
        assert_eq!(c["env"], env_all(), "{field}[{i}]");
        assert_eq!(c["volumeMounts"], json!([token_mount()]), "{field}[{i}]");
    }
    assert_eq!(out["spec"]["initContainers"][1]["restartPolicy"], "Always");
    assert_eq!(
        out["spec"]["ephemeralContainers"], pod["spec"]["ephemeralContainers"],
        "ephemeral containers are not mutated"
    );
    assert_eq!(out["spec"]["volumes"], json!([token_volume(3600)]));
}

#[test]
fn existing_variables_are_never_overwritten_including_value_from() {
    let user_env = json!([
        {"name": "AZURE_CLIENT_ID", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "AZURE_AUTHORITY_HOST", "value": "https://login.microsoftonline.com/"},
        {"name": "OTHER", "value": "x"}
    ]);
    let pod = json!({"spec": {"containers": [{"name": "app", "env": user_env}]}});
    let out = mutated(&pod);
    let mut want = user_env.as_array().unwrap().clone();
    want.push(json!({"name": "AZURE_TENANT_ID", "value": TENANT}));
    want.push(json!({"name": "AZURE_FEDERATED_TOKEN_FILE", "value": TOKEN_FILE}));
    assert_eq!(out["spec"]["containers"][0]["env"], Value::Array(want));
}

#[test]
fn null_lists_are_replaced_by_new_lists() {
    let pod = json!({"spec": {"volumes": null, "containers": [{"name": "app", "env": null, "volumeMounts": null}]}});
    let out = mutated(&pod);
    assert_eq!(out["spec"]["containers"][0]["env"], env_all());
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"],
        json!([token_mount()])
    );
    assert_eq!(out["spec"]["volumes"], json!([token_volume(3600)]));
}

#[test]
fn colliding_volume_name_and_mount_path_get_deterministic_alternatives() {
    let user_volume = json!({"name": "azure-identity-token", "configMap": {"name": "mine"}});
    let user_mount =
        json!({"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens/"});
    let other_mount = json!({"name": "data", "mountPath": "/var/run/secrets/azure/tokens-1"});
    let pod = json!({"spec": {
        "containers": [{"name": "a", "volumeMounts": [user_mount]}, {"name": "b", "volumeMounts": [other_mount]}],
        "volumes": [user_volume, {"name": "azure-identity-token-1", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]
    }});
    let out = mutated(&pod);
    let ours = &out["spec"]["volumes"][3];
    assert_eq!(ours["name"], "azure-identity-token-2");
    assert_eq!(
        ours["projected"]["sources"][0]["serviceAccountToken"]["path"],
        "azure-identity-token"
    );
    let mount = json!({"name": "azure-identity-token-2", "mountPath": "/var/run/secrets/azure/tokens-2", "readOnly": true});
    for i in 0..2 {
        let c = &out["spec"]["containers"][i];
        assert_eq!(
            c["volumeMounts"].as_array().unwrap().last().unwrap(),
            &mount
        );
        let file = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "AZURE_FEDERATED_TOKEN_FILE")
            .unwrap();
        assert_eq!(
            file["value"],
            "/var/run/secrets/azure/tokens-2/azure-identity-token"
        );
    }
}

#[test]
fn a_mount_path_used_only_by_an_ephemeral_container_is_also_avoided() {
    let pod = json!({"spec": {
        "containers": [{"name": "a"}],
        "ephemeralContainers": [{"name": "dbg", "volumeMounts": [{"name": "x", "mountPath": "/var/run/secrets/azure/tokens"}]}],
        "volumes": [{"name": "x", "emptyDir": {}}]
    }});
    let out = mutated(&pod);
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/azure/tokens-1"
    );
}

#[test]
fn skip_containers_are_untouched_and_all_skipped_adds_nothing() {
    let pod = json!({
        "metadata": {"annotations": {"azure.workload.identity/skip-containers": " sidecar ; init-db"}},
        "spec": {"initContainers": [{"name": "init-db"}], "containers": [{"name": "app"}, {"name": "sidecar"}]}
    });
    let out = mutated(&pod);
    assert_eq!(out["spec"]["initContainers"][0], json!({"name": "init-db"}));
    assert_eq!(out["spec"]["containers"][1], json!({"name": "sidecar"}));
    assert_eq!(out["spec"]["containers"][0]["env"], env_all());

    let all = json!({
        "metadata": {"annotations": {"azure.workload.identity/skip-containers": "app;sidecar"}},
        "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]}
    });
    assert!(
        keyless_webhook::mutate::mutate(&all, &sa(), &cfg())
            .unwrap()
            .is_empty()
    );
    let none = json!({"spec": {"containers": []}});
    assert!(
        keyless_webhook::mutate::mutate(&none, &sa(), &cfg())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn expiration_pod_wins_over_service_account_then_default() {
    let key = "azure.workload.identity/service-account-token-expiration";
    let sa = sa_with(&[("azure.workload.identity/client-id", CLIENT), (key, "7200")]);
    let pod = |ann: Value| json!({"metadata": {"annotations": ann}, "spec": {"containers": [{"name": "a"}]}});
    let exp = |out: &Value| {
        out["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"].clone()
    };
    assert_eq!(exp(&mutated_with(&pod(json!({})), &sa, &cfg())), 7200);
    assert_eq!(
        exp(&mutated_with(&pod(json!({key: "86400"})), &sa, &cfg())),
        86400
    );
    assert_eq!(
        exp(&mutated_with(&pod(json!({key: ""})), &sa, &cfg())),
        7200
    );
    assert_eq!(exp(&mutated(&pod(json!({})))), 3600);
}

#[test]
fn invalid_expirations_are_refused_with_value_and_range() {
    let key = "azure.workload.identity/service-account-token-expiration";
    for bad in ["100", "86401", "1h", "abc", "-1", "3600 "] {
        let pod = json!({"metadata": {"annotations": {key: bad}}, "spec": {"containers": [{"name": "a"}]}});
        let err = keyless_webhook::mutate::mutate(&pod, &sa(), &cfg()).unwrap_err();
        assert!(matches!(err, Rejection::InvalidExpiration { .. }));
        assert_eq!(err.code(), 400);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{bad:?}")) && msg.contains("3600") && msg.contains("86400"),
            "{msg}"
        );
    }
    let bad_sa = sa_with(&[(key, "100")]);
    let pod = json!({"spec": {"containers": [{"name": "a"}]}});
    let msg = keyless_webhook::mutate::mutate(&pod, &bad_sa, &cfg())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("service account") && msg.contains("\"100\""),
        "{msg}"
    );
}

#[test]
fn client_id_and_tenant_follow_the_service_account() {
    let pod = json!({"spec": {"containers": [{"name": "a"}]}});
    let names = |out: &Value| -> Vec<String> {
        out["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // No client-id annotation: no AZURE_CLIENT_ID.
    let out = mutated_with(&pod, &sa_with(&[]), &cfg());
    assert_eq!(
        names(&out),
        [
            "AZURE_TENANT_ID",
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_AUTHORITY_HOST"
        ]
    );
    // Empty client-id: same.
    let out = mutated_with(
        &pod,
        &sa_with(&[("azure.workload.identity/client-id", "")]),
        &cfg(),
    );
    assert!(!names(&out).contains(&"AZURE_CLIENT_ID".to_owned()));
    // A tenant annotation wins; an empty one suppresses the tenant.
    let out = mutated_with(
        &pod,
        &sa_with(&[("azure.workload.identity/tenant-id", "t2")]),
        &cfg(),
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"][0],
        json!({"name": "AZURE_TENANT_ID", "value": "t2"})
    );
    let out = mutated_with(
        &pod,
        &sa_with(&[("azure.workload.identity/tenant-id", "")]),
        &cfg(),
    );
    assert_eq!(
        names(&out),
        ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"]
    );
    // No configured tenant nor authority host: only the token file.
    let out = mutated_with(&pod, &sa_with(&[]), &MutationConfig::new("", ""));
    assert_eq!(names(&out), ["AZURE_FEDERATED_TOKEN_FILE"]);
}

#[test]
fn authority_host_is_injected_exactly_as_configured() {
    let pod = json!({"spec": {"containers": [{"name": "a"}]}});
    for host in [
        "https://keyless.example",
        "https://keyless.example:8443/",
        "https://login.microsoftonline.com/",
    ] {
        let out = mutated_with(&pod, &sa(), &MutationConfig::new(TENANT, host));
        assert_eq!(
            out["spec"]["containers"][0]["env"][3],
            json!({"name": "AZURE_AUTHORITY_HOST", "value": host})
        );
    }
}

#[test]
fn unknown_fields_anywhere_survive() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "futureTopLevel": {"x": [1, 2, {"y": null}]},
        "metadata": {"name": "p", "futureMeta": true, "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
        "spec": {
            "futureSpec": "s",
            "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "t"}],
            "os": {"name": "linux"},
            "containers": [{
                "name": "app", "futureContainer": {"deep": [{"deeper": 1.5}]},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "env": [{"name": "X", "value": "1", "futureEnv": 1}],
                "volumeMounts": [{"name": "d", "mountPath": "/d", "recursiveReadOnly": "IfPossible", "futureMount": "m"}]
            }],
            "volumes": [{"name": "d", "image": {"reference": "data:1", "pullPolicy": "IfNotPresent"}, "futureVolume": 2}]
        },
        "status": {"phase": "Pending"}
    });
    let out = mutated(&pod);
    assert_eq!(out["futureTopLevel"], pod["futureTopLevel"]);
    assert_eq!(out["spec"]["volumes"][0], pod["spec"]["volumes"][0]);
    assert_eq!(
        out["spec"]["containers"][0]["futureContainer"],
        pod["spec"]["containers"][0]["futureContainer"]
    );
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"][0],
        pod["spec"]["containers"][0]["volumeMounts"][0]
    );
}

#[test]
fn reinvocation_after_another_webhook_added_a_container_only_adds_to_it() {
    let pod = json!({"spec": {"containers": [{"name": "app"}]}});
    let once = mutated(&pod);
    // Another webhook (a service mesh) appends a sidecar and an init container.
    let mut other = once.clone();
    other["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "proxy"}));
    other["spec"]["initContainers"] = json!([{"name": "istio-init", "image": "proxy"}]);
    let ops = keyless_webhook::mutate::mutate(&other, &sa(), &cfg()).unwrap();
    let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/spec/initContainers/0/env",
            "/spec/initContainers/0/volumeMounts",
            "/spec/containers/1/env",
            "/spec/containers/1/volumeMounts"
        ]
    );
    let twice = mutated(&other);
    assert_eq!(
        twice["spec"]["volumes"],
        json!([token_volume(3600)]),
        "no second volume"
    );
    assert_eq!(twice["spec"]["containers"][1]["env"], env_all());
    assert_eq!(
        twice["spec"]["containers"][0],
        once["spec"]["containers"][0]
    );
}

#[test]
fn an_earlier_injection_is_recognised_by_what_it_is_not_its_name() {
    // A pod copied from an already mutated one, with our volume under another name and
    // mounted at a custom path: new containers get the same mount and token file.
    let ours = json!({"name": "wi-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "api://AzureADTokenExchange", "expirationSeconds": 7200, "path": "azure-identity-token"}}]}});
    let pod = json!({"spec": {
        "containers": [
            {"name": "old", "volumeMounts": [{"name": "wi-token", "mountPath": "/custom", "readOnly": true}]},
            {"name": "new"}
        ],
        "volumes": [ours]
    }});
    let out = mutated(&pod);
    assert_eq!(out["spec"]["volumes"], json!([ours]), "left as it is");
    assert_eq!(
        out["spec"]["containers"][1]["volumeMounts"],
        json!([{"name": "wi-token", "mountPath": "/custom", "readOnly": true}])
    );
    let file = out["spec"]["containers"][1]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "AZURE_FEDERATED_TOKEN_FILE")
        .unwrap()
        .clone();
    assert_eq!(file["value"], "/custom/azure-identity-token");
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "existing mount kept, not duplicated"
    );
}

#[test]
fn a_token_volume_for_another_audience_is_not_ours() {
    let theirs = json!({"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "vault", "expirationSeconds": 600, "path": "azure-identity-token"}}]}});
    let pod = json!({"spec": {"containers": [{"name": "a"}], "volumes": [theirs]}});
    let out = mutated(&pod);
    assert_eq!(out["spec"]["volumes"], json!([theirs, token_volume(3600)]));
}

#[test]
fn a_sub_path_mount_of_our_volume_does_not_count_as_mounted() {
    let pod = json!({"spec": {
        "containers": [{"name": "a", "volumeMounts": [{"name": "azure-identity-token", "mountPath": "/t", "subPath": "azure-identity-token"}]}],
        "volumes": [token_volume(3600)]
    }});
    let out = mutated(&pod);
    let mounts = out["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap();
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[1], token_mount());
}

#[test]
fn the_v1_6_layout_and_custom_audience() {
    let mut c = cfg();
    c.layout = TokenLayout::wi();
    c.audience = "api://keyless".into();
    let out = mutated_with(&json!({"spec": {"containers": [{"name": "a"}]}}), &sa(), &c);
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/azure/wi"
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"][2]["value"],
        "/var/run/secrets/azure/wi/token/azure-identity-token"
    );
    let src = &out["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(src["audience"], "api://keyless");
    assert_eq!(src["path"], "token/azure-identity-token");
}

#[test]
fn ca_trust_is_opt_in_per_pod() {
    let annotated = json!({"metadata": {"annotations": {"keyless.io/trust-ca": "true"}}, "spec": {"containers": [{"name": "a"}]}});
    // Not configured: refused with a clear message.
    let err = keyless_webhook::mutate::mutate(&annotated, &sa(), &cfg()).unwrap_err();
    assert!(err.to_string().contains("--ca-configmap"), "{err}");

    let mut c = cfg();
    c.ca_trust = Some(CaTrust::new("keyless-ca"));
    let out = mutated_with(&annotated, &sa(), &c);
    let env = out["spec"]["containers"][0]["env"].as_array().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names[4..],
        ["KEYLESS_CA_FILE", "NODE_EXTRA_CA_CERTS"],
        "replacing variables only with a bundle"
    );
    assert_eq!(env[4]["value"], "/var/run/secrets/keyless/ca/ca.crt");
    assert_eq!(
        out["spec"]["volumes"][1],
        json!({"name": "keyless-ca", "projected": {"sources": [{"configMap": {
        "name": "keyless-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}})
    );
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"][1],
        json!({"name": "keyless-ca", "mountPath": "/var/run/secrets/keyless/ca", "readOnly": true})
    );

    let mut c = cfg();
    let mut ca = CaTrust::new("keyless-ca");
    ca.bundle_key = Some("bundle.pem".into());
    c.ca_trust = Some(ca);
    let out = mutated_with(&annotated, &sa(), &c);
    let env = out["spec"]["containers"][0]["env"].as_array().unwrap();
    assert_eq!(
        env[6],
        json!({"name": "SSL_CERT_FILE", "value": "/var/run/secrets/keyless/ca/ca-bundle.crt"})
    );
    assert_eq!(
        env[7],
        json!({"name": "REQUESTS_CA_BUNDLE", "value": "/var/run/secrets/keyless/ca/ca-bundle.crt"})
    );

    // Not annotated: nothing about the CA even when configured.
    let plain = mutated_with(&json!({"spec": {"containers": [{"name": "a"}]}}), &sa(), &c);
    assert_eq!(plain["spec"]["volumes"].as_array().unwrap().len(), 1);
}

#[test]
fn pods_that_cannot_be_read_are_refused() {
    for (pod, needle) in [
        (json!({"metadata": {}}), "no spec"),
        (
            json!({"spec": {"containers": {"name": "a"}}}),
            "spec.containers is not a list",
        ),
        (
            json!({"spec": {"containers": ["a"]}}),
            "spec.containers[0] is not an object",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "env": "x"}]}}),
            "spec.containers[0].env is not a list",
        ),
        (
            json!({"spec": {"containers": [{"name": "a"}], "volumes": 1}}),
            "spec.volumes is not a list",
        ),
    ] {
        let err = keyless_webhook::mutate::mutate(&pod, &sa(), &cfg()).unwrap_err();
        assert_eq!(err.code(), 400);
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn json_pointer_tokens_are_escaped() {
    let op = PatchOp::add(["metadata", "annotations", "keyless.io/x~y"], json!("v"));
    assert_eq!(op.path, "/metadata/annotations/keyless.io~1x~0y");
}

/// Many combinations of pod shapes: every result is reachable by adds only, keeps the
/// original, and is a fixed point.
#[test]
fn many_shapes_are_idempotent_and_lossless() {
    let envs = [
        None,
        Some(json!(null)),
        Some(json!([])),
        Some(json!([{"name": "AZURE_TENANT_ID", "value": "mine"}])),
    ];
    let mounts = [
        None,
        Some(json!([])),
        Some(json!([{"name": "x", "mountPath": "/var/run/secrets/azure/tokens"}])),
        Some(json!([api_mount()])),
    ];
    let volume_sets = [
        json!(null),
        json!([]),
        json!([kube_api_access()]),
        json!([{"name": "azure-identity-token", "emptyDir": {}}, {"name": "x", "emptyDir": {}}]),
    ];
    let mut n = 0;
    for env in &envs {
        for mount in &mounts {
            for volumes in &volume_sets {
                for inits in [0, 1, 2] {
                    let mut c = json!({"name": "c", "image": "i"});
                    if let Some(e) = env {
                        c["env"] = e.clone();
                    }
                    if let Some(m) = mount {
                        c["volumeMounts"] = m.clone();
                    }
                    let init: Vec<Value> = (0..inits)
                        .map(|i| json!({"name": format!("init{i}")}))
                        .collect();
                    let pod = json!({"spec": {"initContainers": init, "containers": [c, {"name": "second"}], "volumes": volumes}});
                    let out = mutated(&pod);
                    let file = out["spec"]["containers"][1]["env"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|e| e["name"] == "AZURE_FEDERATED_TOKEN_FILE")
                        .unwrap()["value"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let mount = out["spec"]["containers"][1]["volumeMounts"][0].clone();
                    assert!(
                        file.starts_with(mount["mountPath"].as_str().unwrap()),
                        "{file} vs {mount}"
                    );
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 192);
}
