//! `keyless imds` against the real `keyless serve`: the sidecar starts with an expired
//! projected token (and says why it cannot serve), picks up the rotated file within
//! seconds, answers IMDS and App Service in their shapes, caches, and refuses what a
//! managed-identity endpoint refuses.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::testkit::{Identity, Server, TestIssuer, credential, jwt_claims, now, poll};

const ISSUED: &str = "keyless_tokens_issued_total{grant=\"client_assertion\"}";
const SUBJECT: &str = "system:serviceaccount:apps:legacy";
const SECRET: &str = "per-pod-identity-header-0123456789";

/// Keyless, an issuer it trusts through a static JWKS, and an identity federated with it.
struct Setup {
    server: Server,
    issuer: TestIssuer,
    identity: Identity,
    other: Identity,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Result<Setup> {
        let server = Server::start(&[]).await?;
        let issuer = TestIssuer::new("https://issuer.imds-test.example/c1")?;
        server
            .register_issuer("imds-test", &issuer.issuer, issuer.jwks())
            .await?;
        let identity = server
            .identity_with_credential("rg-imds", "legacy-app", credential(&issuer.issuer, SUBJECT))
            .await?;
        let other = server
            .identity_with_credential(
                "rg-imds",
                "someone-else",
                credential(&issuer.issuer, "system:serviceaccount:apps:other"),
            )
            .await?;
        Ok(Setup {
            server,
            issuer,
            identity,
            other,
            dir: tempfile::tempdir()?,
        })
    }

    /// Writes the projected token file atomically, like the kubelet.
    fn project(&self, expired: bool) -> Result<PathBuf> {
        let mut claims = self.issuer.claims(SUBJECT);
        if expired {
            claims["iat"] = json!(now() - 7200);
            claims["nbf"] = json!(now() - 7200);
            claims["exp"] = json!(now() - 3600);
        }
        let path = self.dir.path().join("azure-identity-token");
        let tmp = self.dir.path().join(".tmp");
        std::fs::write(&tmp, self.issuer.sign(&claims))?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// The resource manager's resource as az names it (with its trailing slash).
    fn arm(&self) -> String {
        let rm = self.server.admin.resource_manager_url.trim_end_matches('/');
        format!("{rm}/")
    }
}

/// A running `keyless imds`.
struct Imds {
    _child: Child,
    url: String,
    http: reqwest::Client,
}

impl Imds {
    async fn start(s: &Setup, token_file: &Path, extra: &[&str]) -> Result<Imds> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keyless"))
            .arg("imds")
            .args(["--listen", "127.0.0.1:0", "--failure-cache-seconds", "1"])
            .arg("--ca-file")
            .arg(s.server.data_dir().join("ca.pem"))
            .args(extra)
            .env("AZURE_CLIENT_ID", &s.identity.client_id)
            .env("AZURE_TENANT_ID", &s.server.admin.tenant_id)
            .env("AZURE_FEDERATED_TOKEN_FILE", token_file)
            .env("AZURE_AUTHORITY_HOST", &s.server.url)
            .env("IDENTITY_HEADER", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawning keyless imds")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("keyless imds: ready at ") {
                    return Ok::<_, anyhow::Error>(url.trim().to_owned());
                }
            }
            bail!("keyless imds exited before its ready line")
        })
        .await
        .context("no ready line within 20 s")??;
        assert!(ready.starts_with("http://127.0.0.1:"), "{ready}");
        Ok(Imds {
            _child: child,
            url: ready,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    async fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Value)> {
        let mut request = self.http.get(format!("{}{path_and_query}", self.url));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn imds(&self, resource: &str, extra: &str) -> Result<(StatusCode, Value)> {
        let q = format!(
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}{extra}",
            enc(resource)
        );
        self.get(&q, &[("Metadata", "true")]).await
    }

    async fn app_service(
        &self,
        resource: &str,
        extra: &str,
        secret: &str,
    ) -> Result<(StatusCode, Value)> {
        let q = format!(
            "/msi/token?api-version=2019-08-01&resource={}{extra}",
            enc(resource)
        );
        self.get(&q, &[("X-IDENTITY-HEADER", secret)]).await
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_expired_token_at_start_is_reported_then_the_rotated_file_is_used() -> Result<()> {
    let s = Setup::start().await?;
    let file = s.project(true)?;
    let imds = Imds::start(&s, &file, &[]).await?;
    let arm = s.arm();

    // Keyless' refusal reaches the app as a 4xx with the AADSTS reason, in each shape.
    let (status, body) = imds.imds(&arm, "").await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(
        text(&body, "error_description").starts_with("AADSTS700024"),
        "{body}"
    );
    let (status, body) = imds.app_service(&arm, "", SECRET).await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["statusCode"], 401, "{body}");
    assert!(text(&body, "message").starts_with("AADSTS700024"), "{body}");
    assert!(body["correlationId"].is_string(), "{body}");

    // The kubelet rotates the file: served within seconds.
    s.project(false)?;
    let started = Instant::now();
    let served = poll(10, || async {
        let (status, body) = imds.imds(&arm, "").await?;
        Ok((status == 200).then_some(body))
    })
    .await?
    .context("the rotated token file was not used within 10 s")?;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let claims = jwt_claims(&text(&served, "access_token"));
    assert_eq!(claims["oid"], json!(s.identity.principal_id));
    assert_eq!(claims["appid"], json!(s.identity.client_id));
    Ok(())
}

#[tokio::test]
async fn imds_and_app_service_answer_in_their_shapes_from_one_cached_token() -> Result<()> {
    let s = Setup::start().await?;
    let file = s.project(false)?;
    let imds = Imds::start(&s, &file, &[]).await?;
    let arm = s.arm();
    let before = s.server.metric(ISSUED).await?;

    let (status, body) = imds.imds(&arm, "").await?;
    assert_eq!(status, 200, "{body}");
    for field in [
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
    ] {
        assert!(body[field].is_string(), "{field} is not a string: {body}");
    }
    assert_eq!(body["resource"], json!(arm));
    assert_eq!(body["client_id"], json!(s.identity.client_id));
    assert_eq!(body["token_type"], "Bearer");
    let token = text(&body, "access_token");
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["aud"].as_str().map(|a| a.trim_end_matches('/')),
        Some(arm.trim_end_matches('/'))
    );
    let expires_on: i64 = text(&body, "expires_on").parse()?;
    assert!(
        (expires_on - claims["exp"].as_i64().unwrap_or(0)).abs() <= 5,
        "{body} {claims}"
    );
    let expires_in: i64 = text(&body, "expires_in").parse()?;
    assert!((expires_in - (expires_on - now())).abs() <= 5, "{body}");
    assert_eq!(text(&body, "not_before"), claims["nbf"].to_string());

    // MSAL Node's trailing-slash form, and App Service: the same cached token.
    let q = format!(
        "/metadata/identity/oauth2/token/?api-version=2019-08-01&resource={}",
        enc(&arm)
    );
    let (status, again) = imds.get(&q, &[("Metadata", "true")]).await?;
    assert_eq!(status, 200, "{again}");
    assert_eq!(text(&again, "access_token"), token);
    let (status, app) = imds.app_service(&arm, "", SECRET).await?;
    assert_eq!(status, 200, "{app}");
    assert_eq!(text(&app, "access_token"), token);
    assert_eq!(app["client_id"], json!(s.identity.client_id));
    assert_eq!(text(&app, "expires_on"), expires_on.to_string());
    assert_eq!(
        s.server.metric(ISSUED).await? - before,
        1,
        "one exchange for three answers"
    );

    // Naming its own identity, every way the SDKs do.
    let upper = s.identity.client_id.to_ascii_uppercase();
    let own = [
        format!("&client_id={upper}"),
        format!("&object_id={}", s.identity.principal_id),
        format!("&principal_id={}", s.identity.principal_id),
        format!("&msi_res_id={}", enc(&s.identity.id)),
        format!("&mi_res_id={}", enc(&s.identity.id.to_ascii_lowercase())),
    ];
    for q in &own {
        let (status, body) = imds.imds(&arm, q).await?;
        assert_eq!(status, 200, "IMDS {q}: {body}");
        let (status, body) = imds.app_service(&arm, q, SECRET).await?;
        assert_eq!(status, 200, "App Service {q}: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn refusals_in_each_protocols_shape() -> Result<()> {
    let s = Setup::start().await?;
    let file = s.project(false)?;
    let imds = Imds::start(&s, &file, &[]).await?;
    let arm = s.arm();
    let vault = format!("https://vault.localhost:{}", s.server.port);

    // Probes: JavaScript's (no query, no header) and Python's (no header) get a prompt 400.
    for q in [
        "/metadata/identity/oauth2/token".to_owned(),
        format!(
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
            enc(&arm)
        ),
    ] {
        let started = Instant::now();
        let (status, body) = imds.get(&q, &[]).await?;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(
            body["error_description"],
            "Required metadata header not specified"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // No resource.
    let (status, body) = imds
        .get(
            "/metadata/identity/oauth2/token?api-version=2018-02-01",
            &[("Metadata", "true")],
        )
        .await?;
    assert_eq!(status, 400, "{body}");

    // Another identity, by each selector: refused on both paths, no token.
    let others = [
        format!("&client_id={}", s.other.client_id),
        format!("&object_id={}", s.other.principal_id),
        format!("&principal_id={}", s.other.principal_id),
        format!("&msi_res_id={}", enc(&s.other.id)),
        format!("&mi_res_id={}", enc(&s.other.id)),
    ];
    for q in &others {
        let (status, body) = imds.imds(&vault, q).await?;
        assert_eq!(status, 400, "IMDS {q}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(
            text(&body, "error_description").starts_with("Identity not found"),
            "{body}"
        );
        assert!(body.get("access_token").is_none());
        let (status, body) = imds.app_service(&vault, q, SECRET).await?;
        assert_eq!(status, 400, "App Service {q}: {body}");
        assert_eq!(body["statusCode"], 400, "{body}");
        assert!(
            text(&body, "message").starts_with("Identity not found"),
            "{body}"
        );
    }

    // App Service: a wrong or missing secret, another api-version.
    for secret in [
        "",
        "wrong",
        &SECRET.to_ascii_uppercase(),
        &format!("{SECRET}x"),
    ] {
        let (status, body) = imds.app_service(&arm, "", secret).await?;
        assert_eq!(status, 401, "{secret:?}: {body}");
        assert_eq!(body["statusCode"], 401);
        assert!(body.get("access_token").is_none());
    }
    let (status, _) = imds
        .get(&format!("/msi/token?resource={}", enc(&arm)), &[])
        .await?;
    assert_eq!(status, 401);
    let (status, body) = imds
        .get(
            &format!("/msi/token?api-version=2017-09-01&resource={}", enc(&arm)),
            &[("X-IDENTITY-HEADER", SECRET)],
        )
        .await?;
    assert_eq!(status, 400, "{body}");

    // An unknown resource: Keyless' AADSTS500011, passed through as 400.
    let (status, body) = imds.imds("https://unknown.example", "").await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        text(&body, "error_description").starts_with("AADSTS500011"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn hostile_local_clients_are_bounded() -> Result<()> {
    let s = Setup::start().await?;
    let file = s.project(false)?;
    let imds = Imds::start(&s, &file, &["--max-connections", "4", "--no-imds"]).await?;
    let arm = s.arm();
    let addr = imds.url.trim_start_matches("http://").to_owned();

    // --no-imds: only the App Service path.
    let (status, _) = imds.imds(&arm, "").await?;
    assert_eq!(status, 404);
    let (status, body) = imds.app_service(&arm, "", SECRET).await?;
    assert_eq!(status, 200, "{body}");

    // An oversized request head is refused, not buffered.
    let (status, _) = imds
        .get(
            &format!(
                "/msi/token?api-version=2019-08-01&resource={}&pad={}",
                enc(&arm),
                "a".repeat(20_000)
            ),
            &[("X-IDENTITY-HEADER", SECRET)],
        )
        .await
        .unwrap_or((StatusCode::BAD_REQUEST, Value::Null));
    assert!(status.is_client_error(), "{status}");

    // Clients that connect and send nothing take every connection slot; the sidecar
    // closes them after the header timeout and serves again.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(&addr).await?);
    }
    let started = Instant::now();
    let (status, body) = imds.app_service(&arm, "", SECRET).await?;
    assert_eq!(status, 200, "{body}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5),
        "served past the cap after {waited:?}"
    );
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    // The idle ones were closed by the sidecar.
    for mut stream in idle {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf))
            .await
            .context("idle connection not closed")?
            .unwrap_or(0);
        let _ = stream.shutdown().await;
        assert!(
            n == 0 || buf.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            &buf[..n]
        );
    }
    Ok(())
}
