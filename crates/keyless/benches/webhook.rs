//! Benchmark: the admission webhook (`keyless webhook`) mutating a realistic pod, over
//! keep-alive HTTPS, with the server confined to one core (`taskset -a`): its CPU per
//! admission (so admissions per second per core), throughput, and the latency
//! percentiles at half of the maximum throughput (open loop, latency from each request's
//! scheduled start). Every review is unique (pod name, uid), as the API server's are.
//! The ServiceAccounts come from a fake API server (the integration tests' one) through
//! the webhook's real list/watch cache.
//!
//! Run: `./scripts/bench.sh webhook` (release). Loopback only; bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

#[allow(dead_code)] // the benchmark needs only a few of the fake's controls
#[path = "../tests/integration/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/mod.rs"]
mod support;

use support::{Row, cpu_seconds, percentile, pin_self};

const CLIENT_ID: &str = "0b7a3f55-0000-4000-8000-0000000000c1";
const SERVICE_HOST: &str = "keyless-webhook.keyless-system.svc";
const CONNECTIONS: usize = 16;
const CLOSED_LOOP: usize = 20_000;
const OPEN_LOOP: usize = 40_000;

/// An AdmissionReview of a Deployment's pod as the API server sends it: generated name,
/// owner reference, two containers with probes and resources, the kube-api-access
/// volume. `i` makes the pod and the request unique.
fn review(i: usize) -> Vec<u8> {
    let name = format!("web-7d4b9c8f6-{i:06x}");
    let container = |name: &str, image: &str, port: u16| {
        json!({
            "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": port, "protocol": "TCP"}],
            "env": [{"name": "LOG_LEVEL", "value": "info"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"}, "periodSeconds": 10},
            "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": true,
                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
        })
    };
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "generateName": "web-7d4b9c8f6-", "name": name, "namespace": "apps",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6", "azure.workload.identity/use": "true"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-01T10:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6",
                                 "uid": "5f1c2d3e-0000-4000-8000-00000000a001", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "serviceAccountName": "workload", "serviceAccount": "workload",
            "containers": [container("app", "registry.example/web:1.4.2", 8080),
                           container("metrics", "registry.example/exporter:0.9", 9100)],
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "securityContext": {"runAsNonRoot": true},
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        }
    });
    serde_json::to_vec(&json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": format!("e911857d-c318-11e8-bbad-{i:012x}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "apps", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "2b6e5f1a-0000-4000-8000-00000000b001",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
            "object": pod, "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    }))
    .unwrap()
}

/// Sends one review and checks that the pod was admitted with a patch.
async fn admit(http: reqwest::Client, url: Arc<String>, body: Vec<u8>) {
    let r = http
        .post(url.as_str())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response"]["allowed"], true, "{v}");
    assert!(v["response"]["patch"].is_string(), "no patch: {v}");
}

fn client(ca: &std::path::Path, port: u16, http2: bool) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    let b = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .resolve(SERVICE_HOST, SocketAddr::from(([127, 0, 0, 1], port)))
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(30));
    if http2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    }
    .build()
    .unwrap()
}

/// Closed loop of `n` unique admissions starting at `first`: wall time and server CPU.
async fn closed_loop(
    http: &reqwest::Client,
    url: &Arc<String>,
    first: usize,
    n: usize,
    pid: u32,
) -> (Duration, f64) {
    let before = cpu_seconds(pid);
    let (http, url) = (http.clone(), url.clone());
    let bodies: Vec<Vec<u8>> = (first..first + n).map(review).collect();
    let wall = support::closed_loop(bodies, CONNECTIONS, move |b| {
        admit(http.clone(), url.clone(), b)
    })
    .await;
    (wall, cpu_seconds(pid) - before)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let api = fake_apiserver::FakeApiServer::start(&[
        ("apps", "default", &[]),
        (
            "apps",
            "workload",
            &[("azure.workload.identity/client-id", CLIENT_ID)],
        ),
    ])
    .await;
    let kubeconfig = api.kubeconfig(dir.path());
    let certs = dir.path().join("certs");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_keyless"))
        .args(["webhook", "certs", "--out-dir"])
        .arg(&certs)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "keyless webhook certs failed");
    let (server, ready) = support::start_pinned_with_env(
        0,
        &[
            "webhook",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--cert-dir",
            certs.to_str().unwrap(),
            "--tenant-id",
            "72f988bf-0000-4000-8000-000000000001",
            "--authority-host",
            "https://keyless.example:8443/",
        ],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    )
    .await;
    let pid = server.id().unwrap();
    // `https://127.0.0.1:PORT (metrics at ...)`
    let port: u16 = ready
        .split_whitespace()
        .next()
        .and_then(|u| u.rsplit(':').next())
        .unwrap()
        .parse()
        .unwrap();
    let url = Arc::new(format!(
        "https://{SERVICE_HOST}:{port}/mutate-v1-pod?timeout=10s"
    ));
    let ca = certs.join("ca.crt");
    let (h1, h2) = (client(&ca, port, false), client(&ca, port, true));
    // This process stays off the server's core from here on.
    pin_self(1);
    // Warm-up: connections, and the first reviews after readiness.
    closed_loop(&h1, &url, 0, 1_000, pid).await;
    closed_loop(&h2, &url, 1_000, 1_000, pid).await;

    let mut next = 2_000;
    // KEYLESS_BENCH_PERF=FILE: a profile of the webhook during the HTTP/1.1 phase.
    let perf = support::perf_record(pid);
    let (h1_wall, h1_cpu) = closed_loop(&h1, &url, next, CLOSED_LOOP, pid).await;
    if let Some(p) = perf {
        support::interrupt_and_wait(p);
    }
    next += CLOSED_LOOP;
    let (h2_wall, h2_cpu) = closed_loop(&h2, &url, next, CLOSED_LOOP, pid).await;
    next += CLOSED_LOOP;
    let max_rate = CLOSED_LOOP as f64 / h1_wall.as_secs_f64();
    let bodies: Vec<Vec<u8>> = (next..next + OPEN_LOOP).map(review).collect();
    let (http, u) = (h1.clone(), url.clone());
    let lat = support::open_loop(bodies, CONNECTIONS, max_rate / 2.0, move |b| {
        admit(http.clone(), u.clone(), b)
    })
    .await;

    let n = CLOSED_LOOP as f64;
    println!(
        "admission webhook over HTTPS, realistic unique pods, {CONNECTIONS} connections, server on one core"
    );
    let rows = [
        // ≥ 10,000 admissions/s per core is ≤ 100 µs of CPU per admission.
        Row::target(
            "webhook CPU / admission, HTTP/1.1",
            h1_cpu / n * 1e6,
            "µs",
            100.0,
        ),
        Row::target(
            "webhook CPU / admission, HTTP/2",
            h2_cpu / n * 1e6,
            "µs",
            100.0,
        ),
        Row::info("webhook admissions/s per core, HTTP/1.1", n / h1_cpu, "/s"),
        Row::info(
            "webhook throughput HTTP/1.1 (server on one core)",
            n / h1_wall.as_secs_f64(),
            "/s",
        ),
        Row::info(
            "webhook throughput HTTP/2 (server on one core)",
            n / h2_wall.as_secs_f64(),
            "/s",
        ),
        Row::info(
            "webhook p50 at half max throughput, HTTP/1.1",
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            "ms",
        ),
        Row::target(
            "webhook p99 at half max throughput, HTTP/1.1",
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            "ms",
            1.0,
        ),
    ];
    support::print_rows(&rows);
}
