//! Benchmark: token exchanges over keep-alive HTTPS against the real `keyless serve`,
//! on loopback, with a projected-style RS256 assertion from `keyless dev-cluster`.
//!
//! Reports requests per second, and — the number the target is about — the server's
//! CPU time per exchange (from /proc: user + system time of the server process), as
//! exchanges per CPU-second ("what one core sustains") and as a ratio to the raw cost
//! of one RS256 verify + one ES256 sign measured in the same run. Target: thousands of
//! exchanges per CPU-second, within 2x of the raw crypto.
//!
//! Run: `cargo bench -p keyless --bench http_exchange` (release build). Loopback only;
//! bounded: a fixed number of requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark

use std::time::{Duration, Instant};

use serde_json::{Value, json};
#[path = "support/mod.rs"]
mod support;
use support::{cpu_seconds, start};

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 16;

fn client(ca: &std::path::Path) -> reqwest::Client {
    let certs = reqwest::Certificate::from_pem_bundle(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap()
}

fn raw_crypto_cost(assertion: &str, jwks: &Value) -> Duration {
    let set: keyless_jose::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let key = keyless_jose::VerifyingKey::from_jwk(&set.keys[0]).unwrap();
    let signer = keyless_jose::SigningKey::generate(keyless_jose::Alg::ES256, "k".into()).unwrap();
    let claims = json!({"aud": "https://localhost/", "iss": "https://localhost/t/", "oid": "o", "tid": "t", "exp": 1, "iat": 1, "nbf": 1});
    let n = 3000;
    let start = Instant::now();
    for _ in 0..n {
        let j = keyless_jose::UnverifiedJwt::parse(assertion, 16 * 1024).unwrap();
        j.verify(&key, &[keyless_jose::Alg::RS256]).unwrap();
        std::hint::black_box(signer.sign_jwt("JWT", &claims).unwrap());
    }
    start.elapsed() / n
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("cluster");
    let server_dir = dir.path().join("server");
    let (_cluster, issuer) = start(&[
        "dev-cluster",
        "--data-dir",
        cluster_dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let ca = cluster_dir.join("ca.pem");
    let mut args = vec![
        "serve",
        "--data-dir",
        server_dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--allow-private-issuers",
        "--trust-ca",
        ca.to_str().unwrap(),
        "--log-format",
        "json",
        // One client at thousands of requests a second: what is measured is the
        // exchange, not the limits.
    ];
    args.extend(support::LIMITS_OFF);
    let (server, authority) = start(&args).await;
    let admin: Value =
        serde_json::from_slice(&std::fs::read(server_dir.join("admin.json")).unwrap()).unwrap();
    let http = client(&server_dir.join("ca.pem"));
    let tenant = admin["tenantId"].as_str().unwrap().to_string();
    let sub = admin["subscriptionId"].as_str().unwrap();
    let scope = format!("{authority}/.default");
    let token: Value = http
        .post(format!("{authority}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", admin["clientId"].as_str().unwrap()),
            ("client_secret", admin["clientSecret"].as_str().unwrap()),
            ("scope", &scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_string();
    let put = |path: String, body: Value| {
        let http = http.clone();
        let bearer = bearer.clone();
        let url = format!("{authority}{path}");
        async move {
            let r = http
                .put(url)
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            r.json::<Value>().await.unwrap()
        }
    };
    put(
        format!("/subscriptions/{sub}/resourcegroups/bench?api-version=2021-04-01"),
        json!({"location": "local"}),
    )
    .await;
    let identity = put(format!("/subscriptions/{sub}/resourceGroups/bench/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bench?api-version=2023-01-31"), json!({"location": "local"})).await;
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    put(
        format!("/subscriptions/{sub}/resourceGroups/bench/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bench/federatedIdentityCredentials/bench?api-version=2023-01-31"),
        json!({"properties": {"issuer": issuer, "subject": "system:serviceaccount:default:bench", "audiences": ["api://AzureADTokenExchange"]}}),
    ).await;
    let cluster_http = client(&ca);
    let minted: Value = cluster_http
        .post(format!("{issuer}/mint"))
        .json(&json!({"namespace": "default", "serviceAccount": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let assertion = minted["token"].as_str().unwrap().to_string();
    let jwks: Value = cluster_http
        .get(format!("{issuer}/openid/v1/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let form: Vec<(String, String)> = vec![
        ("grant_type".into(), "client_credentials".into()),
        ("client_id".into(), client_id),
        (
            "client_assertion_type".into(),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ),
        ("client_assertion".into(), assertion.clone()),
        ("scope".into(), scope),
    ];
    let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
    // Warm up: connections, issuer cache.
    for _ in 0..200 {
        let r = http.post(&url).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let pid = server.id().unwrap();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, url, form) = (http.clone(), url.clone(), form.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..REQUESTS / CONCURRENCY {
                let r = http.post(&url).form(&form).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = started.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let raw = raw_crypto_cost(&assertion, &jwks);
    let n = (REQUESTS / CONCURRENCY * CONCURRENCY) as f64;
    let per_exchange_cpu = cpu / n;
    println!(
        "exchanges                         : {n} over keep-alive HTTPS, {CONCURRENCY} connections, loopback"
    );
    println!(
        "throughput (wall, 2 shared cores) : {:>8.0} exchanges/s",
        n / wall.as_secs_f64()
    );
    println!(
        "server CPU per exchange           : {:>8.1} us  => {:>6.0} exchanges per CPU-second (one core)",
        per_exchange_cpu * 1e6,
        1.0 / per_exchange_cpu
    );
    println!(
        "raw RS256 verify + ES256 sign     : {:>8.1} us",
        raw.as_secs_f64() * 1e6
    );
    println!(
        "ratio server CPU / raw crypto     : {:>8.2}x (includes TLS, HTTP, form parsing, JSON)",
        per_exchange_cpu / raw.as_secs_f64()
    );
}
