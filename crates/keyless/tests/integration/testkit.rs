//! Boots the real `keyless serve` binary on loopback and talks to it over HTTPS like a
//! user's client: the only trusted root is the server's own `ca.pem`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// api-version of resource groups.
pub const RG_API: &str = "2021-04-01";
/// api-version of identities and federated credentials.
pub const MI_API: &str = "2023-01-31";
/// api-version of role definitions and assignments.
pub const AUTHZ_API: &str = "2022-04-01";
/// api-version of tenants and subscriptions.
pub const SUB_API: &str = "2022-12-01";
/// api-version of Keyless' own endpoints (key rotation).
pub const KEYLESS_API: &str = "2024-01-01";

/// Built-in roles: (name, id).
pub const BUILTIN_ROLES: [(&str, &str); 9] = [
    ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    (
        "Key Vault Administrator",
        "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    ),
    (
        "Key Vault Secrets Officer",
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    ),
    (
        "Key Vault Secrets User",
        "4633458b-17de-408a-b874-0445c86b69e6",
    ),
    ("Key Vault Reader", "21090545-7ca7-4776-b22c-e363652d74d2"),
    (
        "Managed Identity Contributor",
        "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
    ),
    (
        "Managed Identity Operator",
        "f1a07417-d97a-45cb-824c-7a7467783830",
    ),
];

/// The id of a built-in role by name.
pub fn role_id(name: &str) -> &'static str {
    BUILTIN_ROLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| *id)
        .unwrap_or_else(|| panic!("no built-in role {name}"))
}

/// `{data-dir}/admin.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Admin {
    pub tenant_id: String,
    pub subscription_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub authority_host: String,
    pub resource_manager_url: String,
    pub ca_file: Option<String>,
}

/// An HTTP reply: status, headers and the body as JSON (`Null` when empty, a JSON
/// string when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The status as a number.
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an ARM error (`{"error":{"code","message"}}` and nothing else) with this
    /// status and code; returns the message.
    #[track_caller]
    pub fn arm_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.code(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        let obj = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("error body is not a JSON object: {}", self.body));
        assert_eq!(obj.len(), 1, "ARM error has exactly 'error': {}", self.body);
        let err = obj["error"]
            .as_object()
            .unwrap_or_else(|| panic!("no 'error' object: {}", self.body));
        assert_eq!(
            err["code"].as_str(),
            Some(code),
            "unexpected ARM code; body: {}",
            self.body
        );
        let message = err["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.body))
            .to_string();
        assert!(!message.is_empty(), "empty error message");
        message
    }

    /// Asserts an OAuth error in Entra's shape with this status, class and AADSTS code;
    /// returns the whole body.
    #[track_caller]
    pub fn oauth_error(&self, status: u16, error: &str, aadsts: u64) -> &Value {
        let b = &self.body;
        assert_eq!(self.code(), status, "unexpected status; body: {b}");
        assert_eq!(b["error"].as_str(), Some(error), "error class; body: {b}");
        assert_eq!(
            b["error_codes"],
            serde_json::json!([aadsts]),
            "error_codes; body: {b}"
        );
        let desc = b["error_description"].as_str().unwrap_or_default();
        assert!(
            desc.starts_with(&format!("AADSTS{aadsts}: ")),
            "error_description prefix: {desc}"
        );
        b
    }
}

async fn reply(resp: reqwest::Response) -> Result<Reply> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.context("reading the reply body")?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Installs the process-wide rustls crypto provider (aws-lc-rs), once.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A client that trusts exactly the PEM CA at `ca`.
pub fn client_trusting(ca: &Path) -> Result<reqwest::Client> {
    install_crypto_provider();
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).context("parsing ca.pem")?;
    ensure!(!certs.is_empty(), "ca.pem holds no certificate");
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .https_only(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// Decodes one base64url JWT part.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("token has no part {index}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("JWT part is base64url");
    serde_json::from_slice(&bytes).expect("JWT part is JSON")
}

/// The header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// The claims of a JWT.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

/// Whether `s` is a GUID in canonical lowercase 8-4-4-4-12 form.
pub fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// A running `keyless serve`.
pub struct Server {
    child: Option<Child>,
    /// Tasks copying the server's stdout and stderr; they end at EOF.
    drains: Vec<tokio::task::JoinHandle<()>>,
    data: tempfile::TempDir,
    extra_args: Vec<String>,
    /// `https://localhost:PORT`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
    /// The parsed admin.json.
    pub admin: Admin,
    /// Trusts only this server's CA.
    pub client: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    token: tokio::sync::Mutex<Option<String>>,
    /// The PostgreSQL database of this server, when the suite runs on PostgreSQL.
    _database: Option<TestDatabase>,
}

/// The storage backend the suite runs on: SQLite by default; with
/// `KEYLESS_TEST_BACKEND=postgres` every server gets a fresh database on the server at
/// `KEYLESS_TEST_POSTGRES_URL` (scripts/test.sh runs the suite once on each backend).
pub struct TestDatabase {
    admin: String,
    name: String,
    /// The database URL to pass as `--database-url`.
    pub url: String,
}

impl TestDatabase {
    /// A fresh database when the suite runs on PostgreSQL, else `None`.
    pub async fn for_backend() -> Result<Option<TestDatabase>> {
        if std::env::var("KEYLESS_TEST_BACKEND").as_deref() != Ok("postgres") {
            return Ok(None);
        }
        let admin = std::env::var("KEYLESS_TEST_POSTGRES_URL")
            .context("KEYLESS_TEST_BACKEND=postgres needs KEYLESS_TEST_POSTGRES_URL")?;
        let name = format!("keyless_it_{}", uuid::Uuid::new_v4().simple());
        let out = Command::new("psql")
            .arg(&admin)
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-qc",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .await
            .context("running psql")?;
        ensure!(
            out.status.success(),
            "CREATE DATABASE: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (base, _) = admin
            .rsplit_once('/')
            .context("no database in KEYLESS_TEST_POSTGRES_URL")?;
        Ok(Some(TestDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        }))
    }
}

impl Drop for TestDatabase {
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

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("url", &self.url).finish()
    }
}

struct Spawned {
    child: Child,
    drains: Vec<tokio::task::JoinHandle<()>>,
    url: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

async fn spawn(data_dir: &Path, listen: &str, extra_args: &[String]) -> Result<Spawned> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyless"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(listen)
        .args(extra_args)
        .env_remove("KEYLESS_DATA_DIR")
        .env_remove("KEYLESS_LISTEN")
        .env_remove("KEYLESS_PUBLIC_HOST")
        .env_remove("KEYLESS_DATABASE_URL")
        .env_remove("KEYLESS_KEK");
    launch(cmd, "keyless serve").await
}

/// Starts `cmd` (the `keyless` binary with its arguments), captures its output and
/// waits for its `... ready at URL` line.
async fn launch(mut cmd: Command, what: &str) -> Result<Spawned> {
    let mut child = cmd
        .env("KEYLESS_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {what}"))?;

    let stderr_buf = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let stderr_task = {
        let buf = stderr_buf.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut b = buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        })
    };

    let stdout_buf = Arc::new(Mutex::new(String::new()));
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let wait_ready = async {
        while let Some(line) = lines.next_line().await? {
            {
                let mut b = stdout_buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
            if let Some((_, url)) = line.split_once("ready at ") {
                return Ok::<_, anyhow::Error>(Some(url.trim().to_string()));
            }
        }
        Ok(None)
    };
    let ready = tokio::time::timeout(Duration::from_secs(30), wait_ready).await;
    let url = match ready {
        Ok(Ok(Some(url))) => url,
        other => {
            // Give the logger a moment to flush what explains the failure: wait for
            // the process (or at most 2 s) and for stderr to reach its end.
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), stderr_task).await;
            let why = match other {
                Err(_) => "no ready line within 30 s".to_string(),
                Ok(Ok(None)) => "stdout closed before the ready line".to_string(),
                Ok(Err(e)) => format!("reading stdout: {e}"),
                Ok(Ok(Some(_))) => unreachable!(),
            };
            bail!(
                "{what} did not start: {why}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                stdout_buf.lock().unwrap(),
                stderr_buf.lock().unwrap()
            );
        }
    };
    let stdout_task = {
        let buf = stdout_buf.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut b = buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        })
    };
    let authority = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .with_context(|| format!("unexpected ready URL {url}"))?;
    let port: u16 = authority
        .split('/')
        .next()
        .and_then(|authority| authority.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {url}"))?;
    Ok(Spawned {
        child,
        drains: vec![stdout_task, stderr_task],
        url,
        port,
        stderr: stderr_buf,
        stdout: stdout_buf,
    })
}

impl Server {
    /// Starts a server on a fresh data directory, port 0.
    pub async fn start(extra_args: &[&str]) -> Result<Server> {
        let data = tempfile::tempdir().context("creating the data dir")?;
        let mut extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let database = match TestDatabase::for_backend().await? {
            Some(db) if !extra.iter().any(|a| a == "--database-url") => {
                extra.push("--database-url".into());
                extra.push(db.url.clone());
                Some(db)
            }
            _ => None,
        };
        let spawned = spawn(&data.path().join("data"), "127.0.0.1:0", &extra).await?;
        let data_dir = data.path().join("data");
        let admin = load_admin(&data_dir)?;
        let client = client_trusting(&data_dir.join("ca.pem"))?;
        Ok(Server {
            child: Some(spawned.child),
            drains: spawned.drains,
            data,
            extra_args: extra,
            url: spawned.url,
            port: spawned.port,
            admin,
            client,
            stderr: spawned.stderr,
            stdout: spawned.stdout,
            token: tokio::sync::Mutex::new(None),
            _database: database,
        })
    }

    /// The database URL when the suite runs on PostgreSQL (else SQLite in the data dir).
    pub fn database_url(&self) -> Option<&str> {
        self._database.as_ref().map(|d| d.url.as_str())
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// Path of admin.json.
    pub fn admin_file(&self) -> PathBuf {
        self.data_dir().join("admin.json")
    }

    /// What the server logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Sends SIGTERM and asserts a clean exit (status 0) within 10 s.
    pub async fn stop(&mut self) -> Result<()> {
        self.stop_with("-TERM").await
    }

    /// Sends a signal (`-TERM`, `-INT`) and asserts a clean exit (status 0) within 10 s.
    pub async fn stop_with(&mut self, signal: &str) -> Result<()> {
        let mut child = self.child.take().context("server is not running")?;
        let pid = child.id().context("server already reaped")?;
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        ensure!(status.success(), "kill {signal} {pid} failed");
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .map_err(|_| anyhow!("server did not exit within 10 s of kill {signal}"))?
            .context("waiting for the server")?;
        // The pipes close with the process: wait until the last log line is captured.
        for drain in std::mem::take(&mut self.drains) {
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        }
        ensure!(
            exit.success(),
            "server exited with {exit} after kill {signal}; stderr:\n{}",
            self.stderr()
        );
        Ok(())
    }

    /// Stops the server and starts it again on the same data directory and the same
    /// port (so tokens minted before stay valid: their issuer names the port).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        let listen = format!("127.0.0.1:{}", self.port);
        self.relaunch(&listen).await
    }

    /// Stops the server and starts it again on the same data directory, any port.
    pub async fn restart_on_new_port(&mut self) -> Result<()> {
        self.stop().await?;
        self.relaunch("127.0.0.1:0").await
    }

    async fn relaunch(&mut self, listen: &str) -> Result<()> {
        let spawned = spawn(&self.data_dir(), listen, &self.extra_args).await?;
        self.child = Some(spawned.child);
        self.drains = spawned.drains;
        self.url = spawned.url;
        self.port = spawned.port;
        self.stderr = spawned.stderr;
        self.stdout = spawned.stdout;
        self.admin = load_admin(&self.data_dir())?;
        self.client = client_trusting(&self.data_dir().join("ca.pem"))?;
        *self.token.lock().await = None;
        Ok(())
    }

    /// `{url}{path}`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `/subscriptions/{sub}`.
    pub fn sub_path(&self) -> String {
        format!("/subscriptions/{}", self.admin.subscription_id)
    }

    /// The resource id of a resource group.
    pub fn rg_path(&self, rg: &str) -> String {
        format!("{}/resourceGroups/{rg}", self.sub_path())
    }

    /// The resource id of an identity.
    pub fn identity_path(&self, rg: &str, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
            self.rg_path(rg)
        )
    }

    /// The resource id of a federated credential.
    pub fn fic_path(&self, rg: &str, identity: &str, name: &str) -> String {
        format!(
            "{}/federatedIdentityCredentials/{name}",
            self.identity_path(rg, identity)
        )
    }

    /// `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
    pub fn assignment_path(scope: &str, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
            scope.trim_end_matches('/')
        )
    }

    /// POSTs a form to `path` (e.g. the token endpoint) with extra headers.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        let mut req = self.client.post(self.at(path)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send().await.context("POST form")?).await
    }

    /// POSTs raw bytes with a content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<Reply> {
        let resp = self
            .client
            .post(self.at(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .context("POST raw")?;
        reply(resp).await
    }

    /// A GET without authentication.
    pub async fn get(&self, path: &str) -> Result<Reply> {
        let resp = self.client.get(self.at(path)).send().await.context("GET")?;
        reply(resp).await
    }

    /// `/{tenant}/oauth2/v2.0/token`.
    pub fn token_path_v2(&self) -> String {
        format!("/{}/oauth2/v2.0/token", self.admin.tenant_id)
    }

    /// `/{tenant}/oauth2/token`.
    pub fn token_path_v1(&self) -> String {
        format!("/{}/oauth2/token", self.admin.tenant_id)
    }

    /// `{resourceManagerUrl}.default`.
    pub fn arm_scope(&self) -> String {
        format!("{}.default", self.admin.resource_manager_url)
    }

    /// A client-credentials token request (v2) with the admin's id and secret.
    pub async fn request_token(&self, scope: &str) -> Result<Reply> {
        let path = self.token_path_v2();
        self.post_form(
            &path,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &self.admin.client_id),
                ("client_secret", &self.admin.client_secret),
                ("scope", scope),
            ],
            &[],
        )
        .await
    }

    /// A fresh admin token for `scope`.
    pub async fn token_for(&self, scope: &str) -> Result<String> {
        let r = self.request_token(scope).await?;
        ensure!(r.code() == 200, "token request failed: {}", r.body);
        r.body["access_token"]
            .as_str()
            .map(str::to_string)
            .context("no access_token")
    }

    /// The admin's management token (cached).
    pub async fn admin_token(&self) -> Result<String> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            return Ok(t.clone());
        }
        let t = self.token_for(&self.arm_scope()).await?;
        *cached = Some(t.clone());
        Ok(t)
    }

    /// The admin principal's object id (from its token).
    pub async fn admin_object_id(&self) -> Result<String> {
        let t = self.admin_token().await?;
        jwt_claims(&t)["oid"]
            .as_str()
            .map(str::to_string)
            .context("no oid claim")
    }

    /// A management call with an explicit `Authorization` header value (or none).
    /// `path` includes the query string.
    pub async fn arm_raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut req = self.client.request(method.clone(), self.at(path));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        reply(resp).await
    }

    /// A management call as the admin; `path` includes the query string.
    pub async fn arm(&self, method: Method, path: &str, body: Option<Value>) -> Result<Reply> {
        let token = self.admin_token().await?;
        self.arm_raw(
            method,
            path,
            Some(&format!("Bearer {token}")),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// A management call as the admin with `?api-version=` appended.
    pub async fn armv(
        &self,
        method: Method,
        path: &str,
        api: &str,
        body: Option<Value>,
    ) -> Result<Reply> {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.arm(method, &format!("{path}{sep}api-version={api}"), body)
            .await
    }

    /// Creates a resource group and asserts success.
    pub async fn create_rg(&self, rg: &str) -> Result<Value> {
        let r = self
            .armv(
                Method::PUT,
                &self.rg_path(rg),
                RG_API,
                Some(serde_json::json!({"location": "westeurope"})),
            )
            .await?;
        ensure!(
            r.code() == 201 || r.code() == 200,
            "creating {rg}: {} {}",
            r.code(),
            r.body
        );
        Ok(r.body)
    }

    /// Creates an identity and asserts success; returns its JSON.
    pub async fn create_identity(&self, rg: &str, name: &str) -> Result<Value> {
        let r = self
            .armv(
                Method::PUT,
                &self.identity_path(rg, name),
                MI_API,
                Some(serde_json::json!({"location": "westeurope"})),
            )
            .await?;
        ensure!(
            r.code() == 201 || r.code() == 200,
            "creating identity {name}: {} {}",
            r.code(),
            r.body
        );
        Ok(r.body)
    }

    /// PUTs a federated credential; returns the reply.
    pub async fn put_fic(
        &self,
        rg: &str,
        identity: &str,
        name: &str,
        properties: Value,
    ) -> Result<Reply> {
        self.armv(
            Method::PUT,
            &self.fic_path(rg, identity, name),
            MI_API,
            Some(serde_json::json!({ "properties": properties })),
        )
        .await
    }

    /// PUTs a role assignment; returns the reply.
    pub async fn put_assignment(
        &self,
        scope: &str,
        name: &str,
        role: &str,
        principal: &str,
    ) -> Result<Reply> {
        let body = serde_json::json!({"properties": {
            "roleDefinitionId": format!("{}/providers/Microsoft.Authorization/roleDefinitions/{role}", self.sub_path()),
            "principalId": principal,
            "principalType": "ServicePrincipal",
        }});
        self.armv(
            Method::PUT,
            &Self::assignment_path(scope, name),
            AUTHZ_API,
            Some(body),
        )
        .await
    }

    /// The role assignments of `principal` visible at `scope`.
    pub async fn assignments_of(&self, scope: &str, principal: &str) -> Result<Vec<Value>> {
        let path = format!(
            "{}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHZ_API}&$filter=principalId%20eq%20'{principal}'",
            scope.trim_end_matches('/')
        );
        let r = self.arm(Method::GET, &path, None).await?;
        ensure!(r.code() == 200, "listing assignments: {}", r.body);
        r.body["value"]
            .as_array()
            .cloned()
            .context("no value array")
    }

    /// The key ids published in the tenant's JWKS.
    pub async fn jwks_kids(&self) -> Result<Vec<String>> {
        let r = self
            .get(&format!("/{}/discovery/v2.0/keys", self.admin.tenant_id))
            .await?;
        ensure!(r.code() == 200, "JWKS: {}", r.body);
        let mut kids: Vec<String> = r.body["keys"]
            .as_array()
            .context("no keys")?
            .iter()
            .filter_map(|k| k["kid"].as_str().map(str::to_string))
            .collect();
        kids.sort();
        Ok(kids)
    }

    /// Asserts `/healthz` answers 200.
    pub async fn assert_healthy(&self) -> Result<()> {
        let r = self.get("/healthz").await?;
        ensure!(r.code() == 200, "healthz: {} {}", r.code(), r.body);
        Ok(())
    }

    /// Runs the binary as a CLI command with `KEYLESS_ADMIN_FILE` pointing at this
    /// server's admin.json.
    pub async fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        run_cli(args, &[("KEYLESS_ADMIN_FILE", &self.admin_file())]).await
    }
}

/// Runs the `keyless` binary with `args` and extra environment variables.
pub async fn run_cli(args: &[&str], env: &[(&str, &Path)]) -> Result<std::process::Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyless"));
    cmd.args(args)
        .env_remove("KEYLESS_DATA_DIR")
        .env_remove("KEYLESS_ADMIN_FILE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .map_err(|_| anyhow!("keyless {args:?} did not finish within 60 s"))?
        .context("running the CLI")?;
    Ok(out)
}

fn load_admin(data_dir: &Path) -> Result<Admin> {
    let path = data_dir.join("admin.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// A running `keyless console --no-open` acting with a server's admin file.
pub struct ConsoleProcess {
    child: Child,
    _drains: Vec<tokio::task::JoinHandle<()>>,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub origin: String,
    /// The port it listens on.
    pub port: u16,
    /// The launch secret (the ready URL's fragment).
    pub secret: String,
    /// A plain HTTP client (the console is loopback HTTP).
    pub client: reqwest::Client,
    stdout: Arc<Mutex<String>>,
    _cwd: tempfile::TempDir,
}

impl ConsoleProcess {
    /// What the console printed so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Stops the console with SIGTERM and waits for a clean exit.
    pub async fn stop(&mut self) -> Result<()> {
        let pid = self.child.id().context("console already reaped")?;
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        ensure!(status.success(), "kill -TERM {pid} failed");
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .map_err(|_| anyhow!("the console did not exit within 10 s of SIGTERM"))?
            .context("waiting for the console")?;
        ensure!(exit.success(), "the console exited with {exit}");
        Ok(())
    }
}

impl Drop for ConsoleProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Server {
    /// Starts `keyless console --no-open` with this server's admin file, waits for its
    /// ready line and returns it.
    pub async fn console(&self, extra_args: &[&str]) -> Result<ConsoleProcess> {
        let mut args = vec!["--no-open"];
        args.extend_from_slice(extra_args);
        start_console(&args, &[("KEYLESS_ADMIN_FILE", &self.admin_file())]).await
    }
}

/// Starts `keyless console ARGS` with only the given credential environment (no admin
/// file or data directory from the caller's environment), in a fresh working directory
/// (so no `./keyless-data/admin.json` is found by accident).
pub async fn start_console(args: &[&str], env: &[(&str, &Path)]) -> Result<ConsoleProcess> {
    let cwd = tempfile::tempdir().context("creating a working directory")?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyless"));
    cmd.arg("console")
        .args(args)
        .current_dir(cwd.path())
        .env_remove("KEYLESS_DATA_DIR")
        .env_remove("KEYLESS_ADMIN_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let spawned = launch(cmd, "keyless console").await?;
    let (origin, secret) = spawned
        .url
        .split_once("/#")
        .with_context(|| format!("no #secret in the ready URL {}", spawned.url))?;
    Ok(ConsoleProcess {
        child: spawned.child,
        _drains: spawned.drains,
        origin: origin.to_owned(),
        port: spawned.port,
        secret: secret.to_owned(),
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the HTTP client")?,
        stdout: spawned.stdout,
        _cwd: cwd,
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

// ---------------------------------------------------------------------------------
// Federation: the dev cluster issuer, crafted tokens, exchanges, metrics.
// ---------------------------------------------------------------------------------

/// The audience the workload identity webhook projects tokens for.
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// `client_assertion_type` of the assertion grant.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Now, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Unpadded base64url.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A running `keyless dev-cluster`: a stand-in Kubernetes service-account issuer that
/// serves discovery and its JWKS over HTTPS with its own CA (`ca.pem`).
pub struct DevCluster {
    child: Option<Child>,
    drains: Vec<tokio::task::JoinHandle<()>>,
    data: tempfile::TempDir,
    /// The issuer URL (`iss` of its tokens), e.g. `https://localhost:PORT`.
    pub issuer: String,
    /// `https://localhost:PORT`, where `/mint` and `/rotate` live.
    pub origin: String,
    /// Trusts only the dev cluster's CA.
    pub client: reqwest::Client,
    stderr: Arc<Mutex<String>>,
}

impl std::fmt::Debug for DevCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCluster")
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl DevCluster {
    /// Starts `keyless dev-cluster` on 127.0.0.1, port 0, with a fresh data directory
    /// and `extra_args` (e.g. `--token-file F --namespace NS --service-account SA`,
    /// `--issuer-path /p`); waits for its ready line.
    pub async fn start(extra_args: &[&str]) -> Result<DevCluster> {
        let data = tempfile::tempdir().context("creating the dev cluster dir")?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyless"));
        cmd.arg("dev-cluster")
            .arg("--data-dir")
            .arg(data.path().join("cluster"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra_args)
            .env_remove("KEYLESS_DEV_CLUSTER_DATA_DIR");
        let spawned = launch(cmd, "keyless dev-cluster").await?;
        let client = client_trusting(&data.path().join("cluster").join("ca.pem"))?;
        Ok(DevCluster {
            child: Some(spawned.child),
            drains: spawned.drains,
            data,
            origin: format!("https://localhost:{}", spawned.port),
            issuer: spawned.url,
            client,
            stderr: spawned.stderr,
        })
    }

    /// The dev cluster's CA certificate (what Keyless needs in `--trust-ca`).
    pub fn ca_path(&self) -> PathBuf {
        self.data.path().join("cluster").join("ca.pem")
    }

    /// What the dev cluster logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `POST /mint` with this body (every field optional:
    /// `namespace`, `serviceAccount`, `audiences`, `expirationSeconds`, `podName`).
    pub async fn mint_with(&self, body: Value) -> Result<String> {
        let resp = self
            .client
            .post(format!("{}/mint", self.origin))
            .json(&body)
            .send()
            .await
            .context("POST /mint")?;
        let r = reply(resp).await?;
        ensure!(
            r.code() == 200,
            "mint {body}: {} {}\n--- dev cluster log ---\n{}",
            r.code(),
            r.body,
            self.stderr()
        );
        r.body["token"]
            .as_str()
            .map(str::to_string)
            .context("no token in the mint reply")
    }

    /// A token for `system:serviceaccount:{namespace}:{service_account}` with the
    /// exchange audience, valid for an hour.
    pub async fn mint(&self, namespace: &str, service_account: &str) -> Result<String> {
        self.mint_with(serde_json::json!({
            "namespace": namespace,
            "serviceAccount": service_account,
            "audiences": [EXCHANGE_AUDIENCE],
            "expirationSeconds": 3600,
            "podName": "pod-1",
        }))
        .await
    }

    /// `POST /rotate`: a new signing key, published next to the old one; returns the
    /// new key id.
    pub async fn rotate(&self) -> Result<String> {
        let resp = self
            .client
            .post(format!("{}/rotate", self.origin))
            .send()
            .await
            .context("POST /rotate")?;
        let r = reply(resp).await?;
        ensure!(
            r.code() == 200,
            "rotate: {} {}\n--- dev cluster log ---\n{}",
            r.code(),
            r.body,
            self.stderr()
        );
        r.body["kid"]
            .as_str()
            .map(str::to_string)
            .context("no kid in the rotate reply")
    }

    /// The key ids of the published JWKS.
    pub async fn jwks_kids(&self) -> Result<Vec<String>> {
        let resp = self
            .client
            .get(format!("{}/openid/v1/jwks", self.issuer))
            .send()
            .await
            .context("GET jwks")?;
        let r = reply(resp).await?;
        ensure!(r.code() == 200, "jwks: {} {}", r.code(), r.body);
        Ok(r.body["keys"]
            .as_array()
            .context("no keys")?
            .iter()
            .filter_map(|k| k["kid"].as_str().map(str::to_string))
            .collect())
    }

    /// Sends a signal (`-STOP`, `-CONT`, `-KILL`) to the dev cluster process.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .context("the dev cluster is not running")?;
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// Stops the dev cluster for good (SIGKILL, like a crashed or unreachable issuer)
    /// and waits until its port is closed.
    pub async fn kill(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .context("the dev cluster is not running")?;
        child.start_kill().context("killing the dev cluster")?;
        tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .map_err(|_| anyhow!("the dev cluster did not exit within 10 s"))?
            .context("waiting for the dev cluster")?;
        for drain in std::mem::take(&mut self.drains) {
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        }
        Ok(())
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // A stopped process would not act on SIGKILL until continued.
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-CONT")
                    .arg(pid.to_string())
                    .status();
            }
            let _ = child.start_kill();
        }
    }
}

/// A managed identity made for a test.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its resource id, as ARM returned it.
    pub id: String,
    /// Its client id.
    pub client_id: String,
    /// Its principal (object) id.
    pub principal_id: String,
}

/// Federated credential properties: issuer, subject and the exchange audience.
pub fn credential(issuer: &str, subject: &str) -> Value {
    serde_json::json!({"issuer": issuer, "subject": subject, "audiences": [EXCHANGE_AUDIENCE]})
}

/// Everything a token request needs, cheap to clone into tasks.
#[derive(Debug, Clone)]
pub struct Exchanger {
    client: reqwest::Client,
    url_v2: String,
    url_v1: String,
    /// The resource manager URL (`aud` of the tokens asked for).
    pub resource: String,
}

impl Exchanger {
    /// Exchanges `assertion` for a resource manager token at the v2 endpoint.
    pub async fn exchange(&self, client_id: &str, assertion: &str) -> Result<Reply> {
        self.exchange_with(client_id, assertion, &[]).await
    }

    /// The same with extra request headers (e.g. `client-request-id`).
    pub async fn exchange_with(
        &self,
        client_id: &str,
        assertion: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        let scope = format!("{}.default", self.resource);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", scope.as_str()),
        ];
        self.post(&self.url_v2, &form, headers).await
    }

    /// Exchanges `assertion` at the v1 endpoint (`resource=`).
    pub async fn exchange_v1(&self, client_id: &str, assertion: &str) -> Result<Reply> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("resource", self.resource.as_str()),
        ];
        self.post(&self.url_v1, &form, &[]).await
    }

    /// POSTs a raw form to the v2 token endpoint.
    pub async fn post_v2(&self, form: &[(&str, &str)]) -> Result<Reply> {
        self.post(&self.url_v2, form, &[]).await
    }

    async fn post(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        let mut req = self.client.post(url).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send().await.context("POST token")?).await
    }
}

impl Server {
    /// Starts a server that trusts the dev cluster: `--allow-private-issuers` and
    /// `--trust-ca {cluster ca.pem}`.
    pub async fn start_trusting(cluster: &DevCluster) -> Result<Server> {
        Server::start_trusting_with(cluster, &[]).await
    }

    /// [`Server::start_trusting`] with more `keyless serve` arguments.
    pub async fn start_trusting_with(cluster: &DevCluster, extra: &[&str]) -> Result<Server> {
        let ca = cluster.ca_path();
        let ca = ca.to_str().context("non-UTF-8 temp path")?;
        let mut args = vec!["--allow-private-issuers", "--trust-ca", ca];
        args.extend_from_slice(extra);
        Server::start(&args).await
    }

    /// A token-request helper for this server.
    pub fn exchanger(&self) -> Exchanger {
        Exchanger {
            client: self.client.clone(),
            url_v2: self.at(&self.token_path_v2()),
            url_v1: self.at(&self.token_path_v1()),
            resource: self.admin.resource_manager_url.clone(),
        }
    }

    /// Exchanges `assertion` for a resource manager token (v2 endpoint).
    pub async fn exchange(&self, client_id: &str, assertion: &str) -> Result<Reply> {
        self.exchanger().exchange(client_id, assertion).await
    }

    /// Creates resource group `rg` (if needed), identity `name` in it, and federated
    /// credential `fic1` with `properties`.
    pub async fn identity_with_credential(
        &self,
        rg: &str,
        name: &str,
        properties: Value,
    ) -> Result<Identity> {
        self.create_rg(rg).await?;
        let body = self.create_identity(rg, name).await?;
        let r = self.put_fic(rg, name, "fic1", properties).await?;
        ensure!(
            r.code() == 201,
            "creating the credential: {} {}",
            r.code(),
            r.body
        );
        let s = |v: &Value| v.as_str().map(str::to_string).context("missing field");
        Ok(Identity {
            id: s(&body["id"])?,
            client_id: s(&body["properties"]["clientId"])?,
            principal_id: s(&body["properties"]["principalId"])?,
        })
    }

    /// Registers an issuer with a static JWKS (`PUT /providers/Keyless/trustedIssuers`).
    pub async fn register_issuer(&self, name: &str, issuer: &str, jwks: Value) -> Result<()> {
        let r = self
            .armv(
                Method::PUT,
                &format!("/providers/Keyless/trustedIssuers/{name}"),
                KEYLESS_API,
                Some(serde_json::json!({"properties": {"issuer": issuer, "jwks": jwks}})),
            )
            .await?;
        ensure!(
            r.code() == 201 || r.code() == 200,
            "registering {issuer}: {} {}",
            r.code(),
            r.body
        );
        Ok(())
    }

    /// A counter from `GET /metrics`.
    pub async fn metric(&self, name: &str) -> Result<u64> {
        let resp = self
            .client
            .get(self.at("/metrics"))
            .bearer_auth(self.admin_token().await?)
            .send()
            .await
            .context("GET /metrics")?;
        ensure!(resp.status() == 200, "/metrics: {}", resp.status());
        let text = resp.text().await?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {name} in /metrics:\n{text}"))
    }

    /// `keyless_issuer_metadata_fetches_total`.
    pub async fn issuer_fetches(&self) -> Result<u64> {
        self.metric("keyless_issuer_metadata_fetches_total").await
    }
}

/// Keys of a test-only issuer registered with a static JWKS, for tokens no real
/// issuer would mint (expired, forged, malformed...).
pub struct TestIssuer {
    /// `iss`.
    pub issuer: String,
    /// RS256 key, kid `rsa-1`.
    pub rsa: keyless_jose::SigningKey,
    /// ES256 key, kid `ec-1`.
    pub ec: keyless_jose::SigningKey,
}

impl TestIssuer {
    /// Fresh keys for `issuer`.
    pub fn new(issuer: &str) -> Result<TestIssuer> {
        use keyless_jose::{Alg, SigningKey};
        Ok(TestIssuer {
            issuer: issuer.to_string(),
            rsa: SigningKey::generate(Alg::RS256, "rsa-1".into())?,
            ec: SigningKey::generate(Alg::ES256, "ec-1".into())?,
        })
    }

    /// The JWKS to register.
    pub fn jwks(&self) -> Value {
        serde_json::json!({"keys": [self.rsa.public_jwk(), self.ec.public_jwk()]})
    }

    /// Kubernetes-like claims for `subject`, audience the exchange audience, valid
    /// for ten minutes from now.
    pub fn claims(&self, subject: &str) -> Value {
        let now = now();
        serde_json::json!({
            "aud": [EXCHANGE_AUDIENCE],
            "exp": now + 600,
            "iat": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "sub": subject,
        })
    }

    /// `claims` signed RS256 with the issuer's RSA key (header `typ, alg, kid`).
    pub fn sign(&self, claims: &Value) -> String {
        self.rsa.sign_jwt("JWT", claims).expect("signing")
    }

    /// A compact JWS with exactly this header, RS256-signed with `key`'s private key
    /// (whatever the header says).
    pub fn sign_raw(key: &keyless_jose::SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = rs256(key, input.as_bytes());
        format!("{input}.{}", b64url(&sig))
    }
}

/// RS256 (RSASSA-PKCS1-v1_5 SHA-256) over `message` with an RSA key, through rustls'
/// signer (the JOSE crate only signs with its own headers).
pub fn rs256(key: &keyless_jose::SigningKey, message: &[u8]) -> Vec<u8> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).expect("RSA key");
    let signer = signing
        .choose_scheme(&[rustls::SignatureScheme::RSA_PKCS1_SHA256])
        .expect("RS256 signer");
    signer.sign(message).expect("signing")
}

/// HMAC-SHA256 (RFC 2104), for forging `HS256` tokens.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&keyless_jose::sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = block.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>();
    inner.extend_from_slice(message);
    let mut outer = block.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>();
    outer.extend_from_slice(&keyless_jose::sha256(&inner));
    keyless_jose::sha256(&outer)
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `secs` seconds.
pub async fn poll<T, F, Fut>(secs: u64, mut f: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await? {
            return Ok(Some(v));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `token` with its header replaced (payload and signature kept, so the signature no
/// longer matches — for tests that must fail before the signature is checked).
pub fn with_header(token: &str, header: &Value) -> String {
    let rest = token.split_once('.').map(|(_, r)| r).unwrap_or_default();
    format!("{}.{rest}", b64url(header.to_string().as_bytes()))
}

/// Asserts an Entra-shaped error (status, class, AADSTS code) whose description
/// contains every one of `needles`; returns the description.
#[track_caller]
pub fn assert_refused(r: &Reply, status: u16, error: &str, code: u64, needles: &[&str]) -> String {
    r.oauth_error(status, error, code);
    let desc = r.body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for n in needles {
        assert!(
            desc.contains(n),
            "AADSTS{code}: the description should contain {n:?}: {desc}"
        );
    }
    desc
}
