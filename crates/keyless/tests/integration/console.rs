//! `keyless console`: the real binary next to a real `keyless serve`, driven over HTTP
//! like a browser (and like the pages and processes that must be refused).

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::testkit::{AUTHZ_API, ConsoleProcess, MI_API, Server, role_id, run_cli, start_console};

const SECRET_HEADER: &str = "X-Keyless-Console";
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// Every asset the page loads.
const ASSETS: [&str; 12] = [
    "/",
    "/style.css",
    "/js/app.js",
    "/js/api.js",
    "/js/dom.js",
    "/js/validate.js",
    "/js/overview.js",
    "/js/identities.js",
    "/js/credentials.js",
    "/js/roles.js",
    "/js/vaults.js",
    "/js/signins.js",
];

async fn started() -> Result<(Server, ConsoleProcess)> {
    let server = Server::start(&[]).await?;
    let console = server.console(&[]).await?;
    Ok((server, console))
}

/// A request as the console's own page sends it.
fn page_request(c: &ConsoleProcess, method: Method, path: &str) -> reqwest::RequestBuilder {
    c.client
        .request(method, format!("{}{path}", c.origin))
        .header(SECRET_HEADER, &c.secret)
        .header("Origin", &c.origin)
}

async fn json_of(r: reqwest::Response) -> Result<(StatusCode, Value)> {
    let status = r.status();
    let text = r.text().await?;
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?
    };
    Ok((status, body))
}

/// A GET with the path exactly as given, over a plain socket; returns the status code.
async fn raw_get(c: &ConsoleProcess, path: &str) -> Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", c.port)).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{SECRET_HEADER}: {}\r\nConnection: close\r\n\r\n",
        c.port, c.secret
    );
    stream.write_all(request.as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {reply}"))
}

#[tokio::test]
async fn console_prints_its_url_with_a_fresh_secret() -> Result<()> {
    let (server, console) = started().await?;
    let line = console.stdout();
    ensure!(
        line.contains(&format!(
            "keyless console: ready at http://127.0.0.1:{}/#",
            console.port
        )),
        "{line}"
    );
    ensure!(console.secret.len() == 43, "secret {:?}", console.secret);
    ensure!(
        console
            .secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "not base64url: {}",
        console.secret
    );
    let second = server.console(&[]).await?;
    ensure!(
        second.secret != console.secret,
        "the secret must differ per launch"
    );
    Ok(())
}

#[tokio::test]
async fn api_calls_need_the_launch_secret() -> Result<()> {
    let (server, c) = started().await?;
    let url = format!("{}/api/session", c.origin);
    // No secret.
    let (status, body) = json_of(c.client.get(&url).send().await?).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "ConsoleSecretRequired");
    // A wrong one, of the right length and of another length.
    let wrong = format!("{}x", &c.secret[..c.secret.len() - 1]);
    for bad in [wrong.as_str(), "", "x"] {
        let r = c.client.get(&url).header(SECRET_HEADER, bad).send().await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "secret {bad:?}");
    }
    // The management relay is refused the same way: nothing reaches the server.
    let r = c
        .client
        .get(format!(
            "{}/api/arm/subscriptions?api-version=2022-12-01",
            c.origin
        ))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The right one.
    let (status, body) =
        json_of(page_request(&c, Method::GET, "/api/session").send().await?).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["clientId"], server.admin.client_id.as_str());
    assert_eq!(
        body["subscriptionId"],
        server.admin.subscription_id.as_str()
    );
    ensure!(!body.to_string().contains("eyJ"), "a token in {body}");
    ensure!(
        !body.to_string().contains(&server.admin.client_secret),
        "the admin secret in {body}"
    );
    Ok(())
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused() -> Result<()> {
    let (_server, c) = started().await?;
    // Another page (even another port on loopback) driving the API.
    for origin in [
        "https://evil.example",
        "http://localhost:1",
        "null",
        &format!("http://127.0.0.1:{}.evil.example", c.port),
    ] {
        let r = c
            .client
            .get(format!("{}/api/session", c.origin))
            .header(SECRET_HEADER, &c.secret)
            .header("Origin", origin)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "origin {origin}");
        ensure!(r.headers().get("access-control-allow-origin").is_none());
    }
    // A browser's cross-site fetch without an Origin header (Fetch Metadata).
    let r = c
        .client
        .get(format!("{}/api/session", c.origin))
        .header(SECRET_HEADER, &c.secret)
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // DNS rebinding: our address under another name, for the page and for the API.
    for path in ["/", "/api/session"] {
        let r = c
            .client
            .get(format!("{}{path}", c.origin))
            .header(SECRET_HEADER, &c.secret)
            .header("Host", format!("rebind.evil.example:{}", c.port))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
    }
    // Our own names are fine.
    for host in [
        format!("127.0.0.1:{}", c.port),
        format!("localhost:{}", c.port),
    ] {
        let r = c
            .client
            .get(format!("{}/api/session", c.origin))
            .header(SECRET_HEADER, &c.secret)
            .header("Host", &host)
            .header("Origin", format!("http://{host}"))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::OK, "host {host}");
    }
    Ok(())
}

#[tokio::test]
async fn no_cors_and_strict_headers_everywhere() -> Result<()> {
    let (_server, c) = started().await?;
    // A CORS preflight from another origin gets no allowance.
    let r = c
        .client
        .request(Method::OPTIONS, format!("{}/api/session", c.origin))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "x-keyless-console")
        .send()
        .await?;
    ensure!(
        !r.status().is_success(),
        "preflight answered {}",
        r.status()
    );
    ensure!(
        r.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
    for path in ASSETS.iter().chain(&["/api/session", "/nope"]) {
        let r = page_request(&c, Method::GET, path).send().await?;
        let h = r.headers();
        ensure!(
            h.keys().all(|k| !k.as_str().starts_with("access-control-")),
            "{path}: CORS header in {h:?}"
        );
        assert_eq!(
            h.get("content-security-policy")
                .and_then(|v| v.to_str().ok()),
            Some(CSP),
            "{path}"
        );
        assert_eq!(
            h.get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            h.get("referrer-policy").and_then(|v| v.to_str().ok()),
            Some("no-referrer"),
            "{path}"
        );
        if path.starts_with("/api/") {
            assert_eq!(
                h.get("cache-control").and_then(|v| v.to_str().ok()),
                Some("no-store"),
                "{path}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_page_holds_no_token_and_loads_only_its_own_assets() -> Result<()> {
    let (server, c) = started().await?;
    for path in ASSETS {
        // Assets carry no data: they load without the secret, as the browser first asks.
        let r = c.client.get(format!("{}{path}", c.origin)).send().await?;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = r.text().await?;
        ensure!(!text.contains("eyJ"), "{path} contains a JWT");
        ensure!(
            !text.contains(&server.admin.client_secret),
            "{path} contains the admin secret"
        );
        ensure!(
            !text.contains(&c.secret),
            "{path} contains the launch secret"
        );
        ensure!(
            !text.contains("innerHTML"),
            "{path} renders through innerHTML"
        );
        ensure!(
            !text.contains("http://") || path == "/js/overview.js",
            "{path} loads something from elsewhere"
        );
        ensure!(
            !text.contains("https://fonts") && !text.contains("cdn"),
            "{path} uses a CDN"
        );
        if path == "/" {
            ensure!(ct.starts_with("text/html"), "{ct}");
        } else if path.ends_with(".js") {
            ensure!(ct.starts_with("text/javascript"), "{ct}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn state_changes_must_be_json() -> Result<()> {
    let (_server, c) = started().await?;
    // What an HTML form could send (a "simple" request, no preflight).
    let r = page_request(
        &c,
        Method::POST,
        "/api/arm/providers/Keyless/explain?api-version=2024-01-01",
    )
    .header("Content-Type", "application/x-www-form-urlencoded")
    .body("clientId=x&assertion=y")
    .send()
    .await?;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = page_request(
        &c,
        Method::DELETE,
        "/api/arm/subscriptions/x?api-version=2022-12-01",
    )
    .send()
    .await?;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Static pages are read-only.
    let r = c
        .client
        .post(format!("{}/", c.origin))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Bodies are bounded.
    let huge = json!({"value": "x".repeat(300 * 1024)});
    let r = page_request(&c, Method::PUT, "/api/vault/some-vault/secrets/big")
        .json(&huge)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Only management roots are relayed, and paths cannot climb out.
    for path in ["/api/arm/healthz", "/api/arm/metrics", "/api/nope"] {
        let r = page_request(&c, Method::GET, path).send().await?;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Sent as written (an HTTP client would normalise the dots away first).
    for path in [
        "/api/arm/subscriptions/%2e%2e/metrics",
        "/api/arm/subscriptions/%2E./healthz",
        "/api/arm/subscriptions/../metrics",
        "/api/arm/subscriptions//x",
    ] {
        assert_eq!(raw_get(&c, path).await?, 400, "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn management_calls_are_relayed_with_the_apis_own_errors() -> Result<()> {
    let (server, c) = started().await?;
    let sub = server.sub_path();
    server.create_rg("console-rg").await?;
    // Create through the console, see it through the API.
    let id_path = server.identity_path("console-rg", "console-app");
    let (status, body) = json_of(
        page_request(
            &c,
            Method::PUT,
            &format!("/api/arm{id_path}?api-version={MI_API}"),
        )
        .json(&json!({"location": "westeurope"}))
        .send()
        .await?,
    )
    .await?;
    ensure!(status.is_success(), "{status} {body}");
    let principal = body["properties"]["principalId"]
        .as_str()
        .context("principalId")?
        .to_owned();
    let r = server.armv(Method::GET, &id_path, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    // A list through the console.
    let (status, body) = json_of(
        page_request(
            &c,
            Method::GET,
            &format!("/api/arm{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version={MI_API}"),
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    ensure!(
        body["value"]
            .as_array()
            .is_some_and(|v| v.iter().any(|i| i["name"] == "console-app")),
        "{body}"
    );
    ensure!(body.get("nextLink").is_none(), "{body}");
    // The API's error, as the API worded it.
    let (status, body) = json_of(
        page_request(
            &c,
            Method::GET,
            &format!(
                "/api/arm{}?api-version={MI_API}",
                server.identity_path("console-rg", "missing")
            ),
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing")),
        "{body}"
    );
    // A credential the API refuses: its validation message comes back as written.
    let (status, body) = json_of(
        page_request(
            &c,
            Method::PUT,
            &format!("/api/arm{id_path}/federatedIdentityCredentials/k8s?api-version={MI_API}"),
        )
        .json(&json!({"properties": {"issuer": "http://plain.example", "subject": "s", "audiences": ["api://AzureADTokenExchange"]}}))
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("must be an https URL")),
        "{body}"
    );
    // Grant and list by principal.
    let assignment = format!(
        "{sub}/providers/Microsoft.Authorization/roleAssignments/{}",
        uuid::Uuid::new_v4()
    );
    let (status, body) = json_of(
        page_request(&c, Method::PUT, &format!("/api/arm{assignment}?api-version={AUTHZ_API}"))
            .json(&json!({"properties": {
                "roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{}", role_id("Key Vault Secrets User")),
                "principalId": principal,
                "principalType": "ServicePrincipal"}}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status.is_success(), "{status} {body}");
    let assigned = server.assignments_of(&sub, &principal).await?;
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    Ok(())
}

#[tokio::test]
async fn secrets_are_revealed_only_as_rbac_allows() -> Result<()> {
    let (server, c) = started().await?;
    server.create_rg("kv-rg").await?;
    for args in [
        vec!["keyvault", "create", "-n", "console-kv", "-g", "kv-rg"],
        vec![
            "keyvault",
            "secret",
            "set",
            "--vault-name",
            "console-kv",
            "-n",
            "db-password",
            "--value",
            "hunter2-console",
        ],
    ] {
        let out = server.cli(&args).await?;
        ensure!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The list shows names, never values.
    let (status, body) = json_of(
        page_request(&c, Method::GET, "/api/vault/console-kv/secrets")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    ensure!(!body.to_string().contains("hunter2-console"), "{body}");
    ensure!(body.to_string().contains("db-password"), "{body}");
    // Reveal.
    let (status, body) = json_of(
        page_request(&c, Method::GET, "/api/vault/console-kv/secrets/db-password")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], "hunter2-console");
    // Without data-plane rights (Owner has none), the vault's own 403 comes back.
    let oid = server.admin_object_id().await?;
    for a in server.assignments_of(&server.sub_path(), &oid).await? {
        if a["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap_or_default()
            .ends_with(role_id("Key Vault Administrator"))
        {
            let r = server
                .arm(
                    Method::DELETE,
                    &format!(
                        "{}?api-version={AUTHZ_API}",
                        a["id"].as_str().unwrap_or_default()
                    ),
                    None,
                )
                .await?;
            ensure!(r.code() == 200, "{}", r.body);
        }
    }
    let (status, body) = json_of(
        page_request(&c, Method::GET, "/api/vault/console-kv/secrets/db-password")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    ensure!(!body.to_string().contains("hunter2-console"), "{body}");
    Ok(())
}

#[tokio::test]
async fn only_loopback_addresses_are_accepted() -> Result<()> {
    let server = Server::start(&[]).await?;
    let out = run_cli(
        &["console", "--no-open", "--listen", "0.0.0.0:0"],
        &[("KEYLESS_ADMIN_FILE", &server.admin_file())],
    )
    .await?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("not a loopback address"), "{err}");
    Ok(())
}

#[tokio::test]
async fn the_signed_in_account_is_used_when_there_is_no_admin_file() -> Result<()> {
    let server = Server::start(&[]).await?;
    let config = tempfile::tempdir()?;
    let ca = server.data_dir().join("ca.pem");
    let password = format!("--password={}", server.admin.client_secret);
    let out = run_cli(
        &[
            "login",
            "--service-principal",
            "-u",
            &server.admin.client_id,
            "-t",
            &server.admin.tenant_id,
            &password,
            "--authority",
            &server.url,
            "--ca-file",
            ca.to_str().context("path")?,
        ],
        &[("KEYLESS_CONFIG_DIR", config.path())],
    )
    .await?;
    ensure!(
        out.status.success(),
        "login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = start_console(&["--no-open"], &[("KEYLESS_CONFIG_DIR", config.path())]).await?;
    let (status, body) =
        json_of(page_request(&c, Method::GET, "/api/session").send().await?).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["source"], "signed-in account");
    assert_eq!(body["clientId"], server.admin.client_id.as_str());
    assert_eq!(
        body["subscriptionId"],
        server.admin.subscription_id.as_str()
    );
    let (status, body) = json_of(
        page_request(
            &c,
            Method::GET,
            "/api/arm/subscriptions?api-version=2022-12-01",
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["value"][0]["subscriptionId"],
        server.admin.subscription_id.as_str()
    );
    // With neither, the console says what to do and does not start.
    let empty = tempfile::tempdir()?;
    let out = run_cli(
        &["console", "--no-open"],
        &[("KEYLESS_CONFIG_DIR", empty.path())],
    )
    .await?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        err.contains("keyless login") && err.contains("--admin-file"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn the_browser_is_opened_without_the_secret_on_its_command_line() -> Result<()> {
    let server = Server::start(&[]).await?;
    // A stand-in xdg-open that reports its arguments, and the mode and content of the
    // file it was given, through a FIFO the test reads (no polling).
    let bin = tempfile::tempdir()?;
    let fifo = bin.path().join("report");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    ensure!(made.success(), "mkfifo failed");
    let opener = bin.path().join("xdg-open");
    std::fs::write(
        &opener,
        "#!/bin/sh\n{ echo \"ARGS $*\"; echo \"MODE $(stat -c %a \"$1\") $(stat -c %a \"$(dirname \"$1\")\")\"; cat \"$1\"; } > \"$KEYLESS_TEST_FIFO\"\n",
    )?;
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let path = std::path::PathBuf::from(format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    ));
    let reader = {
        let fifo = fifo.clone();
        tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo))
    };
    let mut c = start_console(
        &[],
        &[
            ("KEYLESS_ADMIN_FILE", &server.admin_file()),
            ("PATH", &path),
            ("KEYLESS_TEST_FIFO", &fifo),
        ],
    )
    .await?;
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), reader)
        .await
        .context("xdg-open was not run within 30 s")???;
    let mut lines = report.lines();
    let args = lines.next().unwrap_or_default();
    ensure!(
        !args.contains(&c.secret),
        "the secret is on the command line: {args}"
    );
    let launcher = args.trim_start_matches("ARGS ").to_owned();
    ensure!(launcher.ends_with("/open.html"), "{args}");
    assert_eq!(lines.next(), Some("MODE 600 700"), "{report}");
    let page: String = lines.collect::<Vec<_>>().join("\n");
    ensure!(
        page.contains(&format!("{}/#{}", c.origin, c.secret)),
        "the launcher does not lead to the console: {page}"
    );
    // The launcher goes away with the console.
    c.stop().await?;
    ensure!(
        !std::path::Path::new(&launcher).exists(),
        "{launcher} is left behind"
    );
    Ok(())
}
