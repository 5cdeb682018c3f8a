//! The example workload, examples/keyvault-reader (a separate cargo project on
//! keyless-credential), against Keyless: a dev cluster projects the token file, the
//! operator sets up a vault, a secret and a role with the CLI, and the example reads the
//! secret through the vault's challenge, as the msal-go example does.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::ASSERTION_TOKENS;
use crate::testkit::{DevCluster, Identity, Server, credential, poll};

const SECRET_VALUE: &str = "Hello!";

/// Builds the example once per test run (a no-op after `./scripts/test.sh build`), or
/// takes `$KEYVAULT_READER_BIN`.
async fn example_binary() -> Result<PathBuf> {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_try_init(|| async {
            if let Some(bin) = std::env::var_os("KEYVAULT_READER_BIN") {
                return Ok(PathBuf::from(bin));
            }
            let project =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/keyvault-reader");
            let out = Command::new(env!("CARGO"))
                .arg("build")
                .arg("--locked")
                .arg("--manifest-path")
                .arg(project.join("Cargo.toml"))
                .arg("--target-dir")
                .arg(project.join("target"))
                .stdin(Stdio::null())
                .output()
                .await
                .context("running cargo build for examples/keyvault-reader")?;
            ensure!(
                out.status.success(),
                "building examples/keyvault-reader failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(project.join("target/debug/keyvault-reader"))
        })
        .await
        .cloned()
}

/// A cluster whose token file belongs to `system:serviceaccount:apps:kv-reader`, a
/// Keyless trusting it, and a vault with one secret, set up through the CLI.
struct Setup {
    cluster: DevCluster,
    server: Server,
    token_file: PathBuf,
    vault_url: String,
    vault_id: String,
    _dir: tempfile::TempDir,
}

async fn cli_ok(server: &Server, args: &[&str]) -> Result<String> {
    let out = server.cli(args).await?;
    ensure!(
        out.status.success(),
        "keyless {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn setup() -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("azure-identity-token");
    let cluster = DevCluster::start(&[
        "--token-file",
        token_file.to_str().context("path")?,
        "--namespace",
        "apps",
        "--service-account",
        "kv-reader",
    ])
    .await?;
    poll(10, || async { Ok(token_file.exists().then_some(())) })
        .await?
        .context("the dev cluster wrote no token file")?;
    let server = Server::start_trusting(&cluster).await?;
    server.create_rg("rg-example").await?;
    cli_ok(
        &server,
        &[
            "keyvault",
            "create",
            "--name",
            "reader-kv",
            "--resource-group",
            "rg-example",
        ],
    )
    .await?;
    cli_ok(
        &server,
        &[
            "keyvault",
            "secret",
            "set",
            "--vault-name",
            "reader-kv",
            "--name",
            "db-password",
            "--value",
            SECRET_VALUE,
        ],
    )
    .await?;
    let vault_id = cli_ok(
        &server,
        &[
            "keyvault",
            "show",
            "--name",
            "reader-kv",
            "--resource-group",
            "rg-example",
            "--query",
            "id",
            "-o",
            "tsv",
        ],
    )
    .await?;
    Ok(Setup {
        vault_url: format!("https://reader-kv.vault.localhost:{}/", server.port),
        cluster,
        server,
        token_file,
        vault_id,
        _dir: dir,
    })
}

impl Setup {
    /// An identity trusting the token file's service account.
    async fn identity(&self, name: &str) -> Result<Identity> {
        self.server
            .identity_with_credential(
                "rg-example",
                name,
                credential(&self.cluster.issuer, "system:serviceaccount:apps:kv-reader"),
            )
            .await
    }

    async fn grant_secrets_user(&self, identity: &Identity) -> Result<()> {
        cli_ok(
            &self.server,
            &[
                "role",
                "assignment",
                "create",
                "--role",
                "Key Vault Secrets User",
                "--assignee-object-id",
                &identity.principal_id,
                "--assignee-principal-type",
                "ServicePrincipal",
                "--scope",
                &self.vault_id,
            ],
        )
        .await
        .map(drop)
    }

    /// The example with the injected environment of a pod using `identity`.
    async fn example(&self, identity: &Identity, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(example_binary().await?);
        cmd.args(args)
            .args(["--ca-file"])
            .arg(self.server.data_dir().join("ca.pem"))
            // *.vault.localhost need not resolve on the test machine.
            .args(["--resolve-vault-to", "127.0.0.1"])
            .env_remove("SSL_CERT_FILE")
            .env_remove("READ_INTERVAL")
            .env("AZURE_CLIENT_ID", &identity.client_id)
            .env("AZURE_TENANT_ID", &self.server.admin.tenant_id)
            .env("AZURE_FEDERATED_TOKEN_FILE", &self.token_file)
            .env("AZURE_AUTHORITY_HOST", &self.server.url)
            .env("KEYVAULT_URL", &self.vault_url)
            .env("SECRET_NAME", "db-password")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(cmd)
    }
}

#[tokio::test]
async fn the_example_reads_the_secret_as_the_workload() -> Result<()> {
    let s = setup().await?;
    let reader = s.identity("kv-reader-app").await?;
    s.grant_secrets_user(&reader).await?;

    let out = tokio::time::timeout(
        Duration::from_secs(60),
        s.example(&reader, &["--once", "--show-value"])
            .await?
            .output(),
    )
    .await
    .map_err(|_| anyhow!("the example did not finish within 60 s"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the example failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("successfully got secret"), "{stdout}");
    assert!(
        stdout.contains(&format!("value={SECRET_VALUE:?}")),
        "{stdout}"
    );
    assert_eq!(s.server.metric(ASSERTION_TOKENS).await?, 1);

    // Without --show-value the value stays out of the log.
    let out = s.example(&reader, &["--once"]).await?.output().await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("successfully got secret"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET_VALUE), "{stdout}");

    // Periodic reads reuse the cached token: two reads, one more token request.
    let mut child = s.example(&reader, &["--interval", "1"]).await?.spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut reads = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("successfully got secret") {
                reads += 1;
                if reads == 2 {
                    break;
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
    .map_err(|_| anyhow!("no two reads within 30 s ({reads} seen)"))??;
    child.start_kill()?;
    let _ = child.wait().await;
    assert_eq!(reads, 2);
    assert_eq!(
        s.server.metric(ASSERTION_TOKENS).await?,
        3,
        "one token per process"
    );
    Ok(())
}

#[tokio::test]
async fn without_the_role_the_example_fails_with_the_vaults_reason() -> Result<()> {
    let s = setup().await?;
    let outsider = s.identity("kv-outsider").await?;
    let out = s.example(&outsider, &["--once"]).await?.output().await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed to get secret from keyvault"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ForbiddenByRbac") && stderr.contains("403"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("successfully got secret"));

    // Missing workload identity environment: the credential names the variable.
    let mut cmd = s.example(&outsider, &["--once"]).await?;
    cmd.env_remove("AZURE_CLIENT_ID");
    let out = cmd.output().await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("AZURE_CLIENT_ID"), "{stderr}");
    Ok(())
}
