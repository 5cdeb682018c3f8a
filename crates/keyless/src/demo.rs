//! `keyless demo`: the product's story end to end on one machine, narrated. Starts
//! `keyless serve` and `keyless dev-cluster` as child processes, walks through every
//! step with the commands a user would type, and exits 0 only if each step did what it
//! should — including the refusal of an identity that holds no role.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::manage::session::{AdminFile, client_secret_token, token_endpoint};

/// Options of `keyless demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep everything here instead of a temporary directory (kept afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

const NS: &str = "demo";
const SA: &str = "workload-sa";
const SECRET_VALUE: &str = "correct-horse-battery-staple";

struct Narrator {
    step: u32,
}

impl Narrator {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n== Step {}: {title}", self.step);
    }
    fn cmd(&self, line: &str) {
        println!("   $ {line}");
    }
    fn ok(&self, line: &str) {
        println!("   ok: {line}");
    }
}

/// A child process killed when dropped.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start(args: &[&str], ready: &str) -> Result<(Running, String)> {
    let exe = std::env::current_exe().context("cannot find the keyless executable")?;
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting keyless {}", args.join(" ")))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.split(ready).nth(1) {
                return Ok::<_, anyhow::Error>(url.trim().to_string());
            }
        }
        bail!("keyless {} exited before it was ready", args.join(" "))
    })
    .await
    .context("timed out waiting for the ready line")??;
    Ok((Running { child }, url))
}

struct Api {
    http: reqwest::Client,
    rm: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        api: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = format!(
            "{}{}?api-version={api}",
            self.rm.trim_end_matches('/'),
            path
        );
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        ))
    }
    async fn put(&self, path: &str, api: &str, body: Value) -> Result<Value> {
        let (status, v) = self.call(Method::PUT, path, api, Some(body)).await?;
        ensure!(status.is_success(), "PUT {path} answered {status}: {v}");
        Ok(v)
    }
}

fn field<'a>(v: &'a Value, pointer: &str) -> Result<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("{pointer} missing in {v}"))
}

/// Exchanges the projected token for an access token, as the Azure SDKs do.
async fn exchange(
    http: &reqwest::Client,
    admin: &AdminFile,
    client_id: &str,
    token_file: &Path,
    scope: &str,
) -> Result<(StatusCode, Value)> {
    let assertion = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?;
    let resp = http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            admin.authority_host, admin.tenant_id
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.trim()),
            ("scope", scope),
        ])
        .send()
        .await?;
    Ok((resp.status(), resp.json().await?))
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let temp;
    let dir = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = std::env::temp_dir().join(format!("keyless-demo-{}", std::process::id()));
            std::fs::create_dir_all(&temp)?;
            temp.clone()
        }
    };
    let result = story(&dir).await;
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match &result {
        Ok(()) => println!("\nAll steps did what they should. The workload never held a secret."),
        Err(e) => println!("\nThe demo failed: {e:#}"),
    }
    result
}

async fn story(dir: &Path) -> Result<()> {
    let mut n = Narrator { step: 0 };
    let cluster_dir = dir.join("dev-cluster");
    let server_dir = dir.join("keyless");
    let token_file = dir.join("tokens").join("azure-identity-token");
    let (cd, kd, tf) = (
        cluster_dir.display().to_string(),
        server_dir.display().to_string(),
        token_file.display().to_string(),
    );

    n.step("a cluster with an OIDC issuer (the stand-in dev cluster)");
    n.cmd(&format!("keyless dev-cluster --data-dir {cd} --namespace {NS} --service-account {SA} --token-file {tf}"));
    let (_cluster, issuer) = start(
        &[
            "dev-cluster",
            "--data-dir",
            &cd,
            "--listen",
            "127.0.0.1:0",
            "--namespace",
            NS,
            "--service-account",
            SA,
            "--token-file",
            &tf,
        ],
        "ready at ",
    )
    .await?;
    n.ok(&format!(
        "issuer {issuer} serves discovery + JWKS; the kubelet-style token file is {tf}"
    ));

    n.step("Keyless itself");
    let cluster_ca = cluster_dir.join("ca.pem").display().to_string();
    n.cmd(&format!(
        "keyless serve --data-dir {kd} --allow-private-issuers --trust-ca {cluster_ca}"
    ));
    let (_server, authority) = start(
        &[
            "serve",
            "--data-dir",
            &kd,
            "--listen",
            "127.0.0.1:0",
            "--allow-private-issuers",
            "--trust-ca",
            &cluster_ca,
        ],
        "ready at ",
    )
    .await?;
    let admin = AdminFile::load(&server_dir.join("admin.json"))?;
    let vault_name = "demo-vault";
    let vault_access = admin.vault_access(vault_name).await?;
    let http = vault_access.http.clone();
    let vault_url = format!("{}/", vault_access.origin);
    let endpoint = token_endpoint(&admin.authority_host, &admin.tenant_id)?;
    let arm_token = client_secret_token(
        &http,
        endpoint,
        &admin.client_id,
        &admin.client_secret,
        &admin.management_scope(),
    )
    .await?;
    let api = Api {
        http: http.clone(),
        rm: admin.resource_manager_url.clone(),
        token: arm_token.token,
    };
    n.ok(&format!("token service and management API at {authority}; admin credential in {kd}/admin.json (mode 0600)"));
    let sub = admin.subscription_id.clone();

    n.step("a resource group and a user-assigned managed identity");
    n.cmd("keyless group create --name demo-rg --location westeurope");
    api.put(
        &format!("/subscriptions/{sub}/resourcegroups/demo-rg"),
        "2021-04-01",
        json!({"location": "westeurope"}),
    )
    .await?;
    n.cmd("keyless identity create --name demo-identity --resource-group demo-rg");
    let identity = api
        .put(&format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo-identity"), "2023-01-31", json!({"location": "westeurope"}))
        .await?;
    let (client_id, principal_id) = (
        field(&identity, "/properties/clientId")?.to_string(),
        field(&identity, "/properties/principalId")?.to_string(),
    );
    n.ok(&format!("clientId {client_id}, principalId {principal_id}"));

    n.step("the ServiceAccount and Pod manifests (what you would kubectl apply)");
    let manifests = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {SA}\n  namespace: {NS}\n  annotations:\n    azure.workload.identity/client-id: \"{client_id}\"\n    azure.workload.identity/tenant-id: \"{}\"\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: demo-workload\n  namespace: {NS}\n  labels:\n    azure.workload.identity/use: \"true\"\nspec:\n  serviceAccountName: {SA}\n  containers:\n    - name: app\n      image: ghcr.io/example/app:1.0\n      env:\n        - name: KEYVAULT_URL\n          value: {vault_url}\n        - name: SECRET_NAME\n          value: db-password\n",
        admin.tenant_id
    );
    let manifest_path = dir.join("workload.yaml");
    std::fs::write(&manifest_path, &manifests)?;
    n.ok(&format!("written to {}", manifest_path.display()));

    n.step("trust the cluster's service account: a federated identity credential");
    let subject = format!("system:serviceaccount:{NS}:{SA}");
    n.cmd(&format!("keyless identity federated-credential create --name demo-fic --identity-name demo-identity --resource-group demo-rg --issuer {issuer} --subject {subject}"));
    api.put(
        &format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo-identity/federatedIdentityCredentials/demo-fic"),
        "2023-01-31",
        json!({"properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}}),
    )
    .await?;
    n.ok("issuer + subject + audience api://AzureADTokenExchange");

    n.step("a vault with a secret (as the admin, who holds Key Vault Administrator)");
    n.cmd(&format!(
        "keyless keyvault create --name {vault_name} --resource-group demo-rg"
    ));
    let vault = api
        .put(&format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.KeyVault/vaults/{vault_name}"), "2023-07-01", json!({"location": "westeurope"}))
        .await?;
    let vault_uri = field(&vault, "/properties/vaultUri")?
        .trim_end_matches('/')
        .to_string();
    n.cmd(&format!(
        "keyless keyvault secret set --vault-name {vault_name} --name db-password --value ****"
    ));
    let endpoint = token_endpoint(&admin.authority_host, &admin.tenant_id)?;
    let vault_scope = format!("{}/.default", vault_access.resource);
    let admin_vault = client_secret_token(
        &http,
        endpoint,
        &admin.client_id,
        &admin.client_secret,
        &vault_scope,
    )
    .await?;
    let resp = http
        .put(format!("{vault_uri}/secrets/db-password?api-version=7.6"))
        .bearer_auth(&admin_vault.token)
        .json(&json!({"value": SECRET_VALUE}))
        .send()
        .await?;
    ensure!(
        resp.status().is_success(),
        "setting the secret answered {}",
        resp.status()
    );
    n.ok(&format!("{vault_uri}/secrets/db-password"));

    n.step("the workload exchanges its projected token (no secret anywhere)");
    n.cmd(&format!("AZURE_CLIENT_ID={client_id} AZURE_TENANT_ID={} AZURE_FEDERATED_TOKEN_FILE={tf} AZURE_AUTHORITY_HOST={authority}  # set by the webhook", admin.tenant_id));
    let (status, body) = exchange(&http, &admin, &client_id, &token_file, &vault_scope).await?;
    ensure!(
        status == StatusCode::OK,
        "the exchange answered {status}: {body}"
    );
    let workload_token = field(&body, "/access_token")?.to_string();
    n.ok(&format!(
        "POST {authority}/{}/oauth2/v2.0/token → access token for the vault, expires_in {}",
        admin.tenant_id,
        body.get("expires_in").cloned().unwrap_or_default()
    ));

    n.step("without a role, the vault refuses the workload");
    let read = |token: String| {
        let http = http.clone();
        let url = format!("{vault_uri}/secrets/db-password/?api-version=7.6");
        async move { http.get(url).bearer_auth(token).send().await }
    };
    let resp = read(workload_token.clone()).await?;
    let status = resp.status();
    let denial: Value = resp.json().await.unwrap_or_default();
    ensure!(
        status == StatusCode::FORBIDDEN,
        "expected 403 before the role assignment, got {status}"
    );
    ensure!(
        denial
            .pointer("/error/innererror/code")
            .and_then(Value::as_str)
            == Some("ForbiddenByRbac"),
        "expected ForbiddenByRbac, got {denial}"
    );
    n.ok("403 ForbiddenByRbac (the message names the caller, the action and the scope)");

    n.step("grant the identity Key Vault Secrets User on the vault");
    let scope = format!(
        "/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.KeyVault/vaults/{vault_name}"
    );
    n.cmd(&format!("keyless role assignment create --role \"Key Vault Secrets User\" --assignee-object-id {principal_id} --assignee-principal-type ServicePrincipal --scope {scope}"));
    api.put(
        &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4()),
        "2022-04-01",
        json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"), "principalId": principal_id, "principalType": "ServicePrincipal"}}),
    )
    .await?;
    n.ok("in effect immediately");

    n.step("the workload reads the secret");
    let resp = read(workload_token).await?;
    let status = resp.status();
    let secret: Value = resp.json().await.unwrap_or_default();
    ensure!(
        status == StatusCode::OK,
        "expected 200 after the role assignment, got {status}: {secret}"
    );
    ensure!(
        secret.get("value").and_then(Value::as_str) == Some(SECRET_VALUE),
        "the secret value differs"
    );
    n.ok("successfully got secret db-password");

    n.step("another identity, trusted by the same cluster but without a role, is refused");
    let other = api
        .put(&format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other-identity"), "2023-01-31", json!({"location": "westeurope"}))
        .await?;
    let other_client = field(&other, "/properties/clientId")?.to_string();
    api.put(
        &format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other-identity/federatedIdentityCredentials/other-fic"),
        "2023-01-31",
        json!({"properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}}),
    )
    .await?;
    let (status, body) = exchange(&http, &admin, &other_client, &token_file, &vault_scope).await?;
    ensure!(
        status == StatusCode::OK,
        "the second exchange answered {status}: {body}"
    );
    let resp = read(field(&body, "/access_token")?.to_string()).await?;
    ensure!(
        resp.status() == StatusCode::FORBIDDEN,
        "expected 403 for the identity without a role, got {}",
        resp.status()
    );
    n.ok("403 ForbiddenByRbac");

    n.step("a token from the wrong service account is refused, and Keyless says why");
    let (status, body) = exchange(&http, &admin, &client_id, &token_file, &vault_scope).await?;
    ensure!(status == StatusCode::OK, "sanity exchange failed: {body}");
    api.put(
        &format!("/subscriptions/{sub}/resourceGroups/demo-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo-identity/federatedIdentityCredentials/demo-fic"),
        "2023-01-31",
        json!({"properties": {"issuer": issuer, "subject": format!("system:serviceaccount:{NS}:another-sa"), "audiences": ["api://AzureADTokenExchange"]}}),
    )
    .await?;
    let (status, body) = exchange(&http, &admin, &client_id, &token_file, &vault_scope).await?;
    let description = body
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ensure!(
        status == StatusCode::UNAUTHORIZED && description.starts_with("AADSTS700213"),
        "expected AADSTS700213, got {status}: {body}"
    );
    n.ok(description.split(" Trace ID").next().unwrap_or(description));
    Ok(())
}
