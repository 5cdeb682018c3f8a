//! Soak: a bounded, loopback-only mixed load against the release `keyless serve` for a
//! set time — token exchanges with unique assertions, vault secret reads, management
//! writes that create and delete, and hostile traffic from a second loopback address
//! (garbage assertions for invented clients, forged bearer tokens, oversized bodies,
//! requests for unknown tenants, half-sent request heads) — sampling the server's
//! resident memory, open file descriptors and database size. After the warm-up they
//! must stay flat (within 10%), and legitimate requests must not fail.
//!
//! Run: `./scripts/soak.sh [SECONDS]` (default 600). Not a CI test: it takes minutes
//! and its figures depend on the machine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyless_jose::{Alg, SigningKey};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Child;

#[path = "support/mod.rs"]
mod support;

const IDENTITIES: usize = 20;
const AUDIENCE: &str = "api://AzureADTokenExchange";
const ISSUER: &str = "https://soak-issuer.invalid/cluster";
/// The hostile traffic's source: another loopback address, so its failures are
/// counted against it and not against the legitimate clients (as on a real network).
const HOSTILE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Counters by kind of traffic.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    /// A legitimate request that did not succeed, or any 5xx, or a transport error on
    /// legitimate traffic: these must stay 0.
    unexpected: AtomicU64,
    hostile: AtomicU64,
    hostile_throttled: AtomicU64,
    /// Why requests counted as unexpected: kind and status (or transport error).
    reasons: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Counts {
    fn unexpected(&self, why: String) {
        self.unexpected.fetch_add(1, Ordering::Relaxed);
        *self.reasons.lock().unwrap().entry(why).or_insert(0) += 1;
    }

    fn get(&self) -> (u64, u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.unexpected.load(Ordering::Relaxed),
            self.hostile.load(Ordering::Relaxed),
            self.hostile_throttled.load(Ordering::Relaxed),
        )
    }
}

async fn start_server(dir: &Path) -> (Child, String) {
    let data_dir = dir.to_str().unwrap();
    support::start(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--data-dir",
        data_dir,
        // A small sign-in log cap and frequent housekeeping: the soak checks that the
        // log stays bounded, which at the defaults (a million rows) takes hours.
        "--signin-log-max-rows",
        "20000",
        "--housekeeping-interval",
        "10",
    ])
    .await
}

/// Bytes of the SQLite write-ahead log.
fn wal_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("keyless.db-wal")).map_or(0, |m| m.len())
}

/// Resident memory (KiB), open file descriptors, database bytes (with its WAL).
fn sample(pid: u32, dir: &Path) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    let db = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("keyless.db"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    (rss, fds, db)
}

fn client(
    ca: &Path,
    local: Option<IpAddr>,
    resolve: Option<(&str, SocketAddr)>,
) -> reqwest::Client {
    let certs = reqwest::Certificate::from_pem_bundle(&std::fs::read(ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only(certs)
        .timeout(Duration::from_secs(30))
        .local_address(local);
    if let Some((host, addr)) = resolve {
        b = b.resolve(host, addr);
    }
    b.build().unwrap()
}

struct Setup {
    authority: String,
    tenant: String,
    sub: String,
    admin_bearer: String,
    clients: Vec<String>,
    vault_url: String,
    vault_bearer: String,
}

async fn setup(
    http: &reqwest::Client,
    authority: &str,
    dir: &Path,
    key: &SigningKey,
    port: u16,
) -> Setup {
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let tenant = admin["tenantId"].as_str().unwrap().to_string();
    let sub = admin["subscriptionId"].as_str().unwrap().to_string();
    let token = |scope: String| {
        let form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", admin["clientId"].as_str().unwrap().to_string()),
            (
                "client_secret",
                admin["clientSecret"].as_str().unwrap().to_string(),
            ),
            ("scope", scope),
        ];
        let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
        async move {
            let v: Value = http
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["access_token"].as_str().unwrap().to_string()
        }
    };
    let admin_bearer = token(format!("{authority}/.default")).await;
    let put = |path: String, body: Value| {
        let url = format!("{authority}{path}");
        let bearer = admin_bearer.clone();
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
        "/providers/Keyless/trustedIssuers/soak?api-version=2024-01-01".into(),
        json!({"properties": {"issuer": ISSUER, "jwks": {"keys": [key.public_jwk()]}}}),
    )
    .await;
    put(
        format!("/subscriptions/{sub}/resourcegroups/soak?api-version=2021-04-01"),
        json!({"location": "local"}),
    )
    .await;
    let mut clients = Vec::new();
    let mut principals = Vec::new();
    for i in 0..IDENTITIES {
        let id = put(format!("/subscriptions/{sub}/resourceGroups/soak/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{i}?api-version=2023-01-31"), json!({"location": "local"})).await;
        put(format!("/subscriptions/{sub}/resourceGroups/soak/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{i}/federatedIdentityCredentials/fic?api-version=2023-01-31"),
            json!({"properties": {"issuer": ISSUER, "subject": format!("system:serviceaccount:soak:sa{i}"), "audiences": [AUDIENCE]}})).await;
        clients.push(id["properties"]["clientId"].as_str().unwrap().to_string());
        principals.push(
            id["properties"]["principalId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let vault = format!(
        "/subscriptions/{sub}/resourceGroups/soak/providers/Microsoft.KeyVault/vaults/soakvault"
    );
    put(
        format!("{vault}?api-version=2023-07-01"),
        json!({"location": "local"}),
    )
    .await;
    // Key Vault Secrets User for identity 0 on the vault.
    put(format!("{vault}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01", uuid::Uuid::new_v4()),
        json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"), "principalId": principals[0], "principalType": "ServicePrincipal"}})).await;
    let vault_url = format!("https://soakvault.vault.localhost:{port}");
    let admin_vault = token(format!("https://vault.localhost:{port}/.default")).await;
    let vh = client(
        &dir.join("ca.pem"),
        None,
        Some((
            "soakvault.vault.localhost",
            SocketAddr::from(([127, 0, 0, 1], port)),
        )),
    );
    let r = vh
        .put(format!("{vault_url}/secrets/soak?api-version=7.6"))
        .bearer_auth(&admin_vault)
        .json(&json!({"value": "s3cret"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // The workload's token for the vault, as an SDK caches it.
    let form = exchange_form(
        key,
        &clients[0],
        0,
        &format!("https://vault.localhost:{port}/.default"),
    );
    let v: Value = http
        .post(format!("{authority}/{tenant}/oauth2/v2.0/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vault_bearer = v["access_token"].as_str().expect("vault token").to_string();
    Setup {
        authority: authority.to_string(),
        tenant,
        sub,
        admin_bearer,
        clients,
        vault_url,
        vault_bearer,
    }
}

fn exchange_form(
    key: &SigningKey,
    client_id: &str,
    i: usize,
    scope: &str,
) -> Vec<(&'static str, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = key
        .sign_jwt(
            "JWT",
            &json!({"iss": ISSUER, "sub": format!("system:serviceaccount:soak:sa{i}"), "aud": [AUDIENCE],
                    "iat": now, "nbf": now, "exp": now + 3600, "jti": uuid::Uuid::new_v4().to_string()}),
        )
        .unwrap();
    vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", client_id.into()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ),
        ("client_assertion", assertion),
        ("scope", scope.into()),
    ]
}

/// Counts a legitimate request: success is `ok(status)`.
fn record(
    counts: &Counts,
    kind: &str,
    resp: Result<reqwest::Response, reqwest::Error>,
    ok: impl Fn(reqwest::StatusCode) -> bool,
) {
    match resp {
        Ok(r) if ok(r.status()) => {
            counts.ok.fetch_add(1, Ordering::Relaxed);
        }
        Ok(r) => counts.unexpected(format!("{kind}: {}", r.status())),
        Err(e) => counts.unexpected(format!("{kind}: {e}")),
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = arg("--seconds", 600);
    // The sign-in log fills to its cap and the database file stops growing within a
    // few minutes at this load: measure flatness after that.
    let warmup = arg("--warmup", seconds * 2 / 5);
    let every = arg("--sample", (seconds / 10).clamp(5, 60));

    let dir = tempfile::tempdir().unwrap();
    let (server, authority) = start_server(dir.path()).await;
    let pid = server.id().unwrap();
    let port: u16 = authority.rsplit(':').next().unwrap().parse().unwrap();
    let ca = dir.path().join("ca.pem");
    let http = client(&ca, None, None);
    let key = Arc::new(SigningKey::generate(Alg::RS256, "soak-1".into()).unwrap());
    let s = Arc::new(setup(&http, &authority, dir.path(), &key, port).await);
    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();

    // Exchanges: unique assertions, identities in turn.
    for w in 0..3 {
        let (http, s, key, counts) = (http.clone(), s.clone(), key.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let url = format!("{}/{}/oauth2/v2.0/token", s.authority, s.tenant);
            let scope = format!("{}/.default", s.authority);
            let mut n = w;
            while Instant::now() < deadline {
                let i = n % IDENTITIES;
                n += 3;
                let form = exchange_form(&key, &s.clients[i], i, &scope);
                let r = http.post(&url).form(&form).send().await;
                record(&counts, "exchange", r, |st| st == 200);
            }
        }));
    }
    // Vault reads with the workload's cached token.
    for _ in 0..2 {
        let (s, counts) = (s.clone(), counts.clone());
        let vh = client(
            &ca,
            None,
            Some((
                "soakvault.vault.localhost",
                SocketAddr::from(([127, 0, 0, 1], port)),
            )),
        );
        tasks.push(tokio::spawn(async move {
            let url = format!("{}/secrets/soak?api-version=7.6", s.vault_url);
            while Instant::now() < deadline {
                let r = vh.get(&url).bearer_auth(&s.vault_bearer).send().await;
                record(&counts, "vault read", r, |st| st == 200);
                // An application rereading its secret, not a flood: the per-principal
                // limit (1,000/s) would rightly throttle an unpaced loop.
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        }));
    }
    // Management writes: a credential created and deleted, an identity created and
    // deleted, paced like an automation loop.
    {
        let (http, s, counts) = (http.clone(), s.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let base = format!("{}/subscriptions/{}/resourceGroups/soak/providers/Microsoft.ManagedIdentity/userAssignedIdentities", s.authority, s.sub);
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let fic = format!("{base}/id{}/federatedIdentityCredentials/extra?api-version=2023-01-31", n % IDENTITIES as u64);
                let body = json!({"properties": {"issuer": ISSUER, "subject": format!("system:serviceaccount:soak:extra{n}"), "audiences": [AUDIENCE]}});
                let r = http.put(&fic).bearer_auth(&s.admin_bearer).json(&body).send().await;
                record(&counts, "credential put", r, |st| st.is_success());
                let r = http.delete(&fic).bearer_auth(&s.admin_bearer).send().await;
                record(&counts, "credential delete", r, |st| st.is_success());
                let tmp = format!("{base}/tmp{}?api-version=2023-01-31", n % 7);
                let r = http.put(&tmp).bearer_auth(&s.admin_bearer).json(&json!({"location": "local"})).send().await;
                record(&counts, "identity put", r, |st| st.is_success());
                let r = http.delete(&tmp).bearer_auth(&s.admin_bearer).send().await;
                record(&counts, "identity delete", r, |st| st.is_success());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    // Hostile traffic from another address.
    {
        let (s, counts) = (s.clone(), counts.clone());
        let bad = client(&ca, Some(IpAddr::V4(HOSTILE)), None);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let resp = match n % 5 {
                    // Garbage assertion for an invented client.
                    0 => {
                        bad.post(format!("{}/{}/oauth2/v2.0/token", s.authority, s.tenant))
                            .form(&[
                                ("grant_type", "client_credentials"),
                                ("client_id", &uuid::Uuid::new_v4().to_string()),
                                (
                                    "client_assertion_type",
                                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                ),
                                ("client_assertion", &format!("eyJhbGciOiJSUzI1NiJ9.{n}.sig")),
                                ("scope", "https://x/.default"),
                            ])
                            .send()
                            .await
                    }
                    // An unknown tenant.
                    1 => {
                        bad.post(format!(
                            "{}/{}/oauth2/v2.0/token",
                            s.authority,
                            uuid::Uuid::new_v4()
                        ))
                        .form(&[("grant_type", "client_credentials"), ("client_id", "x")])
                        .send()
                        .await
                    }
                    // A forged bearer token on the management API.
                    2 => {
                        bad.get(format!(
                            "{}/subscriptions/{}?api-version=2022-12-01",
                            s.authority, s.sub
                        ))
                        .bearer_auth(format!("{}x", &s.admin_bearer[..s.admin_bearer.len() - 4]))
                        .send()
                        .await
                    }
                    // An oversized body.
                    3 => {
                        bad.post(format!("{}/{}/oauth2/v2.0/token", s.authority, s.tenant))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(vec![b'a'; 200 * 1024])
                            .send()
                            .await
                    }
                    // Half a request head, then gone.
                    _ => {
                        let sock = tokio::net::TcpSocket::new_v4().unwrap();
                        let _ = sock.bind(SocketAddr::new(IpAddr::V4(HOSTILE), 0));
                        if let Ok(mut tcp) =
                            sock.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
                        {
                            let _ = tcp.write_all(b"\x16\x03\x01\x00").await;
                        }
                        counts.hostile.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                match resp {
                    Ok(r) if r.status() == 429 => {
                        counts.hostile_throttled.fetch_add(1, Ordering::Relaxed);
                        counts.hostile.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) if r.status().is_client_error() => {
                        counts.hostile.fetch_add(1, Ordering::Relaxed);
                    }
                    // A 2xx or 5xx to hostile input is a finding; so is a hang.
                    Ok(r) => counts.unexpected(format!("hostile {}: {}", n % 5, r.status())),
                    // A hang is a finding.
                    Err(e) if e.is_timeout() => {
                        counts.unexpected(format!("hostile {}: {e}", n % 5));
                    }
                    // The server closes a connection after an oversized body (413) or
                    // a timeout, and a pooled connection can die under the next
                    // request: for a hostile client that is the server doing its job.
                    Err(_) => {
                        counts.hostile.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    println!("soak: {seconds} s, warm-up {warmup} s, sampling every {every} s (server pid {pid})");
    println!(
        "{:>6} {:>10} {:>6} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "t(s)",
        "RSS(KiB)",
        "fds",
        "db(bytes)",
        "wal(bytes)",
        "ok",
        "hostile",
        "throttled",
        "unexpected"
    );
    let started = Instant::now();
    let mut baseline = None;
    let last = loop {
        let t = started.elapsed().as_secs();
        let (rss, fds, db) = sample(pid, dir.path());
        let (ok, unexpected, hostile, throttled) = counts.get();
        let wal = wal_bytes(dir.path());
        println!(
            "{t:>6} {rss:>10} {fds:>6} {db:>12} {wal:>10} {ok:>10} {hostile:>10} {throttled:>10} {unexpected:>10}"
        );
        if baseline.is_none() && t >= warmup {
            baseline = Some((rss, fds, db));
        }
        if Instant::now() >= deadline {
            break (rss, fds, db);
        }
        tokio::time::sleep(
            Duration::from_secs(every).min(deadline - Instant::now() + Duration::from_millis(100)),
        )
        .await;
    };
    for t in tasks {
        let _ = t.await;
    }
    // What the server's bounded structures hold at the end.
    if let Ok(r) = http
        .get(format!("{authority}/metrics"))
        .bearer_auth(&s.admin_bearer)
        .send()
        .await
    {
        let text = r.text().await.unwrap_or_default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            println!("  {line}");
        }
    }
    let (ok, unexpected, hostile, throttled) = counts.get();
    let base = baseline.unwrap_or(last);
    let growth = |a: u64, b: u64| {
        if a == 0 {
            0.0
        } else {
            (b as f64 - a as f64) / a as f64 * 100.0
        }
    };
    let (g_rss, g_fds, g_db) = (
        growth(base.0, last.0),
        growth(base.1, last.1),
        growth(base.2, last.2),
    );
    println!();
    println!(
        "after warm-up → end: RSS {:+.1}%, fds {:+.1}%, database {:+.1}%",
        g_rss, g_fds, g_db
    );
    println!(
        "requests: {ok} legitimate ok, {unexpected} unexpected, {hostile} hostile ({throttled} throttled with 429)"
    );
    for (why, n) in counts.reasons.lock().unwrap().iter() {
        println!("  unexpected: {n} × {why}");
    }
    let flat = g_rss <= 10.0 && g_fds <= 10.0 && g_db <= 10.0;
    if flat && unexpected == 0 {
        println!("verdict: FLAT (within 10% after warm-up, no unexpected failures)");
    } else {
        println!("verdict: NOT FLAT or unexpected failures");
        std::process::exit(1);
    }
}
