//! Uses a Keyless vault with the real, unmodified Rust Key Vault SDK
//! (`azure_security_keyvault_secrets::SecretClient`) authenticated by `azure_identity`'s
//! `WorkloadIdentityCredential`, and prints what each call returned.
//!
//! Usage: `rust-azure-sdk-keyvault VAULT_URL [--resolve-to IP]`
//!
//! Reads one JSON command per line on stdin and answers each with one JSON line on stdout,
//! all on the same `SecretClient` (so its cached challenge and token carry over from one
//! command to the next, as in a long-running workload):
//!
//! ```text
//! {"op":"set","name":N,"value":V,"contentType":CT?,"tags":{..}?}   -> secret
//! {"op":"get","name":N,"version":VER?}                               -> secret
//! {"op":"update","name":N,"version":VER?,"enabled":B?,"contentType":CT?} -> secret
//! {"op":"list","maxresults":M?}                                      -> {"pages":[[item..]..]}
//! {"op":"versions","name":N,"maxresults":M?}                         -> {"pages":[[item..]..]}
//! {"op":"delete","name":N}  {"op":"get_deleted","name":N}            -> deleted secret
//! {"op":"recover","name":N}                                          -> secret
//! {"op":"purge","name":N}                                            -> {}
//! ```
//!
//! Success: `{"ok":true,"result":...}`. An SDK error: `{"ok":false,"error":{"kind","status",
//! "code","body","message"}}` — `status` and `code` as the SDK reports them
//! (`ErrorKind::HttpResponse`), `body` the service's JSON error body, `message` the error's
//! `Display`. A malformed command line is fatal (exit 2).
//!
//! Configuration is the workload identity webhook's environment (`AZURE_AUTHORITY_HOST`,
//! `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`) plus `SSL_CERT_FILE`
//! for Keyless' CA. Everything about the client is the SDK's default (challenge
//! authentication with `verify_challenge_resource` on, the api-version it sends, paging),
//! except name resolution when `--resolve-to` is given; see [`transport_resolving`].

use azure_core::http::{ClientOptions, Transport, Url};
use azure_identity::WorkloadIdentityCredential;
use azure_security_keyvault_secrets::models::{
    DeletedSecret, Secret, SecretAttributes, SecretClientGetSecretOptions,
    SecretClientListSecretPropertiesOptions, SecretClientListSecretPropertiesVersionsOptions,
    SecretClientUpdateSecretPropertiesOptions, SecretProperties, SetSecretParameters,
    UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::TryStreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The HTTP transport for `--resolve-to IP`: a `reqwest::Client` built the way azure_core
/// builds its default one (`typespec_client_core::http::clients::new_reqwest_client`: 20 s
/// connect timeout, 60 s read timeout, no redirects; gzip/deflate and rustls with the
/// platform verifier come from the same crate features, so `SSL_CERT_FILE` still supplies
/// Keyless' CA), plus one thing: `resolve(vault_host, IP)`.
///
/// Why: vault hosts are `{vault}.vault.localhost`, which glibc does not resolve here, and the
/// tests must not edit /etc/hosts. azure_core lets an application hand the SDK its own HTTP
/// client (`ClientOptions::transport = Some(Transport::new(Arc<dyn HttpClient>))`, and
/// azure_core implements `HttpClient` for `reqwest::Client`), so the SDK itself stays
/// unmodified: it builds every URL, header, challenge and retry as always; the host name is
/// still the vault's in the URL, the `Host` header, SNI and certificate verification; only
/// the address the TCP connection goes to is fixed, for that one host (the port stays the
/// URL's). This is what an application does when it cannot use DNS, the in-process
/// equivalent of an /etc/hosts line.
fn transport_resolving(host: &str, ip: IpAddr) -> Result<Transport, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        // Port 0: reqwest uses the URL's port.
        .resolve(host, SocketAddr::new(ip, 0))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(Transport::new(Arc::new(client)))
}

fn unix(t: Option<azure_core::time::OffsetDateTime>) -> Value {
    t.map_or(Value::Null, |t| json!(t.unix_timestamp()))
}

fn attributes(a: Option<&SecretAttributes>) -> Value {
    let Some(a) = a else { return Value::Null };
    json!({
        "enabled": a.enabled,
        "created": unix(a.created),
        "updated": unix(a.updated),
        "nbf": unix(a.not_before),
        "exp": unix(a.expires),
        "recoveryLevel": a.recovery_level.as_ref().map(|l| l.to_string()),
        "recoverableDays": a.recoverable_days,
    })
}

/// `name`/`version` as the SDK parses them out of `id` (`ResourceExt::resource_id`).
fn names(
    r: Result<azure_security_keyvault_secrets::ResourceId, azure_core::Error>,
) -> (Value, Value) {
    match r {
        Ok(id) => (json!(id.name), json!(id.version)),
        Err(e) => (json!(format!("unparsable id: {e}")), Value::Null),
    }
}

fn secret(s: &Secret) -> Value {
    let (name, version) = names(s.resource_id());
    json!({
        "id": s.id, "name": name, "version": version, "value": s.value,
        "contentType": s.content_type, "tags": s.tags, "attributes": attributes(s.attributes.as_ref()),
    })
}

fn properties(p: &SecretProperties) -> Value {
    let (name, version) = names(p.resource_id());
    json!({
        "id": p.id, "name": name, "version": version, "contentType": p.content_type,
        "tags": p.tags, "attributes": attributes(p.attributes.as_ref()),
    })
}

fn deleted(d: &DeletedSecret) -> Value {
    let (name, version) = names(d.resource_id());
    json!({
        "id": d.id, "name": name, "version": version, "recoveryId": d.recovery_id,
        "deletedDate": unix(d.deleted_date), "scheduledPurgeDate": unix(d.scheduled_purge_date),
        "attributes": attributes(d.attributes.as_ref()),
    })
}

/// An SDK error as JSON: for a service error, its status and code (azure_core's
/// `ErrorKind::HttpResponse`) and the service's JSON body (with `innererror`).
fn error(e: &azure_core::Error) -> Value {
    use azure_core::error::ErrorKind;
    match e.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let body = raw_response.as_ref().map_or(Value::Null, |r| {
                serde_json::from_slice::<Value>(r.body().as_ref())
                    .unwrap_or_else(|_| json!(String::from_utf8_lossy(r.body().as_ref())))
            });
            json!({
                "kind": "HttpResponse", "status": u16::from(*status), "code": error_code,
                "body": body, "message": e.to_string(),
            })
        }
        other => json!({"kind": format!("{other:?}"), "message": e.to_string()}),
    }
}

fn str_field<'a>(cmd: &'a Value, key: &str) -> Option<&'a str> {
    cmd.get(key).and_then(Value::as_str)
}

fn required<'a>(cmd: &'a Value, key: &str) -> Result<&'a str, String> {
    str_field(cmd, key).ok_or_else(|| format!("command {cmd} needs a string \"{key}\""))
}

fn maxresults(cmd: &Value) -> Option<i32> {
    cmd.get("maxresults")
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

/// Runs one command. `Err(String)` is a malformed command; SDK errors are `Ok(Err(..))`.
async fn run(
    client: &SecretClient,
    cmd: &Value,
) -> Result<Result<Value, azure_core::Error>, String> {
    let op = required(cmd, "op")?;
    Ok(match op {
        "set" => {
            let name = required(cmd, "name")?;
            let params = SetSecretParameters {
                value: Some(required(cmd, "value")?.to_string()),
                content_type: str_field(cmd, "contentType").map(String::from),
                tags: cmd
                    .get("tags")
                    .map(|t| serde_json::from_value::<HashMap<String, String>>(t.clone()))
                    .transpose()
                    .map_err(|e| format!("tags: {e}"))?,
                ..Default::default()
            };
            let body = params
                .try_into()
                .map_err(|e: azure_core::Error| e.to_string())?;
            async {
                Ok(secret(
                    &client.set_secret(name, body, None).await?.into_model()?,
                ))
            }
            .await
        }
        "get" => {
            let options = SecretClientGetSecretOptions {
                secret_version: str_field(cmd, "version").map(String::from),
                ..Default::default()
            };
            let name = required(cmd, "name")?;
            async {
                Ok(secret(
                    &client.get_secret(name, Some(options)).await?.into_model()?,
                ))
            }
            .await
        }
        "update" => {
            let name = required(cmd, "name")?;
            let params = UpdateSecretPropertiesParameters {
                content_type: str_field(cmd, "contentType").map(String::from),
                secret_attributes: cmd.get("enabled").and_then(Value::as_bool).map(|enabled| {
                    SecretAttributes {
                        enabled: Some(enabled),
                        ..Default::default()
                    }
                }),
                ..Default::default()
            };
            let body = params
                .try_into()
                .map_err(|e: azure_core::Error| e.to_string())?;
            let options = SecretClientUpdateSecretPropertiesOptions {
                secret_version: str_field(cmd, "version").map(String::from),
                ..Default::default()
            };
            async {
                Ok(secret(
                    &client
                        .update_secret_properties(name, body, Some(options))
                        .await?
                        .into_model()?,
                ))
            }
            .await
        }
        "list" => {
            let options = SecretClientListSecretPropertiesOptions {
                maxresults: maxresults(cmd),
                ..Default::default()
            };
            async {
                let mut pages = client.list_secret_properties(Some(options))?.into_pages();
                let mut out = Vec::new();
                while let Some(page) = pages.try_next().await? {
                    let page = page.into_model()?;
                    out.push(page.value.iter().map(properties).collect::<Vec<_>>());
                }
                Ok(json!({ "pages": out }))
            }
            .await
        }
        "versions" => {
            let name = required(cmd, "name")?;
            let options = SecretClientListSecretPropertiesVersionsOptions {
                maxresults: maxresults(cmd),
                ..Default::default()
            };
            async {
                let mut pages = client
                    .list_secret_properties_versions(name, Some(options))?
                    .into_pages();
                let mut out = Vec::new();
                while let Some(page) = pages.try_next().await? {
                    let page = page.into_model()?;
                    out.push(page.value.iter().map(properties).collect::<Vec<_>>());
                }
                Ok(json!({ "pages": out }))
            }
            .await
        }
        "delete" => {
            let name = required(cmd, "name")?;
            async {
                Ok(deleted(
                    &client.delete_secret(name, None).await?.into_model()?,
                ))
            }
            .await
        }
        "get_deleted" => {
            let name = required(cmd, "name")?;
            async {
                Ok(deleted(
                    &client.get_deleted_secret(name, None).await?.into_model()?,
                ))
            }
            .await
        }
        "recover" => {
            let name = required(cmd, "name")?;
            async {
                Ok(secret(
                    &client
                        .recover_deleted_secret(name, None)
                        .await?
                        .into_model()?,
                ))
            }
            .await
        }
        "purge" => {
            let name = required(cmd, "name")?;
            async {
                client.purge_deleted_secret(name, None).await?;
                Ok(json!({}))
            }
            .await
        }
        other => return Err(format!("unknown op {other:?}")),
    })
}

async fn serve(vault_url: &str, resolve_to: Option<IpAddr>) -> Result<(), String> {
    let mut options = SecretClientOptions::default();
    if let Some(ip) = resolve_to {
        let url = Url::parse(vault_url).map_err(|e| format!("vault URL {vault_url}: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("vault URL {vault_url} has no host"))?;
        options.client_options = ClientOptions {
            transport: Some(transport_resolving(host, ip)?),
            ..Default::default()
        };
    }
    let credential = WorkloadIdentityCredential::new(None).map_err(|e| e.to_string())?;
    let client =
        SecretClient::new(vault_url, credential, Some(options)).map_err(|e| e.to_string())?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.next_line().await.map_err(|e| format!("stdin: {e}"))? {
        if line.trim().is_empty() {
            continue;
        }
        let cmd: Value =
            serde_json::from_str(&line).map_err(|e| format!("command {line:?}: {e}"))?;
        let out = match run(&client, &cmd).await? {
            Ok(result) => json!({"ok": true, "result": result}),
            Err(e) => json!({"ok": false, "error": error(&e)}),
        };
        stdout
            .write_all(format!("{out}\n").as_bytes())
            .await
            .and(stdout.flush().await)
            .map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, resolve_to) = match args.as_slice() {
        [url] => (url, None),
        [url, flag, ip] if flag == "--resolve-to" => match ip.parse::<IpAddr>() {
            Ok(ip) => (url, Some(ip)),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    match serve(url, resolve_to).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: rust-azure-sdk-keyvault VAULT_URL [--resolve-to IP]  (JSON commands on stdin)"
    );
    ExitCode::from(2)
}
