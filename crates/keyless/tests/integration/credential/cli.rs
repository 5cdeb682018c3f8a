//! The token commands of the binary: `login` (federated token, file, password),
//! `account show`, `account get-access-token`, `token get`, `token decode [--verify]`,
//! `logout` — with the session in a scratch config directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{ACCOUNT, NAMESPACE, Workload, subject};
use crate::testkit::{Server, TestIssuer, jwt_claims, now};

/// A scratch config directory and the environment the CLI runs with.
struct Cli {
    config: tempfile::TempDir,
    /// Extra environment (e.g. `KEYLESS_ADMIN_FILE`).
    env: Vec<(String, String)>,
}

impl Cli {
    fn new() -> Result<Cli> {
        Ok(Cli {
            config: tempfile::tempdir()?,
            env: vec![],
        })
    }

    fn dir(&self) -> &Path {
        self.config.path()
    }

    /// Runs `keyless args...` with `stdin`, in UTC (so `expiresOn` can be checked).
    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyless"));
        cmd.args(args)
            .env_remove("KEYLESS_DATA_DIR")
            .env_remove("KEYLESS_ADMIN_FILE")
            .env_remove("AZURE_AUTHORITY_HOST")
            .env("KEYLESS_CONFIG_DIR", self.dir())
            .env("TZ", "UTC")
            // No ./keyless-data of the working directory is picked up as a default.
            .current_dir(self.dir())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("running keyless")?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes()).await?;
            drop(pipe);
        }
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .map_err(|_| anyhow!("keyless {args:?} did not finish within 60 s"))?
            .context("waiting for keyless")
    }

    async fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_with_stdin(args, None).await
    }

    /// A command that must succeed; returns stdout.
    async fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args).await?;
        assert!(
            out.status.success(),
            "keyless {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        Ok(text(&out.stdout))
    }

    async fn ok_json(&self, args: &[&str]) -> Result<Value> {
        let out = self.ok(args).await?;
        serde_json::from_str(&out)
            .with_context(|| format!("keyless {args:?} printed no JSON: {out}"))
    }

    /// A command that must fail; returns stderr.
    async fn fails(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let out = self.run_with_stdin(args, stdin).await?;
        assert!(
            !out.status.success(),
            "keyless {args:?} should fail:\nstdout: {}",
            text(&out.stdout)
        );
        Ok(text(&out.stderr))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Mode bits of a file.
fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

fn vault_resource(server: &Server) -> String {
    format!("https://vault.localhost:{}", server.port)
}

#[tokio::test]
async fn login_with_a_federated_token_file_then_tokens_and_logout() -> Result<()> {
    let w = Workload::start(&[]).await?;
    let file = w.project(ACCOUNT).await?;
    let assertion = std::fs::read_to_string(&file)?;
    let cli = Cli::new()?;
    let tenant = w.server.admin.tenant_id.clone();
    let client = w.identity.client_id.clone();
    let ca = w.ca();
    let federated = format!("@{}", path(&file));

    let out = cli
        .run(&[
            "login",
            "--service-principal",
            "-u",
            &client,
            "-t",
            &tenant,
            "--federated-token",
            &federated,
            "--authority",
            &w.server.url,
            "--ca-file",
            path(&ca),
        ])
        .await?;
    assert!(out.status.success(), "login failed: {}", text(&out.stderr));
    let accounts: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(accounts.as_array().map(Vec::len), Some(1), "{accounts}");
    let account = &accounts[0];
    assert_eq!(
        account["user"],
        json!({"name": client, "type": "servicePrincipal"})
    );
    assert_eq!(account["tenantId"], json!(tenant));
    // A workload identity reads no subscription: az's tenant-level account.
    assert_eq!(account["id"], json!(tenant));
    assert_eq!(account["name"], json!("N/A(tenant level account)"));
    assert_eq!(account["credentialType"], json!("federatedTokenFile"));
    assert_eq!(account["environmentName"], json!("Keyless"));
    assert!(!text(&out.stdout).contains(assertion.trim()));
    for name in ["profile.json", "credentials.json"] {
        assert_eq!(mode(&cli.dir().join(name)), 0o600, "{name}");
    }
    assert!(
        !std::fs::read_to_string(cli.dir().join("credentials.json"))?.contains(assertion.trim()),
        "a token file is referenced, not copied"
    );

    let shown = cli.ok_json(&["account", "show"]).await?;
    assert_eq!(&shown, account);
    let tsv = cli
        .ok(&["account", "show", "--query", "user.name", "-o", "tsv"])
        .await?;
    assert_eq!(tsv.trim(), client);

    // get-access-token for the vault resource, as az prints it.
    let resource = vault_resource(&w.server);
    let before = now();
    let t = cli
        .ok_json(&[
            "account",
            "get-access-token",
            "--resource",
            &resource,
            "-o",
            "json",
        ])
        .await?;
    let keys: Vec<&str> = t
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "accessToken",
            "expiresOn",
            "expires_on",
            "tenant",
            "tokenType"
        ],
        "{t}"
    );
    assert_eq!(t["tenant"], json!(tenant));
    assert_eq!(t["tokenType"], json!("Bearer"));
    let token = t["accessToken"].as_str().unwrap_or_default().to_owned();
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], json!(resource));
    assert_eq!(claims["appid"], json!(client));
    let expires_on = t["expires_on"].as_i64().unwrap_or_default();
    assert!((before + 3590..=now() + 3600).contains(&expires_on), "{t}");
    assert!(
        (claims["exp"].as_i64().unwrap_or_default() - expires_on).abs() <= 5,
        "{t}"
    );
    let expected = jiff::Timestamp::from_second(expires_on)?
        .strftime("%Y-%m-%d %H:%M:%S.000000")
        .to_string();
    assert_eq!(t["expiresOn"], json!(expected), "local time (TZ=UTC here)");
    // Default resource: the resource manager.
    let arm = cli.ok_json(&["account", "get-access-token"]).await?;
    let arm_claims = jwt_claims(arm["accessToken"].as_str().unwrap_or_default());
    assert_eq!(
        arm_claims["aud"],
        json!(w.server.admin.resource_manager_url)
    );

    // token get: the token and nothing else.
    let printed = cli.ok(&["token", "get", "--resource", &resource]).await?;
    assert_eq!(printed.lines().count(), 1, "{printed}");
    let printed = printed.trim_end_matches('\n');
    assert_eq!(printed.split('.').count(), 3, "{printed}");
    assert_eq!(jwt_claims(printed)["aud"], json!(resource));
    let by_scope = cli
        .ok(&["token", "get", "--scope", &format!("{resource}/.default")])
        .await?;
    assert_eq!(jwt_claims(by_scope.trim())["aud"], json!(resource));

    // The token file rotates: the session keeps working with the new token.
    w.project(ACCOUNT).await?;
    cli.ok(&["token", "get"]).await?;

    // Logout removes the session.
    cli.ok(&["logout"]).await?;
    assert!(!cli.dir().join("profile.json").exists());
    assert!(!cli.dir().join("credentials.json").exists());
    let err = cli.fails(&["account", "show"], None).await?;
    assert!(
        err.contains("not logged in") && err.contains("keyless login"),
        "{err}"
    );
    let err = cli.fails(&["token", "get"], None).await?;
    assert!(err.contains("not logged in"), "{err}");
    let err = cli.fails(&["logout"], None).await?;
    assert!(err.contains("no active account"), "{err}");
    Ok(())
}

#[tokio::test]
async fn login_with_a_federated_token_or_a_secret_and_the_admin_file_defaults() -> Result<()> {
    let w = Workload::start(&[]).await?;
    let mut cli = Cli::new()?;
    let tenant = w.server.admin.tenant_id.clone();
    // The admin file supplies the authority and the CA.
    cli.env.push((
        "KEYLESS_ADMIN_FILE".into(),
        path(&w.server.admin_file()).into(),
    ));

    let token = w.cluster.mint(NAMESPACE, ACCOUNT).await?;
    let out = cli
        .run(&[
            "login",
            "--service-principal",
            "-u",
            &w.identity.client_id,
            "-t",
            &tenant,
            "--federated-token",
            &token,
        ])
        .await?;
    assert!(out.status.success(), "login failed: {}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(&token) && !text(&out.stderr).contains(&token));
    let shown = cli.ok_json(&["account", "show"]).await?;
    assert_eq!(shown["credentialType"], json!("federatedToken"));
    assert_eq!(shown["authorityHost"], json!(w.server.url));
    assert!(
        !shown.to_string().contains(&token),
        "account show never prints the secret"
    );
    let t = cli.ok_json(&["account", "get-access-token"]).await?;
    assert_eq!(
        jwt_claims(t["accessToken"].as_str().unwrap_or_default())["appid"],
        json!(w.identity.client_id)
    );

    // The admin: a client secret from a file; it can read the subscription.
    let secret_file = cli.dir().join("secret.txt");
    std::fs::write(&secret_file, format!("{}\n", w.server.admin.client_secret))?;
    let at_secret = format!("@{}", path(&secret_file));
    let accounts = cli
        .ok_json(&[
            "login",
            "--service-principal",
            "-u",
            &w.server.admin.client_id,
            "-t",
            &tenant,
            "-p",
            &at_secret,
        ])
        .await?;
    assert_eq!(
        accounts[0]["id"],
        json!(w.server.admin.subscription_id),
        "{accounts}"
    );
    assert_eq!(accounts[0]["isDefault"], json!(true));
    assert_eq!(accounts[0]["credentialType"], json!("clientSecret"));
    let t = cli.ok_json(&["account", "get-access-token"]).await?;
    assert_eq!(t["subscription"], json!(w.server.admin.subscription_id));
    let profile = std::fs::read_to_string(cli.dir().join("profile.json"))?;
    assert!(
        !profile.contains(&w.server.admin.client_secret),
        "the profile holds no secret"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_login_saves_nothing_and_says_why() -> Result<()> {
    let w = Workload::start(&[]).await?;
    let cli = Cli::new()?;
    let intruder = w.cluster.mint(NAMESPACE, "intruder").await?;
    let err = cli
        .fails(
            &[
                "login",
                "--service-principal",
                "-u",
                &w.identity.client_id,
                "-t",
                &w.server.admin.tenant_id,
                "--federated-token",
                &intruder,
                "--authority",
                &w.server.url,
                "--ca-file",
                path(&w.ca()),
            ],
            None,
        )
        .await?;
    assert!(err.contains("login failed"), "{err}");
    assert!(err.contains("AADSTS700213"), "{err}");
    assert!(err.contains(&subject("intruder")), "{err}");
    assert!(!err.contains(&intruder), "the token is not echoed");
    assert!(!cli.dir().join("profile.json").exists());
    assert!(!cli.dir().join("credentials.json").exists());

    let err = cli
        .fails(&["login", "-u", "c", "-t", "t", "-p", "x"], None)
        .await?;
    assert!(err.contains("--service-principal"), "{err}");
    Ok(())
}

#[tokio::test]
async fn token_decode_is_offline_and_verify_checks_the_signature() -> Result<()> {
    let server = Server::start(&[]).await?;
    let cli = Cli::new()?;
    let token = server
        .token_for(&format!("{}.default", server.admin.resource_manager_url))
        .await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("token.jwt");
    std::fs::write(&file, format!("{token}\n"))?;

    let out = cli.ok(&["token", "decode", path(&file)]).await?;
    assert!(out.starts_with("Header\n{"), "{out}");
    for needle in [
        "\"alg\": \"ES256\"",
        "Claims",
        &format!("\"appid\": \"{}\"", server.admin.client_id),
        "exp ",
        "(expires in ",
        "UTC",
        "Signature: not checked",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
    // From standard input, as JSON.
    let out = cli
        .run_with_stdin(&["token", "decode", "-", "-o", "json"], Some(&token))
        .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["claims"]["appid"], json!(server.admin.client_id));
    assert_eq!(v["expired"], json!(false));
    assert_eq!(v["times"]["exp"]["unix"], jwt_claims(&token)["exp"]);
    assert_eq!(v["signature"]["checked"], json!(false));

    // --verify: the issuer's keys, discovered from iss, over HTTPS with the server's CA.
    let ca = server.data_dir().join("ca.pem");
    let out = cli
        .ok(&[
            "token",
            "decode",
            path(&file),
            "--verify",
            "--ca-file",
            path(&ca),
        ])
        .await?;
    assert!(out.contains("Signature: valid (ES256, key "), "{out}");
    assert!(
        out.contains(&format!("{}/discovery/keys", server.admin.tenant_id)),
        "{out}"
    );

    // A changed claim no longer verifies: non-zero exit.
    let (h, rest) = token.split_once('.').context("jwt")?;
    let (_, s) = rest.split_once('.').context("jwt")?;
    let mut claims = jwt_claims(&token);
    claims["oid"] = json!("00000000-0000-0000-0000-000000000000");
    let forged = format!(
        "{h}.{}.{s}",
        crate::testkit::b64url(claims.to_string().as_bytes())
    );
    let err = cli
        .fails(
            &["token", "decode", "--verify", "--ca-file", path(&ca)],
            Some(&forged),
        )
        .await?;
    assert!(
        err.contains("did not verify") && err.contains("signature"),
        "{err}"
    );

    // Malformed input: a clear error, non-zero exit, whatever the shape.
    for (input, needle) in [
        ("", "the input is empty"),
        ("hello world", "not a JWT"),
        ("aGVhZGVy.cGF5bG9hZA", "found 2"),
        ("a.b.c.d.e", "encrypted token (JWE"),
        ("e30.bm90IGpzb24.c2ln", "payload is not JSON"),
    ] {
        let err = cli.fails(&["token", "decode"], Some(input)).await?;
        assert!(err.contains(needle), "{input:?}: {err}");
    }
    let err = cli
        .fails(&["token", "decode", "/nonexistent/token.jwt"], None)
        .await?;
    assert!(err.contains("cannot read the token file"), "{err}");

    // An expired token decodes, and says so.
    let issuer = TestIssuer::new("https://issuer.decode.example")?;
    let mut old = issuer.claims("s");
    old["iat"] = json!(now() - 7200);
    old["exp"] = json!(now() - 3600);
    let out = cli
        .run_with_stdin(&["token", "decode"], Some(&issuer.sign(&old)))
        .await?;
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("(expired 1 h ago)"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}
