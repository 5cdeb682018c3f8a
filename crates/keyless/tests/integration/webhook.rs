//! `keyless webhook`: the real binary, its certificate from `keyless webhook certs`, a
//! fake Kubernetes API server for ServiceAccounts, and AdmissionReviews over HTTPS as the
//! API server sends them. Every patch is applied to the original pod with an independent
//! RFC 6902 implementation and the result compared with the exact expected pod.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::fake_apiserver::FakeApiServer;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUTHORITY: &str = "https://keyless.example:8443/";
const CLIENT: &str = "0b7a3f55-0000-4000-8000-0000000000c1";
const SERVICE_HOST: &str = "keyless-webhook.keyless-system.svc";
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";
const USE: &str = "azure.workload.identity/use";

fn keyless() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyless"));
    c.env_remove("AZURE_TENANT_ID")
        .env_remove("KEYLESS_AUTHORITY_HOST")
        .env_remove("KUBECONFIG")
        .env("KEYLESS_LOG", "info");
    c
}

/// Runs `keyless webhook certs --out-dir DIR`; returns its stdout (the YAML).
async fn make_certs(dir: &Path) -> Result<String> {
    let out = keyless()
        .args(["webhook", "certs", "--out-dir"])
        .arg(dir)
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "webhook certs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A running `keyless webhook`.
struct Webhook {
    child: Child,
    /// `https://keyless-webhook.keyless-system.svc:PORT` (resolved to loopback).
    url: String,
    metrics_url: String,
    /// Trusts only `ca.crt` of the cert dir, and resolves the Service name to loopback.
    client: reqwest::Client,
    plain: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
    cert_dir: PathBuf,
}

impl Webhook {
    async fn start(api: &FakeApiServer, extra: &[&str]) -> Result<Webhook> {
        let dir = tempfile::tempdir()?;
        let cert_dir = dir.path().join("certs");
        make_certs(&cert_dir).await?;
        Self::start_in(api, dir, cert_dir, extra).await
    }

    async fn start_in(
        api: &FakeApiServer,
        dir: tempfile::TempDir,
        cert_dir: PathBuf,
        extra: &[&str],
    ) -> Result<Webhook> {
        let kubeconfig = api.kubeconfig(dir.path());
        let mut cmd = keyless();
        cmd.args([
            "webhook",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--cert-dir")
        .arg(&cert_dir)
        .args([
            "--tenant-id",
            TENANT,
            "--authority-host",
            AUTHORITY,
            "--tls-reload-interval",
            "1",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd.spawn().context("spawning keyless webhook")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let buf = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = err_lines.next_line().await {
                let mut b = buf.lock().unwrap();
                b.push_str(&l);
                b.push('\n');
            }
        });
        let mut out_lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(l) = out_lines.next_line().await? {
                if l.contains("ready at ") {
                    return Ok::<_, anyhow::Error>(Some(l));
                }
            }
            Ok(None)
        })
        .await;
        let line = match ready {
            Ok(Ok(Some(l))) => l,
            _ => bail!(
                "keyless webhook did not become ready; stderr:\n{}",
                stderr.lock().unwrap()
            ),
        };
        // keyless webhook: ready at https://127.0.0.1:P (metrics at http://127.0.0.1:Q/metrics)
        let https = line
            .split("ready at https://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .context("https addr")?;
        let http = line
            .split("metrics at http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .context("metrics addr")?;
        let https_addr: std::net::SocketAddr = https.parse()?;
        let client = trusting(&cert_dir.join("ca.crt"), https_addr)?;
        Ok(Webhook {
            child,
            url: format!("https://{SERVICE_HOST}:{}", https_addr.port()),
            metrics_url: format!("http://{http}"),
            client,
            plain: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            stderr,
            _dir: dir,
            cert_dir,
        })
    }

    /// POSTs a body to `/mutate-v1-pod?timeout=10s` (as the API server does).
    async fn post(&self, body: Vec<u8>) -> Result<(u16, String)> {
        let r = self
            .client
            .post(format!("{}/mutate-v1-pod?timeout=10s", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// Sends a review and returns the `response` object (asserting HTTP 200 and the uid).
    async fn review(&self, namespace: Option<&str>, pod: &Value) -> Result<Value> {
        let (status, text) = self.post(review_body(namespace, pod)).await?;
        anyhow::ensure!(status == 200, "HTTP {status}: {text}");
        let v: Value = serde_json::from_str(&text)?;
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], "e911857d-c318-11e8-bbad-025000000001");
        Ok(v["response"].clone())
    }

    /// The pod after applying the returned patch (asserting it was allowed).
    async fn mutate(&self, namespace: Option<&str>, pod: &Value) -> Result<Value> {
        let response = self.review(namespace, pod).await?;
        assert_eq!(response["allowed"], true, "{response}");
        Ok(apply(pod, &response))
    }

    async fn metrics(&self) -> Result<String> {
        Ok(self
            .plain
            .get(format!("{}/metrics", self.metrics_url))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Waits until `/metrics` has a line equal to `line`.
    async fn wait_metric(&self, line: &str) -> Result<()> {
        for _ in 0..200 {
            if self.metrics().await?.lines().any(|l| l == line) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("no metric line {line:?} in:\n{}", self.metrics().await?)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, and a clean exit within 10 s.
    async fn stop(mut self) -> Result<()> {
        let pid = self.child.id().context("already exited")?;
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()?;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await??;
        anyhow::ensure!(
            status.success(),
            "exit {status}; stderr:\n{}",
            self.stderr()
        );
        Ok(())
    }
}

fn trusting(ca: &Path, addr: std::net::SocketAddr) -> Result<reqwest::Client> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pem = std::fs::read(ca)?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)?;
    Ok(reqwest::Client::builder()
        .tls_certs_only(certs)
        .resolve(SERVICE_HOST, addr)
        .timeout(Duration::from_secs(10))
        .build()?)
}

fn review_body(namespace: Option<&str>, pod: &Value) -> Vec<u8> {
    let mut request = json!({
        "uid": "e911857d-c318-11e8-bbad-025000000001",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts"]},
        "object": pod,
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    });
    if let Some(ns) = namespace {
        request["namespace"] = json!(ns);
    }
    serde_json::to_vec(&json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request})).unwrap()
}

/// Applies the response's patch (base64 RFC 6902) to `pod`; no patch means unchanged.
fn apply(pod: &Value, response: &Value) -> Value {
    let Some(b64) = response.get("patch").and_then(Value::as_str) else {
        assert!(
            response.get("patchType").is_none(),
            "patchType without patch: {response}"
        );
        return pod.clone();
    };
    assert_eq!(response["patchType"], "JSONPatch");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&raw).expect("patch is RFC 6902");
    for op in &patch.0 {
        assert!(
            matches!(op, json_patch::PatchOperation::Add(_)),
            "only add operations: {op:?}"
        );
    }
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).expect("patch applies to the original");
    out
}

fn env(client: Option<&str>, file: &str) -> Vec<Value> {
    let mut e = Vec::new();
    if let Some(c) = client {
        e.push(json!({"name": "AZURE_CLIENT_ID", "value": c}));
    }
    e.push(json!({"name": "AZURE_TENANT_ID", "value": TENANT}));
    e.push(json!({"name": "AZURE_FEDERATED_TOKEN_FILE", "value": file}));
    e.push(json!({"name": "AZURE_AUTHORITY_HOST", "value": AUTHORITY}));
    e
}

fn mount(name: &str, path: &str) -> Value {
    json!({"name": name, "mountPath": path, "readOnly": true})
}

fn volume(name: &str, exp: u64) -> Value {
    json!({"name": name, "projected": {"sources": [{"serviceAccountToken": {
        "audience": "api://AzureADTokenExchange", "expirationSeconds": exp, "path": "azure-identity-token"}}]}})
}

fn labelled(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {USE: "true"}}, "spec": spec})
}

async fn api() -> FakeApiServer {
    FakeApiServer::start(&[
        ("apps", "default", &[]),
        (
            "apps",
            "workload",
            &[("azure.workload.identity/client-id", CLIENT)],
        ),
        (
            "apps",
            "long",
            &[
                ("azure.workload.identity/client-id", CLIENT),
                (
                    "azure.workload.identity/service-account-token-expiration",
                    "7200",
                ),
            ],
        ),
        (
            "apps",
            "bad-exp",
            &[(
                "azure.workload.identity/service-account-token-expiration",
                "100",
            )],
        ),
        (
            "other",
            "workload",
            &[("azure.workload.identity/client-id", "other-client")],
        ),
    ])
    .await
}

#[tokio::test]
async fn pod_shapes_are_mutated_exactly_over_https() -> Result<()> {
    let api = api().await;
    let wh = Webhook::start(&api, &[]).await?;
    let std_env = env(Some(CLIENT), TOKEN_FILE);
    let std_mount = mount("azure-identity-token", "/var/run/secrets/azure/tokens");

    // Single container, no env, no mounts, no volumes.
    let pod = labelled(
        json!({"serviceAccountName": "workload", "containers": [{"name": "app", "image": "app"}]}),
    );
    assert_eq!(
        wh.mutate(Some("apps"), &pod).await?,
        labelled(json!({
            "serviceAccountName": "workload",
            "containers": [{"name": "app", "image": "app", "env": std_env, "volumeMounts": [std_mount]}],
            "volumes": [volume("azure-identity-token", 3600)],
        }))
    );

    // Several containers, init containers and a native sidecar; existing env with
    // valueFrom; kube-api-access volume and mount; unknown fields everywhere.
    let api_vol = json!({"name": "kube-api-access-x1", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}});
    let api_mount = json!({"name": "kube-api-access-x1", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true});
    let value_from = json!({"name": "AZURE_CLIENT_ID", "valueFrom": {"configMapKeyRef": {"name": "ids", "key": "client"}}});
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "someFutureField": {"x": 1},
        "metadata": {"generateName": "web-5f7b9-", "labels": {USE: "true", "pod-template-hash": "5f7b9"}, "futureMeta": [1]},
        "spec": {
            "serviceAccountName": "workload",
            "initContainers": [
                {"name": "init", "image": "busybox", "futureInit": true},
                {"name": "mesh", "image": "envoy", "restartPolicy": "Always", "env": [value_from]}
            ],
            "containers": [
                {"name": "app", "image": "app", "volumeMounts": [api_mount], "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]},
                {"name": "worker", "image": "w", "env": [{"name": "AZURE_TENANT_ID", "value": "mine"}]}
            ],
            "volumes": [api_vol],
            "schedulingGates": [{"name": "future"}]
        }
    });
    let mut want = pod.clone();
    want["spec"]["initContainers"][0]["env"] = json!(std_env);
    want["spec"]["initContainers"][0]["volumeMounts"] = json!([std_mount]);
    let mut mesh_env = vec![value_from.clone()];
    mesh_env.extend(env(None, TOKEN_FILE));
    want["spec"]["initContainers"][1]["env"] = json!(mesh_env);
    want["spec"]["initContainers"][1]["volumeMounts"] = json!([std_mount]);
    want["spec"]["containers"][0]["env"] = json!(std_env);
    want["spec"]["containers"][0]["volumeMounts"] = json!([api_mount, std_mount]);
    want["spec"]["containers"][1]["env"] = json!([
        {"name": "AZURE_TENANT_ID", "value": "mine"},
        {"name": "AZURE_CLIENT_ID", "value": CLIENT},
        {"name": "AZURE_FEDERATED_TOKEN_FILE", "value": TOKEN_FILE},
        {"name": "AZURE_AUTHORITY_HOST", "value": AUTHORITY},
    ]);
    want["spec"]["containers"][1]["volumeMounts"] = json!([std_mount]);
    want["spec"]["volumes"] = json!([api_vol, volume("azure-identity-token", 3600)]);
    let once = wh.mutate(Some("apps"), &pod).await?;
    assert_eq!(once, want);

    // Reinvocation on the already mutated pod: allowed, no patch.
    let again = wh.review(Some("apps"), &once).await?;
    assert_eq!(
        again,
        json!({"uid": "e911857d-c318-11e8-bbad-025000000001", "allowed": true})
    );
    // ... and after another webhook appended a container: only it gets env and mount.
    let mut grown = once.clone();
    grown["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "late", "image": "l"}));
    let mut want_grown = grown.clone();
    want_grown["spec"]["containers"][2]["env"] = json!(std_env);
    want_grown["spec"]["containers"][2]["volumeMounts"] = json!([std_mount]);
    assert_eq!(wh.mutate(Some("apps"), &grown).await?, want_grown);

    // Colliding volume name and mount path: deterministic alternatives.
    let pod = labelled(json!({
        "serviceAccountName": "workload",
        "containers": [{"name": "app", "volumeMounts": [{"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens"}]}],
        "volumes": [{"name": "azure-identity-token", "secret": {"secretName": "mine"}}]
    }));
    let alt_file = "/var/run/secrets/azure/tokens-1/azure-identity-token";
    assert_eq!(
        wh.mutate(Some("apps"), &pod).await?,
        labelled(json!({
            "serviceAccountName": "workload",
            "containers": [{"name": "app", "volumeMounts": [
                {"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens"},
                mount("azure-identity-token-1", "/var/run/secrets/azure/tokens-1")],
                "env": env(Some(CLIENT), alt_file)}],
            "volumes": [{"name": "azure-identity-token", "secret": {"secretName": "mine"}}, volume("azure-identity-token-1", 3600)]
        }))
    );

    // skip-containers.
    let mut pod = labelled(
        json!({"serviceAccountName": "workload", "containers": [{"name": "app"}, {"name": "istio-proxy"}]}),
    );
    pod["metadata"]["annotations"] =
        json!({"azure.workload.identity/skip-containers": "istio-proxy"});
    let out = wh.mutate(Some("apps"), &pod).await?;
    assert_eq!(out["spec"]["containers"][1], json!({"name": "istio-proxy"}));
    assert_eq!(out["spec"]["containers"][0]["env"], json!(std_env));

    // Pod-level expiration beats the ServiceAccount's; the ServiceAccount's beats 3600.
    let exp = |p: &Value| {
        p["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"].clone()
    };
    let pod = labelled(json!({"serviceAccountName": "long", "containers": [{"name": "app"}]}));
    assert_eq!(exp(&wh.mutate(Some("apps"), &pod).await?), 7200);
    let mut pod2 = pod.clone();
    pod2["metadata"]["annotations"] =
        json!({"azure.workload.identity/service-account-token-expiration": "86400"});
    assert_eq!(exp(&wh.mutate(Some("apps"), &pod2).await?), 86400);

    // ServiceAccount without client-id: no AZURE_CLIENT_ID.
    let pod = labelled(json!({"containers": [{"name": "app"}]}));
    let out = wh.mutate(Some("apps"), &pod).await?;
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!(env(None, TOKEN_FILE))
    );

    // generateName pod without name or namespace: the request's namespace counts.
    let pod = json!({"metadata": {"generateName": "job-", "labels": {USE: "true"}},
                     "spec": {"serviceAccountName": "workload", "containers": [{"name": "c"}]}});
    let out = wh.mutate(Some("other"), &pod).await?;
    assert_eq!(
        out["spec"]["containers"][0]["env"][0]["value"],
        "other-client"
    );

    // Unlabelled pod: untouched.
    let pod = json!({"metadata": {"name": "x"}, "spec": {"serviceAccountName": "workload", "containers": [{"name": "c"}]}});
    assert_eq!(
        wh.review(Some("apps"), &pod).await?,
        json!({"uid": "e911857d-c318-11e8-bbad-025000000001", "allowed": true})
    );

    wh.stop().await
}

#[tokio::test]
async fn refusals_are_verdicts_with_codes_and_messages() -> Result<()> {
    let api = api().await;
    let wh = Webhook::start(&api, &[]).await?;
    let key = "azure.workload.identity/service-account-token-expiration";
    for bad in ["100", "86401", "abc", "1h", "-3600"] {
        let mut pod =
            labelled(json!({"serviceAccountName": "workload", "containers": [{"name": "c"}]}));
        pod["metadata"]["annotations"] = json!({key: bad});
        let r = wh.review(Some("apps"), &pod).await?;
        assert_eq!(r["allowed"], false);
        assert_eq!(r["status"]["code"], 400);
        let msg = r["status"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("\"{bad}\"")) && msg.contains("between 3600 and 86400"),
            "{msg}"
        );
    }
    let pod = labelled(json!({"serviceAccountName": "bad-exp", "containers": [{"name": "c"}]}));
    let r = wh.review(Some("apps"), &pod).await?;
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("on the service account"),
        "{r}"
    );

    let pod = labelled(json!({"serviceAccountName": "ghost", "containers": [{"name": "c"}]}));
    let r = wh.review(Some("apps"), &pod).await?;
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
    assert_eq!(
        r["status"]["message"],
        "serviceaccounts \"ghost\" not found"
    );

    let metrics = wh.metrics().await?;
    assert!(
        metrics.contains("keyless_webhook_rejections_total{reason=\"invalid_token_expiration\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("keyless_webhook_rejections_total{reason=\"service_account_not_found\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("keyless_webhook_mutation_duration_seconds_count{namespace=\"apps\",outcome=\"rejected\"} 7"), "{metrics}");
    assert!(metrics.contains("keyless_webhook_mutation_duration_seconds_bucket{namespace=\"apps\",outcome=\"rejected\",le=\"+Inf\"} 7"), "{metrics}");
    wh.stop().await
}

#[tokio::test]
async fn malformed_bodies_are_http_400_and_the_server_stays_up() -> Result<()> {
    let api = api().await;
    let wh = Webhook::start(&api, &[]).await?;
    let v1beta1 = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","object":{}}}"#;
    let huge = {
        let mut b = review_body(
            Some("apps"),
            &labelled(json!({"containers": [{"name": "c"}]})),
        );
        let pad = format!(",\"pad\":\"{}\"}}", "x".repeat(4 * 1024 * 1024));
        b.pop();
        b.extend_from_slice(pad.as_bytes());
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "not a JSON AdmissionReview"),
        (b"not json".to_vec(), "not a JSON AdmissionReview"),
        (b"[1,2]".to_vec(), "not a JSON AdmissionReview"),
        (v1beta1.to_vec(), "admission.k8s.io/v1beta1"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#.to_vec(),
            "expected kind AdmissionReview",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            "no request",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#
                .to_vec(),
            "request",
        ),
        (huge, "larger than"),
    ];
    for (body, needle) in cases {
        let (status, text) = wh.post(body).await?;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
    // Wrong method; unknown path.
    let r = wh
        .client
        .get(format!("{}/mutate-v1-pod", wh.url))
        .send()
        .await?;
    assert_eq!(r.status(), 405);
    let r = wh
        .client
        .post(format!("{}/mutate", wh.url))
        .body("{}")
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    // Still serving, healthy and ready on both listeners.
    let pod = labelled(json!({"serviceAccountName": "workload", "containers": [{"name": "c"}]}));
    assert!(wh.review(Some("apps"), &pod).await?.get("patch").is_some());
    for url in [format!("{}/healthz", wh.url), format!("{}/readyz", wh.url)] {
        assert_eq!(wh.client.get(&url).send().await?.status(), 200, "{url}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            wh.plain
                .get(format!("{}{path}", wh.metrics_url))
                .send()
                .await?
                .status(),
            200
        );
    }
    assert!(
        wh.metrics()
            .await?
            .contains("keyless_webhook_malformed_reviews_total 8")
    );
    wh.stop().await
}

#[tokio::test]
async fn service_account_cache_follows_the_watch_and_falls_back_to_a_direct_read() -> Result<()> {
    let api = api().await;
    let wh = Webhook::start(&api, &[]).await?;
    // Listed in pages (five accounts, two a page), then watched.
    assert_eq!(api.count("LIST"), 3, "{:?}", api.requests());
    wh.wait_metric("keyless_webhook_serviceaccount_cache_entries 5")
        .await?;
    let pod = |sa: &str| labelled(json!({"serviceAccountName": sa, "containers": [{"name": "c"}]}));
    let client_of = |p: &Value| p["spec"]["containers"][0]["env"][0]["value"].clone();

    // Cached: no direct read.
    wh.mutate(Some("apps"), &pod("workload")).await?;
    assert_eq!(api.count("GET "), 0);

    // A created ServiceAccount becomes visible through the watch (no direct read).
    api.create(
        "apps",
        "fresh",
        &[("azure.workload.identity/client-id", "fresh-client")],
    );
    wh.wait_metric("keyless_webhook_serviceaccount_cache_entries 6")
        .await?;
    assert_eq!(
        client_of(&wh.mutate(Some("apps"), &pod("fresh")).await?),
        "fresh-client"
    );
    assert_eq!(api.count("GET "), 0, "{:?}", api.requests());

    // A modification is seen too.
    api.create(
        "apps",
        "fresh",
        &[("azure.workload.identity/client-id", "changed")],
    );
    for _ in 0..100 {
        if client_of(&wh.mutate(Some("apps"), &pod("fresh")).await?) == "changed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        client_of(&wh.mutate(Some("apps"), &pod("fresh")).await?),
        "changed"
    );

    // A deleted one disappears: the miss reads directly, gets 404, refuses the pod.
    api.delete("apps", "fresh");
    wh.wait_metric("keyless_webhook_serviceaccount_cache_entries 5")
        .await?;
    let r = wh.review(Some("apps"), &pod("fresh")).await?;
    assert_eq!(
        r["status"]["message"],
        "serviceaccounts \"fresh\" not found"
    );
    assert_eq!(api.count("GET apps/fresh"), 1);

    // Created but not yet seen by the watch: the direct read finds it.
    api.create_unannounced(
        "apps",
        "racy",
        &[("azure.workload.identity/client-id", "racy-client")],
    );
    assert_eq!(
        client_of(&wh.mutate(Some("apps"), &pod("racy")).await?),
        "racy-client"
    );
    assert_eq!(api.count("GET apps/racy"), 1);
    wh.wait_metric("keyless_webhook_serviceaccount_direct_reads_total{result=\"found\"} 1")
        .await?;
    wh.wait_metric("keyless_webhook_serviceaccount_direct_reads_total{result=\"not_found\"} 1")
        .await?;

    // The watch expires (410): the webhook lists again and keeps following changes.
    let lists = api.count("LIST");
    api.expire_watches();
    for _ in 0..200 {
        if api.count("LIST") > lists && api.open_watches() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        api.count("LIST") > lists,
        "relisted after 410: {:?}",
        api.requests()
    );
    wh.wait_metric("keyless_webhook_serviceaccount_cache_entries 6")
        .await?; // now includes "racy"
    api.create(
        "apps",
        "after",
        &[("azure.workload.identity/client-id", "after-client")],
    );
    wh.wait_metric("keyless_webhook_serviceaccount_cache_entries 7")
        .await?;
    let gets = api.count("GET ");
    assert_eq!(
        client_of(&wh.mutate(Some("apps"), &pod("after")).await?),
        "after-client"
    );
    assert_eq!(api.count("GET "), gets, "served from the cache");
    wh.stop().await
}

#[tokio::test]
async fn readiness_waits_for_the_certificate_and_the_cache() -> Result<()> {
    let api = api().await;
    api.fail_lists(true);
    let dir = tempfile::tempdir()?;
    let cert_dir = dir.path().join("certs");
    std::fs::create_dir_all(&cert_dir)?;
    let kubeconfig = api.kubeconfig(dir.path());
    // The metrics port must be known before the ready line: reserve a free one.
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut child = keyless()
        .args([
            "webhook",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &metrics,
            "--tls-reload-interval",
            "1",
        ])
        .arg("--cert-dir")
        .arg(&cert_dir)
        .args(["--tenant-id", TENANT, "--authority-host", AUTHORITY])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let readyz = format!("http://{metrics}/readyz");
    let wait_for = |want: (u16, &'static str)| {
        let (plain, readyz) = (plain.clone(), readyz.clone());
        async move {
            let mut last = (0, String::new());
            for _ in 0..300 {
                if let Ok(r) = plain.get(&readyz).send().await {
                    last = (r.status().as_u16(), r.text().await.unwrap_or_default());
                    if last.0 == want.0 && last.1.contains(want.1) {
                        return Ok(());
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            bail!("/readyz never answered {want:?}; last {last:?}")
        }
    };
    // Alive but not ready: no certificate yet.
    wait_for((503, "TLS certificate not loaded yet")).await?;
    assert_eq!(
        plain
            .get(format!("http://{metrics}/healthz"))
            .send()
            .await?
            .status(),
        200
    );
    // Certificates appear (as when cert-manager fills the Secret); lists still fail.
    make_certs(&cert_dir).await?;
    wait_for((503, "service account cache not synced yet")).await?;
    api.fail_lists(false);
    wait_for((200, "ok")).await?;
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), out.next_line())
        .await??
        .unwrap_or_default();
    assert!(line.contains("ready at https://127.0.0.1:"), "{line}");
    assert!(
        api.count("LIST") >= 2,
        "retried the failed list: {:?}",
        api.requests()
    );
    child.kill().await?;
    Ok(())
}

#[tokio::test]
async fn the_certificate_is_reloaded_when_the_files_change() -> Result<()> {
    let api = api().await;
    let wh = Webhook::start(&api, &[]).await?;
    let pod = labelled(json!({"serviceAccountName": "workload", "containers": [{"name": "c"}]}));
    wh.mutate(Some("apps"), &pod).await?;
    let https_port: u16 = wh.url.rsplit(':').next().unwrap().parse()?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{https_port}").parse()?;

    // A new CA and certificate (rotation), written over the old files.
    let fresh = tempfile::tempdir()?;
    make_certs(fresh.path()).await?;
    let new_client = trusting(&fresh.path().join("ca.crt"), addr)?;
    for f in ["tls.key", "tls.crt"] {
        std::fs::copy(fresh.path().join(f), wh.cert_dir.join(f))?;
    }
    wh.wait_metric("keyless_webhook_tls_reloads_total{result=\"ok\"} 1")
        .await?;
    let r = new_client
        .post(format!("{}/mutate-v1-pod", wh.url))
        .body(review_body(Some("apps"), &pod))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    // The old CA no longer verifies new connections.
    let old = trusting(&wh.cert_dir.join("ca.crt"), addr)?;
    assert!(old.get(format!("{}/healthz", wh.url)).send().await.is_err());

    // A broken pair is ignored; the current certificate keeps serving.
    std::fs::write(wh.cert_dir.join("tls.crt"), "not a certificate")?;
    wh.wait_metric("keyless_webhook_tls_reloads_total{result=\"error\"} 1")
        .await?;
    assert_eq!(
        new_client
            .get(format!("{}/readyz", wh.url))
            .send()
            .await?
            .status(),
        200
    );
    assert!(wh.stderr().contains("TLS certificate reloaded"));
    wh.stop().await
}

#[tokio::test]
async fn certs_command_prints_a_secret_and_a_configuration_with_the_ca_bundle() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let yaml = make_certs(dir.path()).await?;
    let ca = std::fs::read_to_string(dir.path().join("ca.crt"))?;
    let b64ca = base64::engine::general_purpose::STANDARD.encode(&ca);
    assert!(
        yaml.contains("kind: Secret") && yaml.contains("type: kubernetes.io/tls"),
        "{yaml}"
    );
    assert!(
        yaml.contains("kind: MutatingWebhookConfiguration"),
        "{yaml}"
    );
    assert!(yaml.contains(&format!("caBundle: {b64ca}")), "{yaml}");
    use std::os::unix::fs::PermissionsExt;
    for (f, mode) in [("ca.key", 0o600), ("tls.key", 0o600), ("tls.crt", 0o644)] {
        assert_eq!(
            std::fs::metadata(dir.path().join(f))?.permissions().mode() & 0o777,
            mode,
            "{f}"
        );
    }
    // A second run reuses the CA (the caBundle stays) and renews the serving certificate.
    let cert = std::fs::read_to_string(dir.path().join("tls.crt"))?;
    let again = make_certs(dir.path()).await?;
    assert!(again.contains(&format!("caBundle: {b64ca}")));
    assert_ne!(std::fs::read_to_string(dir.path().join("tls.crt"))?, cert);
    Ok(())
}

#[tokio::test]
async fn serviceaccount_manifest_and_jwks_helpers() -> Result<()> {
    let out = keyless()
        .args([
            "serviceaccount",
            "manifest",
            "--name",
            "wl",
            "--namespace",
            "apps",
            "--client-id",
            CLIENT,
            "--tenant-id",
            TENANT,
            "--token-expiration",
            "24h",
        ])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    assert_eq!(
        text,
        format!(
            "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: wl\n  namespace: apps\n  annotations:\n    azure.workload.identity/client-id: {CLIENT}\n    azure.workload.identity/tenant-id: {TENANT}\n    azure.workload.identity/service-account-token-expiration: '86400'\n"
        )
    );
    for bad in [
        vec!["--client-id", "nope"],
        vec!["--client-id", CLIENT, "--token-expiration", "30m"],
    ] {
        let out = keyless()
            .args(["serviceaccount", "manifest", "--name", "wl"])
            .args(&bad)
            .output()
            .await?;
        assert!(!out.status.success(), "{bad:?}");
    }

    // JWKS from openssl-made keys: the kid is base64url(SHA-256(DER SPKI)), as the
    // kube-apiserver computes it; private and public files of one key give one entry.
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let sh = |script: &str| {
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(d)
            .status()
            .unwrap();
        assert!(st.success(), "{script}");
    };
    sh(
        "openssl genrsa -out rsa.key 2048 2>/dev/null && openssl rsa -in rsa.key -pubout -out rsa.pub 2>/dev/null",
    );
    sh(
        "openssl ecparam -name prime256v1 -genkey -noout -out ec.key && openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null",
    );
    let kid = |pubfile: &str| {
        let der = std::process::Command::new("openssl")
            .args(["pkey", "-pubin", "-in", pubfile, "-outform", "DER"])
            .current_dir(d)
            .output()
            .unwrap()
            .stdout;
        use openssl_sha256::digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest(&der))
    };
    let out = keyless()
        .args([
            "jwks",
            "--public-key",
            "rsa.pub",
            "--public-key",
            "rsa.key",
            "--public-key",
            "ec.key",
            "--output-file",
            "jwks.json",
        ])
        .current_dir(d)
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jwks: Value = serde_json::from_slice(&std::fs::read(d.join("jwks.json"))?)?;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{jwks}");
    assert_eq!(keys[0]["kid"], kid("rsa.pub"));
    assert_eq!(
        (
            keys[0]["kty"].as_str(),
            keys[0]["alg"].as_str(),
            keys[0]["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert_eq!(keys[1]["kid"], kid("ec.pub"));
    assert_eq!(
        (keys[1]["crv"].as_str(), keys[1]["alg"].as_str()),
        (Some("P-256"), Some("ES256"))
    );
    Ok(())
}

/// Issue 15: `keyless serviceaccount manifest` with a managed-identity endpoint mode
/// prints the ServiceAccount (unchanged: the comments are no part of it) and, as comments,
/// the pod template fragment. That fragment, uncommented, is valid YAML, and a pod made
/// from it is mutated by the running webhook into the mode it names, on the port given.
#[tokio::test]
async fn serviceaccount_manifest_prints_the_pod_template_of_each_identity_endpoint_mode()
-> Result<()> {
    let api = api().await;
    let wh = Webhook::start(&api, &["--imds-image", "registry.example/keyless:9"]).await?;
    let cases: [(&[&str], &str, u16); 4] = [
        (&["--managed-identity-endpoint"], "mi", 8000),
        (
            &[
                "--managed-identity-endpoint",
                "--proxy-sidecar-port",
                "8123",
            ],
            "mi-port",
            8123,
        ),
        (&["--inject-proxy-sidecar"], "proxy", 8000),
        (
            &["--inject-proxy-sidecar", "--proxy-sidecar-port", "9000"],
            "proxy-port",
            9000,
        ),
    ];
    for (flags, name, port) in cases {
        let out = keyless()
            .args(["serviceaccount", "manifest", "--name", name])
            .args(["--namespace", "apps", "--client-id", CLIENT])
            .args(flags)
            .output()
            .await?;
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)?;
        let sa: Value = serde_yaml_ng::from_str(&text)?;
        assert_eq!(
            sa,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
                "name": name, "namespace": "apps",
                "annotations": {"azure.workload.identity/client-id": CLIENT}}}),
            "{flags:?}"
        );
        let fragment: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .map(|l| format!("{l}\n"))
            .collect();
        let template: Value = serde_yaml_ng::from_str(&fragment)?;
        assert_eq!(template["spec"]["serviceAccountName"], name, "{text}");
        let proxy = flags.contains(&"--inject-proxy-sidecar");
        assert!(
            text.contains(if proxy { "NET_ADMIN" } else { "no privilege" }),
            "{text}"
        );

        api.create(
            "apps",
            name,
            &[("azure.workload.identity/client-id", CLIENT)],
        );
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": template["metadata"]["labels"],
                         "annotations": template["metadata"]["annotations"]},
            "spec": {"serviceAccountName": name, "containers": [{"name": "app", "image": "app"}]},
        });
        let mutated = wh.mutate(Some("apps"), &pod).await?;
        let env_of = |c: &Value, var: &str| {
            c["env"].as_array().and_then(|e| {
                e.iter()
                    .find(|v| v["name"] == var)
                    .and_then(|v| v["value"].as_str().map(str::to_owned))
            })
        };
        let inits = mutated["spec"]["initContainers"].as_array().unwrap();
        let names: Vec<&str> = inits.iter().filter_map(|c| c["name"].as_str()).collect();
        let app = &mutated["spec"]["containers"][0];
        assert_eq!(env_of(app, "AZURE_CLIENT_ID").as_deref(), Some(CLIENT));
        if proxy {
            assert_eq!(names, ["azwi-proxy-init", "azwi-proxy"], "{mutated}");
            assert_eq!(
                env_of(&inits[0], "PROXY_PORT"),
                Some(port.to_string()),
                "{mutated}"
            );
            assert_eq!(env_of(app, "IDENTITY_ENDPOINT"), None, "{mutated}");
        } else {
            assert_eq!(names, ["keyless-imds"], "{mutated}");
            assert_eq!(inits[0]["image"], "registry.example/keyless:9");
            assert_eq!(inits[0]["restartPolicy"], "Always");
            assert_eq!(
                env_of(app, "IDENTITY_ENDPOINT"),
                Some(format!("http://127.0.0.1:{port}/msi/token")),
                "{mutated}"
            );
            let header = env_of(app, "IDENTITY_HEADER").unwrap();
            assert_eq!(env_of(&inits[0], "IDENTITY_HEADER"), Some(header));
        }
        assert!(
            inits
                .last()
                .unwrap()
                .to_string()
                .contains(&format!("127.0.0.1:{port}")),
            "{mutated}"
        );
    }

    // The port needs a mode; the two modes exclude each other; a port is 1–65535.
    for bad in [
        &["--proxy-sidecar-port", "9000"][..],
        &["--managed-identity-endpoint", "--inject-proxy-sidecar"],
        &["--inject-proxy-sidecar", "--proxy-sidecar-port", "0"],
        &[
            "--managed-identity-endpoint",
            "--proxy-sidecar-port",
            "65536",
        ],
    ] {
        let out = keyless()
            .args([
                "serviceaccount",
                "manifest",
                "--name",
                "wl",
                "--client-id",
                CLIENT,
            ])
            .args(bad)
            .output()
            .await?;
        assert!(!out.status.success(), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
    wh.stop().await
}

/// SHA-256 for the test's own kid computation (independent of the code under test).
mod openssl_sha256 {
    pub fn digest(data: &[u8]) -> Vec<u8> {
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-binary"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(data)?;
                c.wait_with_output()
            })
            .unwrap();
        out.stdout
    }
}

/// Issue 12 §5: reviews naming a ServiceAccount that does not exist cost one API-server
/// GET per account and negative-cache window, not one per review; a watch event adding
/// the account ends the window at once. And reviews naming attacker-chosen namespaces
/// cannot grow the metrics without bound.
#[tokio::test]
async fn missing_service_accounts_are_remembered_and_namespace_series_are_bounded() -> Result<()> {
    let api = api().await;
    let wh = Webhook::start(&api, &[]).await?;
    let pod = |sa: &str| labelled(json!({"serviceAccountName": sa, "containers": [{"name": "c"}]}));
    for _ in 0..50 {
        let r = wh.review(Some("apps"), &pod("ghost")).await?;
        assert_eq!(
            r["status"]["message"],
            "serviceaccounts \"ghost\" not found"
        );
    }
    assert_eq!(
        api.count("GET apps/ghost"),
        1,
        "50 reviews, one read: {:?}",
        api.requests()
    );
    wh.wait_metric("keyless_webhook_serviceaccount_direct_reads_total{result=\"known_absent\"} 49")
        .await?;
    // The account is created: the watch event ends the negative entry, the next review
    // mutates without waiting for the window.
    api.create(
        "apps",
        "ghost",
        &[("azure.workload.identity/client-id", "now-here")],
    );
    let mut mutated = false;
    for _ in 0..100 {
        let r = wh.review(Some("apps"), &pod("ghost")).await?;
        if r["allowed"] == true && r.get("patch").is_some() {
            mutated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(mutated, "the created account was used within 2 s");

    // 600 namespaces (each review refused: no such account there): at most the bound
    // gets series of its own, the rest share one.
    for i in 0..600 {
        wh.review(Some(&format!("ns-{i}")), &pod("workload"))
            .await?;
    }
    let text = wh.metrics().await?;
    let namespaces: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("keyless_webhook_mutation_duration_seconds_count"))
        .filter_map(|l| l.split("namespace=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        namespaces.len() <= 501 && namespaces.contains("_other"),
        "{} namespace series",
        namespaces.len()
    );
    wh.stop().await
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_cut_off() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let api = api().await;
    let wh = Webhook::start(&api, &[]).await?;
    let https_port: u16 = wh.url.rsplit(':').next().unwrap().parse()?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(wh.cert_dir.join("ca.crt"))? {
        roots.add(cert?)?;
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", https_port)).await?;
    let host = wh
        .url
        .trim_start_matches("https://")
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap();
    let name = ServerName::try_from(host)?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    // Half a request head, then nothing: the header timeout (10 s) closes it. Without
    // it the webhook would hold the connection (and a task) for as long as the client.
    tls.write_all(b"POST /mutate-v1-pod HTTP/1.1\r\nHost: webhook\r\n")
        .await?;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the webhook held a trickling connection for 20 s"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "cut off too early: {:?}",
        started.elapsed()
    );
    wh.stop().await
}
