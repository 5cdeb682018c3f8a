//! Benchmark: Key Vault secret reads (`GET /secrets/{name}`) over keep-alive HTTPS
//! against the real `keyless serve`, RBAC checked: the server's CPU per read, with a
//! new bearer token on every read and with one token repeated (an SDK's pipeline),
//! each against the cost of one ES256 token verification measured in the same run.
//!
//! Run: `./scripts/bench.sh vault_read` (release). Loopback only; bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::{Value, json};
#[path = "support/mod.rs"]
mod support;
use support::{Row, cpu_split};

const READS: usize = 10_000;
const FRESH_TOKENS: usize = 8_000;
const CONCURRENCY: usize = 8;

/// Server CPU per request, in user space and in the kernel, for `n` GETs of `url`, the
/// i-th with `token(i)`.
async fn measure(
    pid: u32,
    http: &reqwest::Client,
    url: &str,
    tokens: &[String],
    n: usize,
) -> (f64, f64) {
    let (user, system) = cpu_split(pid);
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let (http, url, tokens) = (http.clone(), url.to_string(), tokens.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                let r = http
                    .get(&url)
                    .bearer_auth(&tokens[i % tokens.len()])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
                i += CONCURRENCY;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (user_after, system_after) = cpu_split(pid);
    (
        (user_after - user) / n as f64,
        (system_after - system) / n as f64,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--log-format", "json"];
    args.extend(["--data-dir", data_dir]);
    args.extend(support::LIMITS_OFF);
    let (child, authority) = support::start_pinned(0, &args).await;
    let pid = child.id().unwrap();
    let port: u16 = authority.rsplit(':').next().unwrap().parse().unwrap();
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("admin.json")).unwrap()).unwrap();
    let pem = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let host = "benchvault.vault.localhost";
    let http = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .resolve(host, SocketAddr::from(([127, 0, 0, 1], port)))
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let tenant = admin["tenantId"].as_str().unwrap();
    let sub = admin["subscriptionId"].as_str().unwrap();
    let token = {
        let (http, admin) = (http.clone(), std::sync::Arc::new(admin.clone()));
        let authority = authority.clone();
        move |scope: String| {
            let (http, admin, authority) = (http.clone(), admin.clone(), authority.clone());
            async move { support::admin_client_token(&http, &authority, &admin, &scope).await }
        }
    };
    let arm = token(format!("{authority}/.default")).await;
    for (path, body) in [
        (
            format!("/subscriptions/{sub}/resourcegroups/bench?api-version=2021-04-01"),
            json!({"location": "local"}),
        ),
        (
            format!(
                "/subscriptions/{sub}/resourceGroups/bench/providers/Microsoft.KeyVault/vaults/benchvault?api-version=2023-07-01"
            ),
            json!({"location": "local"}),
        ),
    ] {
        let r = http
            .put(format!("{authority}{path}"))
            .bearer_auth(&arm)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let scope = format!("https://vault.localhost:{port}/.default");
    let vault = format!("https://{host}:{port}");
    let first = token(scope.clone()).await;
    let r = http
        .put(format!("{vault}/secrets/bench?api-version=7.6"))
        .bearer_auth(&first)
        .json(&json!({"value": "s3cret"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let url = format!("{vault}/secrets/bench?api-version=7.6");
    let started = Instant::now();
    let mut minting = Vec::new();
    for _ in 0..CONCURRENCY {
        let (token, scope) = (token.clone(), scope.clone());
        minting.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..FRESH_TOKENS / CONCURRENCY {
                out.push(token(scope.clone()).await);
            }
            out
        }));
    }
    let mut fresh = Vec::with_capacity(FRESH_TOKENS);
    for m in minting {
        fresh.extend(m.await.unwrap());
    }
    let unique: std::collections::HashSet<&String> = fresh.iter().collect();
    assert_eq!(unique.len(), fresh.len(), "every token is a new one");
    eprintln!(
        "{} tokens in {:.1} s",
        fresh.len(),
        started.elapsed().as_secs_f64()
    );
    // From here on this process stays off the server's core.
    support::pin_self(1);
    // Warm up connections and caches.
    measure(pid, &http, &url, &fresh[..1], 500).await;
    let (same_user, same_system) = measure(pid, &http, &url, &fresh[..1], READS).await;
    let same = same_user + same_system;
    // KEYLESS_BENCH_PERF=FILE: a profile of the server while every read has a new token.
    let perf = support::perf_record(pid);
    let (distinct_user, distinct_system) = measure(pid, &http, &url, &fresh, FRESH_TOKENS).await;
    let distinct = distinct_user + distinct_system;
    if let Some(p) = perf {
        support::interrupt_and_wait(p);
    }
    // The smallest HTTPS request over the same client, for its user-space cost.
    let (floor_user, _) = measure(
        pid,
        &http,
        &format!("{authority}/healthz"),
        &fresh[..1],
        READS,
    )
    .await;

    // One ES256 verification of a token like these, in process.
    let signer = keyless_jose::SigningKey::generate(keyless_jose::Alg::ES256, "k".into()).unwrap();
    let verifier = keyless_jose::VerifyingKey::from_jwk(&signer.public_jwk()).unwrap();
    let sample = signer
        .sign_jwt(
            "JWT",
            &json!({"aud": scope, "tid": tenant, "oid": "o", "exp": 1}),
        )
        .unwrap();
    let verify = support::crypto_bound(7, 1000, |_| {
        let j = keyless_jose::UnverifiedJwt::parse(&sample, 16 * 1024).unwrap();
        j.verify(&verifier, &[keyless_jose::Alg::ES256]).unwrap();
    })
    .as_secs_f64();

    println!(
        "vault secret GET over keep-alive HTTPS, {CONCURRENCY} connections, RBAC checked, server on one core"
    );
    support::print_rows(&[
        Row::bound("one ES256 token verification (bound)", verify * 1e6, "µs"),
        Row::ratio(
            "vault CPU / secret GET, a new token each",
            distinct * 1e6,
            "µs",
            verify * 1e6,
            1.5,
        ),
        Row::ratio(
            "… of which user space (TLS, HTTP, verify, RBAC)",
            distinct_user * 1e6,
            "µs",
            verify * 1e6,
            1.5,
        ),
        Row::info(
            "… of which the kernel (syscalls, loopback delivery, client wake-up)",
            distinct_system * 1e6,
            "µs",
        ),
        Row::info(
            "user space of GET /healthz (HTTPS floor)",
            floor_user * 1e6,
            "µs",
        ),
        // What a server whose own code cost nothing beyond the verification would
        // spend per read here; when this misses, no change to the server reaches the
        // target over this transport.
        Row::ratio(
            "least possible: bound + kernel + HTTPS floor's user space",
            (verify + distinct_system + floor_user) * 1e6,
            "µs",
            verify * 1e6,
            1.5,
        ),
        Row::target(
            "vault CPU / secret GET, one token repeated",
            same * 1e6,
            "µs",
            30.0,
        ),
    ]);
}
