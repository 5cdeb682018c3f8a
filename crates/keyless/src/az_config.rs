//! `keyless az-config`: prints the exact Azure CLI set-up for a running Keyless server —
//! trust its CA, register it as a cloud (az reads every endpoint from its
//! `/metadata/endpoints`), skip MSAL's instance discovery (which asks Microsoft about an
//! authority it does not know, and fails offline), and sign in.
//!
//! The server comes from `--authority` (with `--ca-file`), else the admin file of a local
//! `keyless serve`, else the signed-in account (`keyless login`). The metadata document is
//! fetched first, so what is printed is what that server answers, and a wrong CA or URL
//! fails here rather than in az. No secret is ever printed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use keyless_proto::cloud_metadata::CloudMetadata;
use serde_json::json;

use crate::account::session::Session;
use crate::manage::session::{AdminFile, admin_file_path, http_client};
use crate::process::absolute;

/// `keyless az-config`.
#[derive(Debug, Args)]
pub struct AzConfigArgs {
    /// The server's token service / resource manager URL, e.g. https://keyless.example:8443
    /// [default: the admin file's authorityHost, else the signed-in account's].
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
    /// PEM CA certificate the server's certificate is checked against (az is told to
    /// trust it through REQUESTS_CA_BUNDLE) [default: the admin file's or account's].
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Tenant for the sign-in command [default: the admin file's or account's].
    #[arg(long, short = 't', value_name = "TENANT_ID")]
    pub tenant: Option<String>,
    /// Name to register the cloud under in az.
    #[arg(long, short = 'n', default_value = "keyless")]
    pub name: String,
    /// Admin file of a local `keyless serve`
    /// [default: $KEYLESS_DATA_DIR/admin.json, else ./keyless-data/admin.json, if present].
    #[arg(long, env = "KEYLESS_ADMIN_FILE", value_name = "PATH")]
    pub admin_file: Option<PathBuf>,
    /// Output: shell commands (text) or the same as JSON (argument lists, for scripts).
    #[arg(long, short = 'o', value_enum, default_value_t = AzConfigFormat::Text)]
    pub output: AzConfigFormat,
}

/// How `keyless az-config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AzConfigFormat {
    /// Commands to paste into a POSIX shell, with comments.
    Text,
    /// `{environment, setup, login}` with argument lists.
    Json,
}

/// Where the server is, after applying the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    authority: String,
    ca_file: Option<PathBuf>,
    tenant: Option<String>,
    /// `(client id, admin file)` of the bootstrap admin, when known.
    admin: Option<(String, PathBuf)>,
}

fn resolve(args: &AzConfigArgs) -> Result<Target> {
    let admin_path = admin_file_path(
        args.admin_file.as_deref(),
        std::env::var_os("KEYLESS_DATA_DIR"),
    );
    let admin = if args.admin_file.is_some() || admin_path.is_file() {
        Some(AdminFile::load(&admin_path)?)
    } else {
        None
    };
    let session = if args.authority.is_none() && admin.is_none() {
        Some(Session::load().context(
            "no server given: pass --authority URL (and --ca-file), point at a local server's \
             admin file with --admin-file or KEYLESS_DATA_DIR, or sign in with `keyless login`",
        )?)
    } else {
        None
    };
    let authority = match (&args.authority, &admin, &session) {
        (Some(a), ..) => a.clone(),
        (None, Some(admin), _) => admin.authority_host.clone(),
        (None, None, Some(s)) => s.profile.authority_host.clone(),
        (None, None, None) => bail!("no server given: pass --authority URL"),
    };
    let authority = authority.trim().trim_end_matches('/').to_string();
    let url = reqwest::Url::parse(&authority)
        .with_context(|| format!("--authority '{authority}' is not a URL"))?;
    if url.scheme() != "https" || url.host_str().is_none() || url.path() != "/" {
        bail!(
            "--authority must be an https origin such as https://keyless.example:8443, not '{authority}'"
        );
    }
    // The admin file and the session describe one server: use them only for it.
    let admin = admin.filter(|a| same_origin(&a.authority_host, &authority));
    let session = session.filter(|s| same_origin(&s.profile.authority_host, &authority));
    let ca_file = args
        .ca_file
        .clone()
        .or_else(|| admin.as_ref().and_then(|a| a.ca_file.clone()))
        .or_else(|| session.as_ref().and_then(|s| s.profile.ca_file.clone()))
        .map(|p| absolute(&p));
    let tenant = args
        .tenant
        .clone()
        .or_else(|| admin.as_ref().map(|a| a.tenant_id.clone()))
        .or_else(|| session.as_ref().map(|s| s.profile.tenant_id.clone()));
    Ok(Target {
        authority,
        ca_file,
        tenant,
        admin: admin.map(|a| (a.client_id, absolute(&admin_path))),
    })
}

fn same_origin(a: &str, b: &str) -> bool {
    let origin = |s: &str| {
        reqwest::Url::parse(s.trim()).ok().map(|u| {
            (
                u.host_str().map(str::to_ascii_lowercase),
                u.port_or_known_default(),
            )
        })
    };
    origin(a).is_some() && origin(a) == origin(b)
}

/// Fetches the server's cloud metadata, as az will.
async fn fetch_metadata(target: &Target) -> Result<CloudMetadata> {
    let http = http_client(target.ca_file.as_deref())?;
    let url = format!(
        "{}/metadata/endpoints?api-version=2022-09-01",
        target.authority
    );
    let resp = http.get(&url).send().await.with_context(|| {
        let trust = match target.ca_file.as_deref() {
            Some(p) => format!("the CA in {}", p.display()),
            None => "a CA of the system trust store (else pass --ca-file)".to_string(),
        };
        format!(
            "cannot reach {url}: is the server running, and does its certificate chain to {trust}?"
        )
    })?;
    let status = resp.status();
    if !status.is_success() {
        bail!("{url} answered {status}: is this a Keyless server (0.x with cloud metadata)?");
    }
    resp.json::<CloudMetadata>()
        .await
        .with_context(|| format!("{url} did not answer a cloud metadata document"))
}

/// Quotes `s` for a POSIX shell when it needs it.
fn sh(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn line(argv: &[String]) -> String {
    argv.iter().map(|a| sh(a)).collect::<Vec<_>>().join(" ")
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The set-up commands, in order.
fn setup_commands(name: &str, resource_manager: &str) -> [Vec<String>; 3] {
    [
        argv(&[
            "az",
            "cloud",
            "register",
            "-n",
            name,
            "--endpoint-resource-manager",
            resource_manager,
        ]),
        argv(&["az", "cloud", "set", "-n", name]),
        argv(&["az", "config", "set", "core.instance_discovery=false"]),
    ]
}

/// Runs `keyless az-config`.
pub async fn run(args: AzConfigArgs) -> Result<()> {
    let target = resolve(&args)?;
    let metadata = fetch_metadata(&target).await?;
    let setup = setup_commands(&args.name, &metadata.resource_manager);
    let tenant = target.tenant.clone();
    // Without a known tenant, the variable the workload identity webhook sets.
    let tenant_arg = tenant
        .as_deref()
        .map_or_else(|| "\"$AZURE_TENANT_ID\"".to_string(), sh);
    let ca = target.ca_file.as_deref().map(Path::display);
    let vault_host = format!("NAME.{}", metadata.suffixes.key_vault_dns);
    match args.output {
        AzConfigFormat::Json => {
            let value = json!({
                "cloudName": args.name,
                "resourceManager": metadata.resource_manager,
                "loginEndpoint": metadata.authentication.login_endpoint,
                "keyVaultDns": metadata.suffixes.key_vault_dns,
                "environment": target.ca_file.as_ref().map(|p| json!({"REQUESTS_CA_BUNDLE": p})).unwrap_or_else(|| json!({})),
                "setup": setup,
                "tenantId": tenant,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        AzConfigFormat::Text => {
            println!(
                "# Azure CLI set-up for the Keyless server at {} (once per user).",
                target.authority
            );
            match ca {
                Some(ca) => {
                    println!(
                        "# az (Python requests) trusts only the CA bundle named here; keep it in your shell profile."
                    );
                    println!("export REQUESTS_CA_BUNDLE={}", sh(&ca.to_string()));
                }
                None => println!(
                    "# The server's certificate must chain to a CA in the system trust store."
                ),
            }
            println!(
                "# Register Keyless as a cloud: az reads every endpoint from {}metadata/endpoints.",
                metadata.resource_manager
            );
            let [register, set, discovery] = &setup;
            println!("{}", line(register));
            println!("{}", line(set));
            println!(
                "# MSAL would otherwise ask Microsoft's instance discovery about this authority (fails offline)."
            );
            println!("{}", line(discovery));
            println!(
                "# Sign in as a workload identity with its federated token (e.g. a projected Kubernetes token):"
            );
            println!(
                "az login --service-principal -u \"$AZURE_CLIENT_ID\" -t {tenant_arg} --federated-token \"$(cat \"$AZURE_FEDERATED_TOKEN_FILE\")\"",
            );
            if let Some((client_id, path)) = &target.admin {
                println!(
                    "# ...or as the bootstrap admin (its secret is clientSecret in {}):",
                    path.display()
                );
                println!(
                    "az login --service-principal -u {client_id} -t {tenant_arg} --password=\"$(jq -r .clientSecret {})\"",
                    sh(&path.display().to_string())
                );
            }
            println!(
                "# Then e.g.: az account show; az account get-access-token; az keyvault secret show --vault-name NAME -n SECRET"
            );
            println!(
                "# Vault hosts ({vault_host}) must resolve to this server: a DNS wildcard, or one /etc/hosts line per vault."
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh("https://h:8443/"), "https://h:8443/");
        assert_eq!(sh("/tmp/a b/ca.pem"), "'/tmp/a b/ca.pem'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh("$HOME"), "'$HOME'");
    }

    #[test]
    fn setup_registers_sets_and_skips_instance_discovery() {
        let cmds = setup_commands("keyless", "https://h:8443/");
        assert_eq!(
            line(&cmds[0]),
            "az cloud register -n keyless --endpoint-resource-manager https://h:8443/"
        );
        assert_eq!(line(&cmds[1]), "az cloud set -n keyless");
        assert_eq!(
            line(&cmds[2]),
            "az config set core.instance_discovery=false"
        );
    }
}
