//! Several `keyless serve` replicas on one PostgreSQL database (issue 7): one
//! bootstrap, changes visible on every replica within the propagation bound, shared
//! signing keys, races through different replicas, a replica dying under load, and the
//! database going away and coming back.
//!
//! Needs a PostgreSQL server: `KEYLESS_TEST_POSTGRES_URL` (set by `scripts/test.sh`).
//! Without it they fail and say why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::testkit::*;

/// The bound the design promises for a change to reach another replica.
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);

/// The PostgreSQL server the replica tests run on. Without one they fail with the
/// reason: a skipped replica test would look like a passing one.
fn admin_url() -> Result<String> {
    match std::env::var("KEYLESS_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Ok(u),
        _ => bail!(
            "KEYLESS_TEST_POSTGRES_URL is not set: the replica tests need a PostgreSQL server \
             (./scripts/test.sh starts one; or point the variable at a server where the role may CREATEDB)"
        ),
    }
}

/// A fresh database on the test server, dropped on drop.
struct Database {
    admin: String,
    name: String,
    url: String,
}

async fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .arg(url)
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-qc")
        .arg(sql)
        .output()
        .await
        .context("running psql")?;
    ensure!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl Database {
    async fn create(admin: &str) -> Result<Database> {
        let name = format!("keyless_replicas_{}", uuid::Uuid::new_v4().simple());
        psql(admin, &format!("CREATE DATABASE {name}")).await?;
        let (base, _) = admin
            .rsplit_once('/')
            .context("no database in KEYLESS_TEST_POSTGRES_URL")?;
        Ok(Database {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// The URL through `proxy` instead of directly.
    fn via(&self, proxy: &Proxy) -> Result<String> {
        let rest = self.url.split_once("://").context("bad url")?.1;
        let (userinfo, hostpath) = rest
            .split_once('@')
            .map(|(u, h)| (format!("{u}@"), h))
            .unwrap_or((String::new(), rest));
        let path = hostpath.split_once('/').map(|(_, p)| p).unwrap_or_default();
        Ok(format!(
            "postgres://{userinfo}127.0.0.1:{}/{path}",
            proxy.port
        ))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(&self.admin)
            .arg("-qc")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// A TCP proxy to PostgreSQL that a test can cut (every connection dropped, new ones
/// refused) and restore — the database "going away" without touching the server.
struct Proxy {
    port: u16,
    upstream: String,
    up: Arc<AtomicBool>,
    /// While set, connections stay open but no byte passes: a half-dead database.
    stalled: Arc<AtomicBool>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    conns: Arc<tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(db_url: &str) -> Result<Proxy> {
        let hostport = db_url
            .split_once('@')
            .map(|(_, h)| h)
            .unwrap_or(db_url)
            .split('/')
            .next()
            .context("no host")?
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let p = Proxy {
            port,
            upstream: hostport,
            up: Arc::new(AtomicBool::new(true)),
            stalled: Arc::new(AtomicBool::new(false)),
            task: tokio::sync::Mutex::new(None),
            conns: Arc::new(tokio::sync::Mutex::new(Vec::new())),
        };
        p.serve(listener).await;
        Ok(p)
    }

    async fn serve(&self, listener: TcpListener) {
        let (upstream, conns) = (self.upstream.clone(), self.conns.clone());
        let stalled = self.stalled.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let stalled = stalled.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(&upstream).await {
                        let (ri, wi) = inbound.into_split();
                        let (ro, wo) = outbound.into_split();
                        tokio::join!(forward(ri, wo, stalled.clone()), forward(ro, wi, stalled));
                    }
                });
                conns.lock().await.push(handle);
            }
        });
        *self.task.lock().await = Some(task);
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(t) = self.task.lock().await.take() {
            t.abort();
        }
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    /// Holds every byte (both directions, open and new connections) until `resume`.
    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    async fn restore(&self) -> Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.up.store(true, Ordering::SeqCst);
        self.serve(listener).await;
        Ok(())
    }
}

/// Copies `from` to `to`, holding the bytes while `stalled` is set.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// One `keyless serve` replica.
struct Replica {
    child: std::sync::Mutex<Option<Child>>,
    url: String,
    client: reqwest::Client,
}

impl Replica {
    /// Kills the process (SIGKILL: no graceful shutdown).
    async fn kill(&self) -> Result<()> {
        let child = self.child.lock().unwrap().take();
        if let Some(mut c) = child {
            c.kill().await?;
        }
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(c) = self.child.lock().unwrap().as_mut() {
            let _ = c.start_kill();
        }
    }
}

async fn replica(
    data_dir: &Path,
    db_url: &str,
    public_url: Option<&str>,
    extra: &[&str],
) -> Result<Replica> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyless"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--database-url")
        .arg(db_url);
    if let Some(p) = public_url {
        cmd.arg("--public-url").arg(p);
    }
    cmd.args(extra)
        .env_remove("KEYLESS_KEK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let err_buf = Arc::new(std::sync::Mutex::new(String::new()));
    let eb = err_buf.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            eb.lock().unwrap().push_str(&format!("{l}\n"));
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        let mut listening = None;
        while let Some(l) = lines.next_line().await? {
            if let Some((_, addr)) = l.split_once("listening on ") {
                listening = Some(addr.trim().to_string());
            }
            if l.contains("ready at ") {
                // Talk to this replica directly, by name (the certificate covers
                // localhost), on the port it listens on.
                let port = listening
                    .as_deref()
                    .and_then(|a| a.rsplit(':').next())
                    .unwrap_or_default()
                    .to_string();
                return Ok::<_, anyhow::Error>(Some(format!("https://localhost:{port}")));
            }
        }
        Ok(None)
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = match ready {
        Ok(Ok(Some(u))) => u,
        _ => {
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            bail!("replica did not start:\n{}", err_buf.lock().unwrap())
        }
    };
    let client = client_trusting(&data_dir.join("ca.pem"))?;
    Ok(Replica {
        child: std::sync::Mutex::new(Some(child)),
        url,
        client,
    })
}

/// Starts `replica` but expects it to fail; returns its stderr.
async fn replica_failure(data_dir: &Path, db_url: &str, env: &[(&str, &str)]) -> Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(env!("CARGO_BIN_EXE_keyless"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--database-url")
            .arg(db_url)
            .envs(env.iter().copied())
            .output(),
    )
    .await
    .context("the mismatched replica did not exit")??;
    ensure!(
        !out.status.success(),
        "the replica started although it should have refused"
    );
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn admin_of(dir: &Path) -> Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(
        dir.join("admin.json"),
    )?)?)
}

async fn token(r: &Replica, admin: &Value, scope: &str) -> Result<String> {
    let resp = r
        .client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            r.url,
            admin["tenantId"].as_str().unwrap_or_default()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", admin["clientId"].as_str().unwrap_or_default()),
            (
                "client_secret",
                admin["clientSecret"].as_str().unwrap_or_default(),
            ),
            ("scope", scope),
        ])
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    ensure!(status == 200, "token: {status} {body}");
    Ok(body["access_token"].as_str().context("token")?.to_string())
}

async fn arm(
    r: &Replica,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = r
        .client
        .request(method, format!("{}{path}", r.url))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn exchange(
    r: &Replica,
    tenant: &str,
    client_id: &str,
    assertion: &str,
    scope: &str,
) -> Result<(u16, Value)> {
    let resp = r
        .client
        .post(format!("{}/{tenant}/oauth2/v2.0/token", r.url))
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
        .await?;
    Ok((resp.status().as_u16(), resp.json().await?))
}

/// A counter from replica `r`'s `/metrics`.
async fn metric(r: &Replica, token: &str, name: &str) -> Result<u64> {
    let resp = r
        .client
        .get(format!("{}/metrics", r.url))
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(resp.status() == 200, "/metrics: {}", resp.status());
    let text = resp.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

/// Shared set-up: a database, a shared data dir, a dev cluster, two replicas behind
/// one public URL (as a load balancer would present them).
struct Pair {
    _db: Database,
    _dir: tempfile::TempDir,
    data: PathBuf,
    cluster: DevCluster,
    a: Arc<Replica>,
    b: Arc<Replica>,
    admin: Value,
    public: String,
}

async fn pair(db: Database, db_url_a: &str, db_url_b: &str) -> Result<Pair> {
    pair_with(db, db_url_a, db_url_b, &[]).await
}

/// [`pair`], with more `keyless serve` flags for both replicas.
async fn pair_with(db: Database, db_url_a: &str, db_url_b: &str, more: &[&str]) -> Result<Pair> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("shared");
    let cluster = DevCluster::start(&[]).await?;
    let ca = cluster.ca_path();
    let ca = ca.to_str().context("path")?.to_string();
    // The public URL names one port; replicas listen elsewhere, as behind a balancer.
    let public = "https://localhost:9443".to_string();
    let mut extra = vec!["--allow-private-issuers", "--trust-ca", ca.as_str()];
    extra.extend_from_slice(more);
    // Start both at the same instant on the empty database.
    let (a, b) = tokio::join!(
        replica(&data, db_url_a, Some(&public), &extra),
        replica(&data, db_url_b, Some(&public), &extra)
    );
    let (a, b) = (Arc::new(a?), Arc::new(b?));
    let admin = admin_of(&data)?;
    Ok(Pair {
        _db: db,
        _dir: dir,
        data,
        cluster,
        a,
        b,
        admin,
        public,
    })
}

impl Pair {
    fn tenant(&self) -> &str {
        self.admin["tenantId"].as_str().unwrap_or_default()
    }
    fn sub(&self) -> &str {
        self.admin["subscriptionId"].as_str().unwrap_or_default()
    }
    fn arm_scope(&self) -> String {
        format!("{}/.default", self.public)
    }
    /// Waits (at most [`PROPAGATION_BOUND`]) until replica `on` exchanges `assertion`
    /// for `client_id`: a credential written through the other replica has reached it.
    async fn until_exchanges(&self, on: &Replica, client_id: &str, assertion: &str) -> Result<()> {
        self.until_exchanges_within(on, client_id, assertion, PROPAGATION_BOUND)
            .await
    }
    /// [`Pair::until_exchanges`], waiting at most `within`.
    async fn until_exchanges_within(
        &self,
        on: &Replica,
        client_id: &str,
        assertion: &str,
        within: Duration,
    ) -> Result<()> {
        let started = Instant::now();
        loop {
            let (s, body) =
                exchange(on, self.tenant(), client_id, assertion, &self.arm_scope()).await?;
            if s == 200 {
                return Ok(());
            }
            ensure!(
                started.elapsed() < within,
                "{} did not exchange within {within:?}: {body}",
                on.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    /// Waits (at most [`PROPAGATION_BOUND`]) until replica `on` reads `path` with 200.
    async fn until_readable(&self, on: &Replica, token: &str, path: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            let (s, body) = arm(on, token, Method::GET, path, None).await?;
            if s == 200 {
                return Ok(());
            }
            ensure!(
                started.elapsed() < PROPAGATION_BOUND,
                "{} did not read {path} within {PROPAGATION_BOUND:?}: {s} {body}",
                on.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    async fn identity(&self, on: &Replica, token: &str, name: &str) -> Result<(String, String)> {
        let (s, rg) = arm(
            on,
            token,
            Method::PUT,
            &format!(
                "/subscriptions/{}/resourcegroups/rg?api-version={RG_API}",
                self.sub()
            ),
            Some(json!({"location": "westeurope"})),
        )
        .await?;
        ensure!(s == 200 || s == 201, "rg: {rg}");
        let (s, id) = arm(
            on,
            token,
            Method::PUT,
            &format!("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}?api-version={MI_API}", self.sub()),
            Some(json!({"location": "westeurope"})),
        )
        .await?;
        ensure!(s == 201 || s == 200, "identity: {id}");
        Ok((
            id["properties"]["clientId"]
                .as_str()
                .context("clientId")?
                .to_string(),
            id["properties"]["principalId"]
                .as_str()
                .context("pid")?
                .to_string(),
        ))
    }
    async fn credential(
        &self,
        on: &Replica,
        token: &str,
        identity: &str,
        name: &str,
        subject: &str,
    ) -> Result<(u16, Value)> {
        arm(
            on,
            token,
            Method::PUT,
            &format!("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity}/federatedIdentityCredentials/{name}?api-version={MI_API}", self.sub()),
            Some(json!({"properties": {"issuer": self.cluster.issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}})),
        )
        .await
    }
}

#[tokio::test]
async fn replicas_share_one_bootstrap_and_see_each_others_changes_within_a_second() -> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let url = db.url.clone();
    let p = pair(db, &url, &url).await?;
    // One tenant whatever replica is asked.
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let tb = token(&p.b, &p.admin, &p.arm_scope()).await?;
    let (_, tenants_a) = arm(
        &p.a,
        &ta,
        Method::GET,
        &format!("/tenants?api-version={SUB_API}"),
        None,
    )
    .await?;
    let (_, tenants_b) = arm(
        &p.b,
        &tb,
        Method::GET,
        &format!("/tenants?api-version={SUB_API}"),
        None,
    )
    .await?;
    assert_eq!(tenants_a["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(tenants_a, tenants_b);
    // A token minted by A is valid on B (one public URL, shared keys).
    let (s, _) = arm(
        &p.b,
        &ta,
        Method::GET,
        &format!("/subscriptions/{}?api-version={SUB_API}", p.sub()),
        None,
    )
    .await?;
    assert_eq!(s, 200);

    // Create on A; measure from the acknowledgement until B exchanges successfully.
    let (client_id, _) = p.identity(&p.a, &ta, "replicated").await?;
    // From here on B applies A's writes by key (issue 13): no full reload of its view.
    // (Wait for the identity to arrive first, so B's own start-up signals are behind.)
    p.until_readable(&p.b, &tb, &format!("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/replicated?api-version={MI_API}", p.sub())).await?;
    // B's feed asked for one full reload when it started listening; it runs beside the
    // changes by key, so wait for it to be counted before counting from here.
    let started = Instant::now();
    while metric(&p.b, &tb, "keyless_view_reloads_total").await? < 1 {
        ensure!(
            started.elapsed() < PROPAGATION_BOUND,
            "B never finished its start-up reload"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reloads_before = metric(&p.b, &tb, "keyless_view_reloads_total").await?;
    let applied_before = metric(&p.b, &tb, "keyless_view_changes_applied_total").await?;
    let subject = "system:serviceaccount:default:replicated";
    let assertion = p.cluster.mint("default", "replicated").await?;
    let (s, body) = p
        .credential(&p.a, &ta, "replicated", "fic", subject)
        .await?;
    assert_eq!(s, 201, "{body}");
    let acknowledged = Instant::now();
    loop {
        let (s, body) = exchange(&p.b, p.tenant(), &client_id, &assertion, &p.arm_scope()).await?;
        if s == 200 {
            break;
        }
        assert!(
            acknowledged.elapsed() < PROPAGATION_BOUND,
            "B did not see A's credential within {PROPAGATION_BOUND:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let propagation = acknowledged.elapsed();
    eprintln!("propagation A→B: {propagation:?}");
    assert_eq!(
        metric(&p.b, &tb, "keyless_view_reloads_total").await?,
        reloads_before,
        "B applied the credential without reloading its view"
    );
    assert!(metric(&p.b, &tb, "keyless_view_changes_applied_total").await? > applied_before);

    // Deletion propagates like any other change.
    let (s, _) = arm(&p.a, &ta, Method::DELETE, &format!("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/replicated?api-version={MI_API}", p.sub()), None).await?;
    assert_eq!(s, 200);
    let deleted = Instant::now();
    loop {
        let (s, _) = exchange(&p.b, p.tenant(), &client_id, &assertion, &p.arm_scope()).await?;
        if s != 200 {
            break;
        }
        assert!(
            deleted.elapsed() < PROPAGATION_BOUND,
            "B still exchanged for a deleted identity after {PROPAGATION_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        metric(&p.b, &tb, "keyless_view_reloads_total").await?,
        reloads_before,
        "B applied the deletion without reloading its view"
    );
    assert!(p.data.join("admin.json").exists());
    Ok(())
}

/// With a resync every second, a replica whose change feed missed nothing does not
/// reload its view; a hand edit in the database (never notified) is still picked up by
/// the resync, within two intervals.
#[tokio::test]
async fn resync_reloads_only_when_a_write_was_missed() -> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let url = db.url.clone();
    let p = pair_with(db, &url, &url, &["--resync-interval", "1"]).await?;
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let tb = token(&p.b, &p.admin, &p.arm_scope()).await?;
    let (client_id, _) = p.identity(&p.a, &ta, "edited").await?;
    let (s, body) = p
        .credential(
            &p.a,
            &ta,
            "edited",
            "fic",
            "system:serviceaccount:default:edited",
        )
        .await?;
    assert_eq!(s, 201, "{body}");
    let assertion = p.cluster.mint("default", "edited").await?;
    p.until_exchanges(&p.b, &client_id, &assertion).await?;

    // B's start-up reload is behind it after a couple of intervals; from then on every
    // resync is skipped.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let reloads = metric(&p.b, &tb, "keyless_view_reloads_total").await?;
    let skipped = metric(&p.b, &tb, "keyless_view_resyncs_skipped_total").await?;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        metric(&p.b, &tb, "keyless_view_reloads_total").await?,
        reloads,
        "no reload while nothing was missed"
    );
    let skipped_now = metric(&p.b, &tb, "keyless_view_resyncs_skipped_total").await?;
    assert!(
        skipped_now >= skipped + 2,
        "resyncs skipped: {skipped} then {skipped_now}"
    );

    // A hand edit moves the credential to another service account, without a
    // notification: B follows it within two intervals (and a little).
    psql(
        &url,
        "UPDATE federated_credentials SET subject = 'system:serviceaccount:default:other' WHERE name = 'fic'",
    )
    .await?;
    let other = p.cluster.mint("default", "other").await?;
    let edited = Instant::now();
    p.until_exchanges_within(&p.b, &client_id, &other, Duration::from_secs(5))
        .await
        .context("B did not pick up the hand edit")?;
    eprintln!("hand edit picked up by B after {:?}", edited.elapsed());
    assert!(metric(&p.b, &tb, "keyless_view_reloads_total").await? > reloads);
    let (s, _) = exchange(&p.b, p.tenant(), &client_id, &assertion, &p.arm_scope()).await?;
    assert_ne!(s, 200, "the old subject no longer exchanges on B");
    Ok(())
}

#[tokio::test]
async fn concurrent_credential_writes_through_two_replicas_lose_nothing() -> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let url = db.url.clone();
    let p = Arc::new(pair(db, &url, &url).await?);
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let tb = token(&p.b, &p.admin, &p.arm_scope()).await?;
    p.identity(&p.a, &ta, "busy").await?;
    // Both replicas see the identity before the race starts.
    let busy = format!(
        "/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/busy?api-version={MI_API}",
        p.sub()
    );
    p.until_readable(&p.b, &tb, &busy).await?;
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (p, t) = (p.clone(), if n % 2 == 0 { ta.clone() } else { tb.clone() });
        tasks.push(tokio::spawn(async move {
            let on = if n % 2 == 0 { &p.a } else { &p.b };
            p.credential(
                on,
                &t,
                "busy",
                &format!("fic{n:02}"),
                &format!("system:serviceaccount:ns:sa{n}"),
            )
            .await
        }));
    }
    // Two replicas racing for one issuer+subject: exactly one wins.
    let mut contested = Vec::new();
    for n in 0..6 {
        let (p, t) = (p.clone(), if n % 2 == 0 { ta.clone() } else { tb.clone() });
        contested.push(tokio::spawn(async move {
            let on = if n % 2 == 0 { &p.a } else { &p.b };
            p.credential(
                on,
                &t,
                "busy",
                &format!("same{n}"),
                "system:serviceaccount:ns:contested",
            )
            .await
        }));
    }
    for t in tasks {
        let (s, body) = t.await??;
        assert_eq!(s, 201, "{body}");
    }
    let mut wins = 0;
    for t in contested {
        let (s, body) = t.await??;
        match s {
            201 => wins += 1,
            400 => assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("already exists"),
                "{body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(wins, 1, "exactly one contested write wins");
    let (_, list) = arm(&p.b, &tb, Method::GET, &format!("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/busy/federatedIdentityCredentials?api-version={MI_API}", p.sub()), None).await?;
    let names: std::collections::BTreeSet<String> = list["value"]
        .as_array()
        .context("value")?
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        names.len(),
        21,
        "20 + 1 credentials, none lost or duplicated: {names:?}"
    );
    Ok(())
}

#[tokio::test]
async fn key_rotation_on_one_replica_is_honoured_by_the_other_and_a_wrong_kek_is_refused()
-> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let url = db.url.clone();
    let p = pair(db, &url, &url).await?;
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let (s, rotated) = arm(
        &p.a,
        &ta,
        Method::POST,
        &format!("/providers/Keyless/signingKeys/rotate?api-version={KEYLESS_API}"),
        None,
    )
    .await?;
    assert_eq!(s, 200, "{rotated}");
    let new_kid = rotated["kid"].as_str().context("kid")?.to_string();
    let acknowledged = Instant::now();
    // A token A signs with the new key is accepted by B within the bound.
    let fresh = token(&p.a, &p.admin, &p.arm_scope()).await?;
    assert_eq!(jwt_header(&fresh)["kid"], new_kid.as_str());
    loop {
        let (s, body) = arm(
            &p.b,
            &fresh,
            Method::GET,
            &format!("/subscriptions/{}?api-version={SUB_API}", p.sub()),
            None,
        )
        .await?;
        if s == 200 {
            break;
        }
        assert!(
            acknowledged.elapsed() < PROPAGATION_BOUND,
            "B refused A's new key after {PROPAGATION_BOUND:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // B, having loaded the new key, signs with it too; the old token still works.
    let from_b = token(&p.b, &p.admin, &p.arm_scope()).await?;
    assert_eq!(jwt_header(&from_b)["kid"], new_kid.as_str());
    let (s, _) = arm(
        &p.b,
        &ta,
        Method::GET,
        &format!("/subscriptions/{}?api-version={SUB_API}", p.sub()),
        None,
    )
    .await?;
    assert_eq!(s, 200);

    // A replica whose key-encryption key does not match refuses to start.
    let other = tempfile::tempdir()?;
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let err = replica_failure(other.path(), &url, &[("KEYLESS_KEK", &wrong)]).await?;
    assert!(err.contains("key-encryption key"), "{err}");
    Ok(())
}

#[tokio::test]
async fn killing_one_replica_under_load_fails_no_request_on_the_other() -> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let url = db.url.clone();
    let p = pair(db, &url, &url).await?;
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let (client_id, _) = p.identity(&p.a, &ta, "steady").await?;
    p.credential(
        &p.a,
        &ta,
        "steady",
        "fic",
        "system:serviceaccount:default:steady",
    )
    .await?;
    let assertion = p.cluster.mint("default", "steady").await?;
    p.until_exchanges(&p.b, &client_id, &assertion).await?;
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let b = p.b.clone();
    let mut load = Vec::new();
    for _ in 0..4 {
        let (b, failures, done, tenant, client_id, assertion, scope) = (
            b.clone(),
            failures.clone(),
            done.clone(),
            p.tenant().to_string(),
            client_id.clone(),
            assertion.clone(),
            p.arm_scope(),
        );
        load.push(tokio::spawn(async move {
            for _ in 0..60 {
                match exchange(&b, &tenant, &client_id, &assertion, &scope).await {
                    Ok((200, _)) => {}
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    while done.load(Ordering::SeqCst) < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    p.a.kill().await?;
    for l in load {
        l.await?;
    }
    assert_eq!(done.load(Ordering::SeqCst), 240);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "requests to the surviving replica failed"
    );
    // And nothing was lost: the identity is still there, read through B.
    let tb = token(&b, &p.admin, &p.arm_scope()).await?;
    let (s, _) = arm(&b, &tb, Method::GET, &format!("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/steady?api-version={MI_API}", p.sub()), None).await?;
    assert_eq!(s, 200);
    Ok(())
}

#[tokio::test]
async fn database_outage_keeps_exchanges_and_reads_going_and_writes_fail_fast_then_recover()
-> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let proxy = Proxy::start(&db.url).await?;
    let via = db.via(&proxy)?;
    let p = pair(db, &via, &via).await?;
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let (client_id, _) = p.identity(&p.a, &ta, "outage").await?;
    p.credential(
        &p.a,
        &ta,
        "outage",
        "fic",
        "system:serviceaccount:default:outage",
    )
    .await?;
    let assertion = p.cluster.mint("default", "outage").await?;
    p.until_exchanges(&p.b, &client_id, &assertion).await?;

    proxy.cut().await;
    // Exchanges (no database on the hot path) and management reads keep working.
    for r in [&p.a, &p.b] {
        for _ in 0..20 {
            let (s, body) = exchange(r, p.tenant(), &client_id, &assertion, &p.arm_scope()).await?;
            assert_eq!(s, 200, "exchange during the outage: {body}");
        }
        let (s, _) = arm(r, &ta, Method::GET, &format!("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/outage?api-version={MI_API}", p.sub()), None).await?;
        assert_eq!(s, 200, "management read during the outage");
        let health = r.client.get(format!("{}/healthz", r.url)).send().await?;
        assert_eq!(
            health.status(),
            200,
            "healthz stays up while exchanges can be served"
        );
    }
    // Writes fail fast with 503 + Retry-After and a clear error.
    let started = Instant::now();
    let resp =
        p.a.client
            .put(format!(
                "{}/subscriptions/{}/resourcegroups/during?api-version={RG_API}",
                p.a.url,
                p.sub()
            ))
            .bearer_auth(&ta)
            .json(&json!({"location": "westeurope"}))
            .send()
            .await?;
    let took = started.elapsed();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await?;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("database"),
        "{body}"
    );
    assert!(
        took < Duration::from_secs(6),
        "the write took {took:?} to fail"
    );

    proxy.restore().await?;
    // Everything recovers by itself.
    let restored = Instant::now();
    loop {
        let (s, body) = arm(
            &p.a,
            &ta,
            Method::PUT,
            &format!(
                "/subscriptions/{}/resourcegroups/after?api-version={RG_API}",
                p.sub()
            ),
            Some(json!({"location": "westeurope"})),
        )
        .await?;
        if s == 201 || s == 200 {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(20),
            "writes did not recover: {s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let (s, _) = arm(
            &p.b,
            &ta,
            Method::GET,
            &format!(
                "/subscriptions/{}/resourcegroups/after?api-version={RG_API}",
                p.sub()
            ),
            None,
        )
        .await?;
        if s == 200 {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(30),
            "B did not see the write made after recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Issue 12 §5: a database that keeps its connections open but stops answering (a
/// dropped NAT entry, a stalled server) must not hang requests: every store call has a
/// deadline (`--store-timeout`), writes answer 503 with `Retry-After` within it, and
/// exchanges and reads, served from memory, go on.
#[tokio::test]
async fn a_stalled_database_fails_writes_within_the_store_deadline_and_recovers() -> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let proxy = Proxy::start(&db.url).await?;
    let via = db.via(&proxy)?;
    let p = pair_with(db, &via, &via, &["--store-timeout", "2"]).await?;
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let (client_id, _) = p.identity(&p.a, &ta, "stalled").await?;
    p.credential(
        &p.a,
        &ta,
        "stalled",
        "fic",
        "system:serviceaccount:default:stalled",
    )
    .await?;
    let assertion = p.cluster.mint("default", "stalled").await?;
    p.until_exchanges(&p.a, &client_id, &assertion).await?;

    proxy.stall();
    let started = Instant::now();
    let (s, body) = arm(
        &p.a,
        &ta,
        Method::PUT,
        &format!(
            "/subscriptions/{}/resourcegroups/during-stall?api-version={RG_API}",
            p.sub()
        ),
        Some(json!({"location": "westeurope"})),
    )
    .await?;
    let took = started.elapsed();
    assert_eq!(s, 503, "{body}");
    assert!(
        took < Duration::from_secs(8),
        "a write on a stalled database took {took:?} to fail"
    );
    let (s, body) = exchange(&p.a, p.tenant(), &client_id, &assertion, &p.arm_scope()).await?;
    assert_eq!(s, 200, "exchange while the database is stalled: {body}");

    proxy.resume();
    let resumed = Instant::now();
    loop {
        let (s, body) = arm(
            &p.a,
            &ta,
            Method::PUT,
            &format!(
                "/subscriptions/{}/resourcegroups/after-stall?api-version={RG_API}",
                p.sub()
            ),
            Some(json!({"location": "westeurope"})),
        )
        .await?;
        if s == 200 || s == 201 {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(30),
            "no recovery: {s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// One replica's vault data plane: `https://{vault}.vault.localhost:{its port}`.
fn vault_client(data: &Path, on: &Replica, vault: &str) -> Result<(reqwest::Client, String)> {
    let port: u16 = on.url.rsplit(':').next().unwrap_or_default().parse()?;
    let host = format!("{vault}.vault.localhost");
    let pem = std::fs::read(data.join("ca.pem"))?;
    let http = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem)?)
        .resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .timeout(Duration::from_secs(10))
        .build()?;
    Ok((http, format!("https://{host}:{port}")))
}

/// Secrets are read from memory (issue 13): a replica that has a secret cached must
/// still see, within the propagation bound, a new version, a disabled version and a
/// deletion made through the other replica — never serve the old state on.
#[tokio::test]
async fn a_secret_cached_on_one_replica_follows_changes_made_through_the_other() -> Result<()> {
    let admin_url = admin_url()?;
    let db = Database::create(&admin_url).await?;
    let url = db.url.clone();
    let p = pair(db, &url, &url).await?;
    let ta = token(&p.a, &p.admin, &p.arm_scope()).await?;
    let rg = format!(
        "/subscriptions/{}/resourcegroups/rg?api-version={RG_API}",
        p.sub()
    );
    let (s, body) = arm(
        &p.a,
        &ta,
        Method::PUT,
        &rg,
        Some(json!({"location": "westeurope"})),
    )
    .await?;
    ensure!(s == 200 || s == 201, "group: {s} {body}");
    let vault = format!(
        "/subscriptions/{}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/replicated?api-version=2023-07-01",
        p.sub()
    );
    let (s, body) = arm(
        &p.a,
        &ta,
        Method::PUT,
        &vault,
        Some(json!({"location": "westeurope"})),
    )
    .await?;
    ensure!(s == 200 || s == 201, "vault: {s} {body}");
    let vt = token(&p.a, &p.admin, "https://vault.localhost:9443/.default").await?;
    let (on_a, origin_a) = vault_client(&p.data, &p.a, "replicated")?;
    let (on_b, origin_b) = vault_client(&p.data, &p.b, "replicated")?;
    let put = |value: &'static str| {
        let (http, url, vt) = (
            on_a.clone(),
            format!("{origin_a}/secrets/s?api-version=7.6"),
            vt.clone(),
        );
        async move {
            let r = http
                .put(url)
                .bearer_auth(vt)
                .json(&json!({"value": value}))
                .send()
                .await?;
            let status = r.status();
            let body: Value = r.json().await?;
            ensure!(status == 200, "set secret: {status} {body}");
            Ok::<_, anyhow::Error>(body)
        }
    };
    // B's view of the secret: (status, value).
    let read_b = || {
        let (http, url, vt) = (
            on_b.clone(),
            format!("{origin_b}/secrets/s?api-version=7.6"),
            vt.clone(),
        );
        async move {
            let r = http.get(url).bearer_auth(vt).send().await?;
            let status = r.status().as_u16();
            let body: Value = r.json().await?;
            Ok::<_, anyhow::Error>((status, body["value"].as_str().map(str::to_owned)))
        }
    };
    let until_b = |want: (u16, Option<&'static str>)| async move {
        let started = Instant::now();
        loop {
            let got = read_b().await?;
            if got.0 == want.0 && got.1.as_deref() == want.1 {
                return Ok::<_, anyhow::Error>(());
            }
            ensure!(
                started.elapsed() < PROPAGATION_BOUND,
                "B answered {got:?}, not {want:?}, {PROPAGATION_BOUND:?} after the change on A"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    put("one").await?;
    until_b((200, Some("one"))).await?;
    // Cached on B now: read again, then change it through A.
    assert_eq!(read_b().await?, (200, Some("one".to_owned())));
    let second = put("two").await?;
    until_b((200, Some("two"))).await?;
    // Disabling the current version through A: B refuses it (403), not the cached copy.
    let version = second["id"]
        .as_str()
        .and_then(|id| id.rsplit('/').next())
        .context("version")?;
    let r = on_a
        .patch(format!("{origin_a}/secrets/s/{version}?api-version=7.6"))
        .bearer_auth(&vt)
        .json(&json!({"attributes": {"enabled": false}}))
        .send()
        .await?;
    ensure!(r.status() == 200, "disable: {}", r.text().await?);
    until_b((403, None)).await?;
    // Deleting it through A: B answers 404.
    let r = on_a
        .delete(format!("{origin_a}/secrets/s?api-version=7.6"))
        .bearer_auth(&vt)
        .send()
        .await?;
    ensure!(r.status() == 200, "delete: {}", r.text().await?);
    until_b((404, None)).await?;
    Ok(())
}
