//! Benchmark (issue 13, items 2 and 5): management writes and exchanges as the tenant
//! grows. For each N (default 1,000, 10,000 and 100,000; `KEYLESS_BENCH_SCALE=1000,10000`
//! for a shorter run) a fresh `keyless serve` (SQLite) is seeded with N identities with
//! one federated credential each, then restarted and measured:
//!
//! * start-up: from spawning the process to its `ready` line, with N identities to load;
//! * identity `PUT` and credential `PUT` latency (median, p99) over HTTPS, sequential;
//! * time from a new credential's 201 to the first successful exchange with it;
//! * resident memory per identity + credential (RSS above a server holding 10);
//! * exchange latency (median of sequential exchanges against random seeded identities)
//!   at 10 identities and at the largest N.
//!
//! Then, at the largest N, two replicas on one PostgreSQL database (the database from
//! `KEYLESS_TEST_POSTGRES_URL`, a role that may CREATEDB; skipped without it): start-up
//! of each, identity `PUT` latency on one, and the time from a credential's 201 on one
//! replica to the first successful exchange with it on the other (the change feed
//! applied incrementally), with the other checking every second (default: 30 s) whether
//! its feed missed a write, which it reloads for only then; and again while hand edits
//! in the database (never notified) make it reload its 100,000 identities every
//! second or two, so that the trials meet full reloads in progress.
//!
//! Seeding: the server bootstraps the database (tenant, admin, resource group) and is
//! stopped; the identities and credentials are then inserted with SQL in one
//! transaction (through the HTTP API 100,000 identities would take minutes), in the
//! rows' schema as the store writes them.
//!
//! The server runs on core 0 (`taskset`), this client on core 1.
//! Run: `scripts/bench.sh mgmt_scale` or `cargo bench -p keyless --bench mgmt_scale`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
#[path = "support/mod.rs"]
mod support;
use support::{Row, percentile, pin_self, start, start_pinned};

const WRITES: usize = 200;
const USABLE: usize = 20;
/// Credentials written on replica A and timed until usable on B.
const REPLICA_TRIALS: usize = 40;
const EXCHANGES: usize = 300;
/// Exchanges at each of 10 and N identities in the interleaved comparison.
const PAIRED: usize = 1_000;
const SUBJECT: &str = "system:serviceaccount:default:bench";
const MI_API: &str = "2023-01-31";

fn client(ca: &Path) -> reqwest::Client {
    let certs = reqwest::Certificate::from_pem_bundle(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .http1_only()
        .build()
        .unwrap()
}

fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn serve_args<'a>(dir: &'a str, ca: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "serve",
        "--data-dir",
        dir,
        "--listen",
        "127.0.0.1:0",
        "--allow-private-issuers",
        "--trust-ca",
        ca,
    ];
    args.extend(support::LIMITS_OFF);
    args
}

/// Inserts `n` identities in group `bench` with one credential each (issuer `issuer`,
/// subject [`SUBJECT`]); returns their client ids.
async fn seed(db: &Path, tenant: &str, sub: &str, issuer: &str, n: usize) -> Vec<String> {
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let pid = uuid::Uuid::new_v4().to_string();
        let cid = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO identities (principal_id, client_id, tenant_id, subscription_id, resource_group, name, location, tags, created_at)
             VALUES (?, ?, ?, ?, 'bench', ?, 'local', '{}', 1)",
        )
        .bind(&pid)
        .bind(&cid)
        .bind(tenant)
        .bind(sub)
        .bind(format!("seeded-{i}"))
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO federated_credentials (identity_principal_id, name, issuer, subject, audiences, expression, created_at, updated_at)
             VALUES (?, 'fic', ?, ?, '[\"api://AzureADTokenExchange\"]', NULL, 1, 1)",
        )
        .bind(&pid)
        .bind(issuer)
        .bind(SUBJECT)
        .execute(&mut *tx)
        .await
        .unwrap();
        clients.push(cid);
    }
    tx.commit().await.unwrap();
    // Closing the last connection checkpoints the write-ahead log into the database,
    // as a server that had been running for a while would have it.
    conn.close().await.unwrap();
    clients
}

/// Fresh projected tokens from the dev cluster.
async fn mint(http: &reqwest::Client, issuer: &str, n: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, url) = (http.clone(), format!("{issuer}/mint"));
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..n.div_ceil(4) {
                let minted: Value = http
                    .post(&url)
                    .json(&json!({"namespace": "default", "serviceAccount": "bench"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                out.push(minted["token"].as_str().unwrap().to_string());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

async fn exchange(
    http: &reqwest::Client,
    authority: &str,
    tenant: &str,
    client_id: &str,
    assertion: &str,
) -> u16 {
    let scope = format!("{authority}/.default");
    exchange_for(http, authority, &scope, tenant, client_id, assertion).await
}

/// An exchange at `authority` for a token for `scope`; the status.
async fn exchange_for(
    http: &reqwest::Client,
    authority: &str,
    scope: &str,
    tenant: &str,
    client_id: &str,
    assertion: &str,
) -> u16 {
    let r = http
        .post(format!("{authority}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let _ = r.bytes().await.unwrap();
    status
}

async fn timed_put(
    http: &reqwest::Client,
    authority: &str,
    bearer: &str,
    path: String,
    body: Value,
) -> Duration {
    let started = Instant::now();
    let r = http
        .put(format!("{authority}{path}"))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let _ = r.bytes().await.unwrap();
    started.elapsed()
}

/// The management path of identity `name` in group `bench`.
fn identity_path(sub: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/bench/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}?api-version={MI_API}"
    )
}

/// The management path of identity `name`'s credential `fic`.
fn credential_path(sub: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/bench/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}/federatedIdentityCredentials/fic?api-version={MI_API}"
    )
}

/// Creates identity `name` with a credential for [`SUBJECT`] through `authority`;
/// returns its client id once the credential's `PUT` has answered.
async fn identity_with_credential(
    http: &reqwest::Client,
    authority: &str,
    bearer: &str,
    sub: &str,
    issuer: &str,
    name: &str,
) -> String {
    let identity = support::put(
        http,
        authority,
        bearer,
        identity_path(sub, name),
        json!({"location": "local"}),
    )
    .await;
    let body = json!({"properties": {"issuer": issuer, "subject": SUBJECT, "audiences": ["api://AzureADTokenExchange"]}});
    timed_put(http, authority, bearer, credential_path(sub, name), body).await;
    identity["properties"]["clientId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What one N measured.
struct Scale {
    n: usize,
    startup: Duration,
    rss_kib: f64,
    identity_put: (Duration, Duration),
    credential_put: (Duration, Duration),
    usable: (Duration, Duration),
    exchange: Duration,
}

/// A measured server, kept running for the interleaved comparison.
struct Live {
    _server: tokio::process::Child,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    authority: String,
    tenant: String,
    clients: Vec<String>,
}

impl Live {
    /// One exchange for the `pick`-th seeded identity; its latency.
    async fn timed_exchange(&self, pick: u64, assertion: &str) -> Duration {
        let client_id = &self.clients[(pick % self.clients.len() as u64) as usize];
        let started = Instant::now();
        assert_eq!(
            exchange(
                &self.http,
                &self.authority,
                &self.tenant,
                client_id,
                assertion
            )
            .await,
            200
        );
        started.elapsed()
    }
}

async fn measure(
    n: usize,
    issuer: &str,
    cluster_http: &reqwest::Client,
    ca: &Path,
) -> (Scale, Live) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let ca_s = ca.to_str().unwrap().to_string();
    // Bootstrap, and the resource group the identities live in.
    let (tenant, sub) = {
        let (first, authority) = start(&serve_args(&data, &ca_s)).await;
        let http = client(&dir.path().join("ca.pem"));
        let (tenant, bearer, admin) = support::admin_token(&http, &authority, dir.path()).await;
        let sub = admin["subscriptionId"].as_str().unwrap().to_string();
        support::put(
            &http,
            &authority,
            &bearer,
            format!("/subscriptions/{sub}/resourcegroups/bench?api-version=2021-04-01"),
            json!({"location": "local"}),
        )
        .await;
        drop(first);
        (tenant, sub)
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // the killed process is gone
    let seeding = Instant::now();
    let clients = seed(&dir.path().join("keyless.db"), &tenant, &sub, issuer, n).await;
    eprintln!("N={n}: seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let spawned = Instant::now();
    let (server, authority) = start_pinned(0, &serve_args(&data, &ca_s)).await;
    let startup = spawned.elapsed();
    let pid = server.id().unwrap();
    let http = client(&dir.path().join("ca.pem"));
    let (tenant, bearer, _) = support::admin_token(&http, &authority, dir.path()).await;
    let assertions = mint(cluster_http, issuer, EXCHANGES + USABLE * 3 + 20).await;
    let mut assertions = assertions.into_iter();

    // Warm-up: connections, caches, the issuer's keys.
    for i in 0..10 {
        let a = assertions.next().unwrap();
        assert_eq!(
            exchange(&http, &authority, &tenant, &clients[i % clients.len()], &a).await,
            200
        );
    }
    let rss = rss_kib(pid);

    let mut id_lat = Vec::new();
    for i in 0..WRITES {
        id_lat.push(
            timed_put(
                &http,
                &authority,
                &bearer,
                identity_path(&sub, &format!("new-{i}")),
                json!({"location": "local"}),
            )
            .await,
        );
    }
    let mut fc_lat = Vec::new();
    for i in 0..WRITES {
        let body = json!({"properties": {"issuer": issuer, "subject": format!("system:serviceaccount:other:{i}"), "audiences": ["api://AzureADTokenExchange"]}});
        fc_lat.push(
            timed_put(
                &http,
                &authority,
                &bearer,
                credential_path(&sub, &format!("new-{i}")),
                body,
            )
            .await,
        );
    }

    // A new credential, then exchanges until one succeeds.
    let mut usable = Vec::new();
    for i in 0..USABLE {
        let name = format!("usable-{i}");
        let client_id =
            identity_with_credential(&http, &authority, &bearer, &sub, issuer, &name).await;
        let acknowledged = Instant::now();
        loop {
            let a = assertions.next().expect("enough assertions");
            if exchange(&http, &authority, &tenant, &client_id, &a).await == 200 {
                break;
            }
            assert!(
                acknowledged.elapsed() < Duration::from_secs(5),
                "never usable"
            );
        }
        usable.push(acknowledged.elapsed());
    }

    // Exchange latency against random seeded identities.
    let mut ex_lat = Vec::new();
    let mut pick = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..EXCHANGES {
        pick ^= pick << 13;
        pick ^= pick >> 7;
        pick ^= pick << 17;
        let client_id = &clients[(pick % clients.len() as u64) as usize];
        let a = assertions.next().expect("enough assertions");
        let started = Instant::now();
        assert_eq!(
            exchange(&http, &authority, &tenant, client_id, &a).await,
            200
        );
        ex_lat.push(started.elapsed());
    }
    for v in [&mut id_lat, &mut fc_lat, &mut usable, &mut ex_lat] {
        v.sort();
    }
    let scale = Scale {
        n,
        startup,
        rss_kib: rss,
        identity_put: (percentile(&id_lat, 0.5), percentile(&id_lat, 0.99)),
        credential_put: (percentile(&fc_lat, 0.5), percentile(&fc_lat, 0.99)),
        usable: (percentile(&usable, 0.5), percentile(&usable, 1.0)),
        exchange: percentile(&ex_lat, 0.5),
    };
    let live = Live {
        _server: server,
        _dir: dir,
        http,
        authority,
        tenant,
        clients,
    };
    (scale, live)
}

/// What two replicas on PostgreSQL measured at N identities.
struct Replicas {
    n: usize,
    startup: Duration,
    identity_put: Duration,
    usable: Trials,
    /// The same, with B reloading in full every second or two.
    usable_reloading: Trials,
}

/// Credential 201 on A → first exchange on B, over [`REPLICA_TRIALS`].
struct Trials {
    median: Duration,
    max: Duration,
    /// Full reloads of B's view during the trials.
    reloads: u64,
}

/// Starts one replica (`keyless serve --database-url`) behind the shared public URL;
/// returns it and the URL this client talks to it at (its own port, by name).
async fn start_replica(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(support::keyless_bin())
        .args(args)
        .env("KEYLESS_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut port = None;
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("exited before ready");
        if let Some((_, addr)) = line.split_once("listening on ") {
            port = addr.trim().rsplit(':').next().map(str::to_string);
        }
        if line.contains("ready at ") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (
        child,
        format!("https://localhost:{}", port.expect("a listening line")),
    )
}

/// Inserts `n` identities with one credential each into PostgreSQL, as [`seed`] does
/// for SQLite (one statement per table, from arrays).
async fn seed_postgres(url: &str, tenant: &str, sub: &str, issuer: &str, n: usize) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let pids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let cids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let names: Vec<String> = (0..n).map(|i| format!("seeded-{i}")).collect();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO identities (principal_id, client_id, tenant_id, subscription_id, resource_group, name, location, tags, created_at)
         SELECT p, c, $3, $4, 'bench', n, 'local', '{}', 1 FROM UNNEST($1::text[], $2::text[], $5::text[]) AS t(p, c, n)",
    )
    .bind(&pids)
    .bind(&cids)
    .bind(tenant)
    .bind(sub)
    .bind(&names)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO federated_credentials (identity_principal_id, name, issuer, subject, audiences, expression, created_at, updated_at)
         SELECT p, 'fic', $2, $3, '[\"api://AzureADTokenExchange\"]', NULL, 1, 1 FROM UNNEST($1::text[]) AS t(p)",
    )
    .bind(&pids)
    .bind(issuer)
    .bind(SUBJECT)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    conn.close().await.unwrap();
    cids
}

/// Counter `name` from a replica's `/metrics`.
async fn metric(http: &reqwest::Client, replica: &str, bearer: &str, name: &str) -> u64 {
    let text = http
        .get(format!("{replica}/metrics"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Replica A (written to) and B (exchanged with), and what the trials need.
struct Pair<'a> {
    n: usize,
    http: &'a reqwest::Client,
    a: &'a str,
    b: &'a str,
    bearer: &'a str,
    sub: &'a str,
    tenant: &'a str,
    scope: &'a str,
    issuer: &'a str,
}

impl Pair<'_> {
    /// [`REPLICA_TRIALS`] credentials written on A, each timed from its 201 until B
    /// exchanges with it.
    async fn trials(&self, label: &str, assertions: &mut impl Iterator<Item = String>) -> Trials {
        let Pair {
            n,
            http,
            a,
            b,
            bearer,
            sub,
            tenant,
            scope,
            issuer,
        } = *self;
        let reloads = "keyless_view_reloads_total";
        let reloads_before = metric(http, b, bearer, reloads).await;
        let mut usable = Vec::new();
        for i in 0..REPLICA_TRIALS {
            tokio::time::sleep(Duration::from_millis(40)).await;
            let name = format!("usable-{label}-{i}");
            let client_id = identity_with_credential(http, a, bearer, sub, issuer, &name).await;
            let acknowledged = Instant::now();
            // Written on A, exchanged on B: a new assertion each try, 2 ms apart.
            let (mut tries, mut slowest) = (0, Duration::ZERO);
            loop {
                let assertion = assertions
                    .next()
                    .expect("B never exchanged with A's credential");
                tries += 1;
                let sent = Instant::now();
                let status = exchange_for(http, b, scope, tenant, &client_id, &assertion).await;
                slowest = slowest.max(sent.elapsed());
                if status == 200 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let took = acknowledged.elapsed();
            if took > Duration::from_millis(50) {
                eprintln!(
                    "replicas ({label}): trial {i} took {took:?}: {tries} tries, slowest exchange {slowest:?}"
                );
            }
            usable.push(took);
        }
        let reloads = metric(http, b, bearer, reloads).await - reloads_before;
        eprintln!(
            "replicas ({label}), N={n}: A→B usable after {usable:?}; {reloads} full reloads on B"
        );
        usable.sort();
        Trials {
            median: percentile(&usable, 0.5),
            max: percentile(&usable, 1.0),
            reloads,
        }
    }
}

/// Two replicas on a fresh PostgreSQL database holding `n` identities.
async fn measure_replicas(
    n: usize,
    admin_url: &str,
    issuer: &str,
    cluster_http: &reqwest::Client,
    ca: &Path,
) -> Replicas {
    let name = format!("keyless_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
    // `name` is made here of a fixed prefix and hex digits.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shared");
    let (data_s, ca_s) = (data.to_str().unwrap(), ca.to_str().unwrap());
    // One public URL for both, as behind a load balancer; each is reached on its port.
    let public = "https://localhost:9443";
    let mut args = vec![
        "serve",
        "--data-dir",
        data_s,
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--public-url",
        public,
        "--allow-private-issuers",
        "--trust-ca",
        ca_s,
    ];
    args.extend(support::LIMITS_OFF);
    let scope = format!("{public}/.default");
    // Bootstrap on the empty database, and the resource group.
    let (tenant, sub) = {
        let (first, a) = start_replica(&args).await;
        let http = client(&data.join("ca.pem"));
        let admin = support::read_admin(&data);
        let bearer = support::admin_client_token(&http, &a, &admin, &scope).await;
        let tenant = admin["tenantId"].as_str().unwrap().to_string();
        let sub = admin["subscriptionId"].as_str().unwrap().to_string();
        support::put(
            &http,
            &a,
            &bearer,
            format!("/subscriptions/{sub}/resourcegroups/bench?api-version=2021-04-01"),
            json!({"location": "local"}),
        )
        .await;
        drop(first);
        (tenant, sub)
    };
    let seeding = Instant::now();
    seed_postgres(&url, &tenant, &sub, issuer, n).await;
    eprintln!(
        "replicas, N={n}: seeded PostgreSQL in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let spawned = Instant::now();
    let (replica_a, a) = start_replica(&args).await;
    let startup = spawned.elapsed();
    // B checks every second (default: 30 s) whether its feed missed a write.
    let mut args_b = args.clone();
    args_b.extend(["--resync-interval", "1"]);
    let (replica_b, b) = start_replica(&args_b).await;
    let http = client(&data.join("ca.pem"));
    let bearer = support::admin_client_token(&http, &a, &support::read_admin(&data), &scope).await;
    let mut assertions = mint(cluster_http, issuer, REPLICA_TRIALS * 80)
        .await
        .into_iter();

    let mut id_lat = Vec::new();
    for i in 0..WRITES / 4 {
        id_lat.push(
            timed_put(
                &http,
                &a,
                &bearer,
                identity_path(&sub, &format!("new-{i}")),
                json!({"location": "local"}),
            )
            .await,
        );
    }
    // B's feed asked for a full reload when it started listening; the trials count
    // reloads from after it.
    let waiting = Instant::now();
    while metric(&http, &b, &bearer, "keyless_view_reloads_total").await < 1 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "B never finished its start-up reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pair = Pair {
        n,
        http: &http,
        a: &a,
        b: &b,
        bearer: &bearer,
        sub: &sub,
        tenant: &tenant,
        scope: &scope,
        issuer,
    };
    let usable = pair.trials("steady", &mut assertions).await;
    // A hand edit every second: never notified, so B's next-but-one check reloads.
    let editing = {
        let url = url.clone();
        tokio::spawn(async move {
            let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
            loop {
                sqlx::query("UPDATE meta SET value = value WHERE key = 'kek_fingerprint'")
                    .execute(&mut db)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let usable_reloading = pair.trials("reloading", &mut assertions).await;
    editing.abort();
    id_lat.sort();
    drop((replica_a, replica_b));
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    Replicas {
        n,
        startup,
        identity_put: percentile(&id_lat, 0.5),
        usable,
        usable_reloading,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ns: Vec<usize> = std::env::var("KEYLESS_BENCH_SCALE")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("cluster");
    let (_cluster, issuer) = start(&[
        "dev-cluster",
        "--data-dir",
        cluster_dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let ca = cluster_dir.join("ca.pem");
    let cluster_http = client(&ca);
    pin_self(1);

    let (base, base_live) = measure(10, &issuer, &cluster_http, &ca).await;
    let mut scales = Vec::new();
    let mut largest = None;
    for &n in &ns {
        let (scale, live) = measure(n, &issuer, &cluster_http, &ca).await;
        scales.push(scale);
        // Only the last (largest) server stays up, for the comparison below.
        largest = Some(live);
    }
    // Exchange latency at 10 and at N identities, interleaved (alternating which goes
    // first) so that both see the same moment of this shared machine: sequential
    // latencies of ~0.3 ms measured minutes apart differ by more than the 10% compared.
    let paired = match &largest {
        Some(big) => {
            let assertions = mint(&cluster_http, &issuer, 2 * PAIRED).await;
            let (mut small_lat, mut big_lat) = (Vec::new(), Vec::new());
            let mut pick = 0x2545_f491_4f6c_dd1du64;
            for (i, pair) in assertions.chunks(2).enumerate() {
                pick ^= pick << 13;
                pick ^= pick >> 7;
                pick ^= pick << 17;
                if i % 2 == 0 {
                    small_lat.push(base_live.timed_exchange(pick, &pair[0]).await);
                    big_lat.push(big.timed_exchange(pick, &pair[1]).await);
                } else {
                    big_lat.push(big.timed_exchange(pick, &pair[1]).await);
                    small_lat.push(base_live.timed_exchange(pick, &pair[0]).await);
                }
            }
            small_lat.sort();
            big_lat.sort();
            Some((percentile(&small_lat, 0.5), percentile(&big_lat, 0.5)))
        }
        None => None,
    };
    drop((base_live, largest));
    let postgres = std::env::var("KEYLESS_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let replicas = match (&postgres, ns.iter().max()) {
        (Some(url), Some(&n)) => Some(measure_replicas(n, url, &issuer, &cluster_http, &ca).await),
        _ => None,
    };
    let mut rows = vec![
        Row::info(
            "exchange latency, 10 identities (median)",
            ms(base.exchange),
            "ms",
        ),
        Row::info("RSS, 10 identities", base.rss_kib / 1024.0, "MiB"),
    ];
    for s in &scales {
        let n = s.n;
        rows.push(Row::target(
            &format!("start-up to ready, N={n}"),
            s.startup.as_secs_f64(),
            "s",
            5.0,
        ));
        rows.push(Row::info(
            &format!("identity PUT median, N={n}"),
            ms(s.identity_put.0),
            "ms",
        ));
        rows.push(Row::info(
            &format!("identity PUT p99, N={n}"),
            ms(s.identity_put.1),
            "ms",
        ));
        rows.push(Row::info(
            &format!("credential PUT median, N={n}"),
            ms(s.credential_put.0),
            "ms",
        ));
        rows.push(Row::info(
            &format!("credential PUT p99, N={n}"),
            ms(s.credential_put.1),
            "ms",
        ));
        rows.push(Row::target(
            &format!("credential 201 → first exchange, max of {USABLE}, N={n}"),
            ms(s.usable.1),
            "ms",
            50.0,
        ));
        rows.push(Row::info(
            &format!("RSS per identity + credential, N={n}"),
            (s.rss_kib - base.rss_kib) * 1024.0 / (n as f64 - base.n as f64).max(1.0),
            "B",
        ));
        rows.push(Row::info(
            &format!("exchange latency median, N={n}"),
            ms(s.exchange),
            "ms",
        ));
    }
    if let (Some(first), Some(last)) = (scales.first(), scales.last()) {
        let (a, b) = (first.n, last.n);
        rows.push(Row::ratio(
            &format!("identity PUT median, N={b} vs N={a}"),
            ms(last.identity_put.0),
            "ms",
            ms(first.identity_put.0),
            1.25,
        ));
        rows.push(Row::ratio(
            &format!("credential PUT median, N={b} vs N={a}"),
            ms(last.credential_put.0),
            "ms",
            ms(first.credential_put.0),
            1.25,
        ));
        if let Some((small, big)) = paired {
            rows.push(Row::ratio(
                &format!("exchange latency median, N={b} vs 10, interleaved ({PAIRED} each)"),
                ms(big),
                "ms",
                ms(small),
                1.10,
            ));
        }
    }
    if let Some(r) = &replicas {
        let n = r.n;
        rows.push(Row::target(
            &format!("PostgreSQL replica start-up to ready, N={n}"),
            r.startup.as_secs_f64(),
            "s",
            5.0,
        ));
        rows.push(Row::info(
            &format!("PostgreSQL identity PUT median, N={n}"),
            ms(r.identity_put),
            "ms",
        ));
        rows.push(Row::info(
            &format!(
                "credential 201 on replica A → first exchange on B, median of {REPLICA_TRIALS}, N={n}"
            ),
            ms(r.usable.median),
            "ms",
        ));
        rows.push(Row::target(
            &format!(
                "credential 201 on replica A → first exchange on B, max of {REPLICA_TRIALS}, N={n}"
            ),
            ms(r.usable.max),
            "ms",
            50.0,
        ));
        rows.push(Row::info(
            &format!(
                "full reloads on replica B (checking every 1 s) during those {REPLICA_TRIALS}, N={n}"
            ),
            r.usable.reloads as f64,
            "",
        ));
        rows.push(Row::info(
            &format!("… the same while hand edits make B reload every 1–2 s: median, N={n}"),
            ms(r.usable_reloading.median),
            "ms",
        ));
        rows.push(Row::info(
            &format!(
                "… max of {REPLICA_TRIALS}, with {} full reloads on B",
                r.usable_reloading.reloads
            ),
            ms(r.usable_reloading.max),
            "ms",
        ));
    }
    support::print_rows(&rows);
    if replicas.is_none() {
        println!("replicas on PostgreSQL skipped: KEYLESS_TEST_POSTGRES_URL is not set");
    }
}
