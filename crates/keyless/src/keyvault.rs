//! `keyless keyvault`: vaults (management API) and their secrets (the Key Vault data
//! plane), like `az keyvault`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::manage::args::{CommonArgs, parse_tag, tags_json};
use crate::manage::output::emit;
use crate::manage::session::{Session, client_secret_token, token_endpoint};

const ARM_API: &str = "2023-07-01";
const DATA_API: &str = "7.6";

/// Vault commands.
#[derive(Debug, Subcommand)]
pub enum KeyvaultCommand {
    /// Create (or update) a vault; RBAC permission model, soft delete on.
    Create {
        /// Vault name: 3-24 letters, digits and hyphens, globally unique.
        #[arg(long, short = 'n')]
        name: String,
        /// Resource group.
        #[arg(long, short = 'g')]
        resource_group: String,
        /// Region [default: the group's].
        #[arg(long, short = 'l')]
        location: Option<String>,
        /// Days a deleted secret stays recoverable (7-90).
        #[arg(long, default_value_t = 90)]
        retention_days: i64,
        /// Tags, `key=value`.
        #[arg(long, num_args = 0.., value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Show a vault.
    Show {
        /// Vault name.
        #[arg(long, short = 'n')]
        name: String,
        /// Resource group.
        #[arg(long, short = 'g')]
        resource_group: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List vaults of the subscription or of one group.
    List {
        /// Resource group.
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Delete a vault and its secrets.
    Delete {
        /// Vault name.
        #[arg(long, short = 'n')]
        name: String,
        /// Resource group.
        #[arg(long, short = 'g')]
        resource_group: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Secrets in a vault.
    #[command(subcommand)]
    Secret(SecretCommand),
}

/// Secret commands (data plane, as the admin principal: it holds Key Vault
/// Administrator on the subscription).
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret (a new version).
    Set {
        /// Vault name.
        #[arg(long)]
        vault_name: String,
        /// Secret name.
        #[arg(long, short = 'n')]
        name: String,
        /// The value (prefer --file: arguments are visible to other local users).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        value: Option<String>,
        /// Read the value from a file (`-` for standard input).
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
        /// Content type.
        #[arg(long)]
        content_type: Option<String>,
        /// Tags, `key=value`.
        #[arg(long, num_args = 0.., value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Show a secret with its value.
    Show {
        /// Vault name.
        #[arg(long)]
        vault_name: String,
        /// Secret name.
        #[arg(long, short = 'n')]
        name: String,
        /// A version [default: the latest].
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List secrets (no values).
    List {
        /// Vault name.
        #[arg(long)]
        vault_name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Delete a secret (recoverable for the vault's retention period).
    Delete {
        /// Vault name.
        #[arg(long)]
        vault_name: String,
        /// Secret name.
        #[arg(long, short = 'n')]
        name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Recover a deleted secret.
    Recover {
        /// Vault name.
        #[arg(long)]
        vault_name: String,
        /// Secret name.
        #[arg(long, short = 'n')]
        name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Purge a deleted secret for good.
    Purge {
        /// Vault name.
        #[arg(long)]
        vault_name: String,
        /// Secret name.
        #[arg(long, short = 'n')]
        name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

fn vault_path(s: &Session, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}",
        s.subscription
    )
}

/// Runs a keyvault command.
pub async fn run(cmd: KeyvaultCommand) -> Result<()> {
    match cmd {
        KeyvaultCommand::Create {
            name,
            resource_group,
            location,
            retention_days,
            tags,
            common,
        } => {
            let s = Session::open(&common).await?;
            let location = match location {
                Some(l) => l,
                None => {
                    let g = s
                        .arm
                        .get(
                            &format!(
                                "/subscriptions/{}/resourcegroups/{resource_group}",
                                s.subscription
                            ),
                            "2021-04-01",
                        )
                        .await?;
                    g.get("location")
                        .and_then(Value::as_str)
                        .unwrap_or("local")
                        .to_string()
                }
            };
            let body = json!({
                "location": location,
                "tags": tags_json(&tags),
                "properties": {"tenantId": s.admin.tenant_id, "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": true, "softDeleteRetentionInDays": retention_days},
            });
            emit(
                &s.arm
                    .put(&vault_path(&s, &resource_group, &name), ARM_API, &body)
                    .await?,
                &common,
            )
        }
        KeyvaultCommand::Show {
            name,
            resource_group,
            common,
        } => {
            let s = Session::open(&common).await?;
            emit(
                &s.arm
                    .get(&vault_path(&s, &resource_group, &name), ARM_API)
                    .await?,
                &common,
            )
        }
        KeyvaultCommand::List {
            resource_group,
            common,
        } => {
            let s = Session::open(&common).await?;
            let path = match resource_group {
                Some(rg) => format!(
                    "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults",
                    s.subscription
                ),
                None => format!(
                    "/subscriptions/{}/providers/Microsoft.KeyVault/vaults",
                    s.subscription
                ),
            };
            emit(&Value::Array(s.arm.list(&path, ARM_API).await?), &common)
        }
        KeyvaultCommand::Delete {
            name,
            resource_group,
            common,
        } => {
            let s = Session::open(&common).await?;
            s.arm
                .delete(&vault_path(&s, &resource_group, &name), ARM_API)
                .await?;
            Ok(())
        }
        KeyvaultCommand::Secret(cmd) => run_secret(cmd).await,
    }
}

/// A data-plane client for one vault.
struct VaultClient {
    http: reqwest::Client,
    origin: String,
    token: String,
}

impl VaultClient {
    /// Signs in for the vault resource. The vault host is served by the same server as
    /// the authority host, so it is resolved to the authority's addresses: this works
    /// on machines where `*.vault.localhost` names do not resolve.
    async fn open(common: &CommonArgs, vault: &str) -> Result<Self> {
        let s = Session::open(common).await?;
        let access = s.admin.vault_access(vault).await?;
        let (http, origin, resource) = (access.http, access.origin, access.resource);
        let endpoint = token_endpoint(&s.admin.authority_host, &s.admin.tenant_id)?;
        let token = client_secret_token(
            &http,
            endpoint,
            &s.admin.client_id,
            &s.admin.client_secret,
            &format!("{resource}/.default"),
        )
        .await?;
        Ok(Self {
            http,
            origin,
            token: token.token,
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!(
            "{}{path}{}api-version={DATA_API}",
            self.origin,
            if path.contains('?') { "&" } else { "?" }
        );
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let parsed: Option<Value> = serde_json::from_str(&text).ok();
            let err = parsed.as_ref().and_then(|v| v.get("error"));
            let code = err
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("Error");
            let message = err
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or(text.as_str());
            bail!("({code}) {}", message.replace("\r\n", " "));
        }
        if text.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(&text).context("the vault answered with invalid JSON")
        }
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut page = self.call(Method::GET, path, None).await?;
        for _ in 0..1000 {
            if let Some(items) = page.get("value").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            let Some(next) = page
                .get("nextLink")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                break;
            };
            if !next.starts_with(&format!("{}/", self.origin)) {
                bail!(
                    "the vault's nextLink '{next}' points elsewhere; not sending the token there"
                );
            }
            page = self
                .http
                .get(&next)
                .bearer_auth(&self.token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
        }
        Ok(out)
    }
}

async fn run_secret(cmd: SecretCommand) -> Result<()> {
    match cmd {
        SecretCommand::Set {
            vault_name,
            name,
            value,
            file,
            content_type,
            tags,
            common,
        } => {
            let value = match (value, file) {
                (Some(v), _) => v,
                (None, Some(f)) if f.as_os_str() == "-" => {
                    let mut buf = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)?;
                    buf
                }
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                (None, None) => bail!("pass --value or --file"),
            };
            let c = VaultClient::open(&common, &vault_name).await?;
            let mut body = json!({"value": value, "tags": tags_json(&tags)});
            if let (Some(ct), Some(o)) = (content_type, body.as_object_mut()) {
                o.insert("contentType".into(), json!(ct));
            }
            emit(
                &c.call(Method::PUT, &format!("/secrets/{name}"), Some(&body))
                    .await?,
                &common,
            )
        }
        SecretCommand::Show {
            vault_name,
            name,
            version,
            common,
        } => {
            let c = VaultClient::open(&common, &vault_name).await?;
            emit(
                &c.call(
                    Method::GET,
                    &format!("/secrets/{name}/{}", version.unwrap_or_default()),
                    None,
                )
                .await?,
                &common,
            )
        }
        SecretCommand::List { vault_name, common } => {
            let c = VaultClient::open(&common, &vault_name).await?;
            emit(&Value::Array(c.list("/secrets").await?), &common)
        }
        SecretCommand::Delete {
            vault_name,
            name,
            common,
        } => {
            let c = VaultClient::open(&common, &vault_name).await?;
            emit(
                &c.call(Method::DELETE, &format!("/secrets/{name}"), None)
                    .await?,
                &common,
            )
        }
        SecretCommand::Recover {
            vault_name,
            name,
            common,
        } => {
            let c = VaultClient::open(&common, &vault_name).await?;
            emit(
                &c.call(
                    Method::POST,
                    &format!("/deletedsecrets/{name}/recover"),
                    None,
                )
                .await?,
                &common,
            )
        }
        SecretCommand::Purge {
            vault_name,
            name,
            common,
        } => {
            let c = VaultClient::open(&common, &vault_name).await?;
            c.call(Method::DELETE, &format!("/deletedsecrets/{name}"), None)
                .await?;
            Ok(())
        }
    }
}
