//! The vault: management resource, Key Vault data plane on vault hosts, challenge
//! authentication, RBAC on data actions, error shapes, soft delete, paging — and
//! `keyless demo`, which walks the whole product story.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::*;

const KV_API: &str = "2023-07-01";
const DATA_API: &str = "7.6";

/// A client for one vault host, resolved to the server's loopback address.
struct VaultHost {
    http: reqwest::Client,
    origin: String,
}

impl VaultHost {
    fn new(server: &Server, vault: &str) -> Result<Self> {
        let host = format!("{vault}.vault.localhost");
        let pem = std::fs::read(server.data_dir().join("ca.pem"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)?;
        let http = reqwest::Client::builder()
            .tls_certs_only(certs)
            .resolve(&host, SocketAddr::from(([127, 0, 0, 1], server.port)))
            .build()?;
        Ok(Self {
            http,
            origin: format!("https://{host}:{}", server.port),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Option<String>, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.origin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, challenge, body))
    }
}

fn vault_path(server: &Server, rg: &str, name: &str) -> String {
    format!(
        "{}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}",
        server.sub_path()
    )
}

async fn create_vault(server: &Server, rg: &str, name: &str) -> Result<Value> {
    let r = server
        .armv(
            Method::PUT,
            &vault_path(server, rg, name),
            KV_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    anyhow::ensure!(
        r.code() == 201 || r.code() == 200,
        "vault create failed: {}",
        r.body
    );
    Ok(r.body)
}

fn vault_scope(server: &Server) -> String {
    format!("https://vault.localhost:{}/.default", server.port)
}

#[tokio::test]
async fn vault_resource_lifecycle_and_name_rules() -> Result<()> {
    let s = Server::start(&[]).await?;
    s.create_rg("kv-rg").await?;
    let v = create_vault(&s, "kv-rg", "team-vault").await?;
    assert_eq!(v["type"], "Microsoft.KeyVault/vaults");
    assert_eq!(
        v["properties"]["vaultUri"],
        format!("https://team-vault.vault.localhost:{}/", s.port)
    );
    assert_eq!(v["properties"]["enableRbacAuthorization"], true);
    assert_eq!(v["properties"]["tenantId"], s.admin.tenant_id.as_str());
    let again = s
        .armv(
            Method::PUT,
            &vault_path(&s, "kv-rg", "team-vault"),
            KV_API,
            Some(json!({"location": "westeurope", "tags": {"env": "dev"}})),
        )
        .await?;
    assert_eq!(again.code(), 200);
    assert_eq!(again.body["tags"]["env"], "dev");
    let list = s
        .armv(
            Method::GET,
            &format!("{}/providers/Microsoft.KeyVault/vaults", s.sub_path()),
            KV_API,
            None,
        )
        .await?;
    assert_eq!(list.body["value"].as_array().map(Vec::len), Some(1));
    for bad in [
        "ab",
        "1vault",
        "vault-",
        "va--ult",
        "a-very-long-vault-name-over-24",
    ] {
        let r = s
            .armv(
                Method::PUT,
                &vault_path(&s, "kv-rg", bad),
                KV_API,
                Some(json!({"location": "westeurope"})),
            )
            .await?;
        r.arm_error(400, "VaultNameNotValid");
    }
    // Names are global: another group cannot take it.
    s.create_rg("other-rg").await?;
    let taken = s
        .armv(
            Method::PUT,
            &vault_path(&s, "other-rg", "TEAM-VAULT"),
            KV_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    taken.arm_error(409, "VaultAlreadyExists");
    let access_policies = s
        .armv(
            Method::PUT,
            &vault_path(&s, "kv-rg", "policy-vault"),
            KV_API,
            Some(
                json!({"location": "westeurope", "properties": {"enableRbacAuthorization": false}}),
            ),
        )
        .await?;
    assert!(
        access_policies
            .arm_error(400, "BadRequest")
            .contains("RBAC")
    );
    let del = s
        .armv(
            Method::DELETE,
            &vault_path(&s, "kv-rg", "team-vault"),
            KV_API,
            None,
        )
        .await?;
    assert_eq!(del.code(), 200);
    let gone = s
        .armv(
            Method::GET,
            &vault_path(&s, "kv-rg", "team-vault"),
            KV_API,
            None,
        )
        .await?;
    gone.arm_error(404, "ResourceNotFound");
    Ok(())
}

#[tokio::test]
async fn challenge_then_secrets_round_trip() -> Result<()> {
    let s = Server::start(&[]).await?;
    s.create_rg("kv-rg").await?;
    create_vault(&s, "kv-rg", "app-vault").await?;
    let kv = VaultHost::new(&s, "app-vault")?;

    // The SDKs' first request has no token and no body: the challenge must come back.
    let (status, challenge, body) = kv
        .call(
            Method::PUT,
            &format!("/secrets/db?api-version={DATA_API}"),
            None,
            None,
        )
        .await?;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some(format!("Bearer authorization=\"https://localhost:{}/{}\", resource=\"https://vault.localhost:{}\"", s.port, s.admin.tenant_id, s.port).as_str())
    );
    assert_eq!(body["error"]["code"], "Unauthorized");

    let token = s.token_for(&vault_scope(&s)).await?;
    let (status, _, set) = kv
        .call(
            Method::PUT,
            &format!("/secrets/db?api-version={DATA_API}"),
            Some(&token),
            Some(json!({"value": "v1", "contentType": "text/plain", "tags": {"a": "b"}})),
        )
        .await?;
    assert_eq!(status, 200, "{set}");
    let id = set["id"].as_str().context("id")?;
    let version = id.rsplit('/').next().context("version")?;
    assert!(
        id.starts_with(&format!("{}/secrets/db/", kv.origin)),
        "{id}"
    );
    assert!(
        version.len() == 32
            && version
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{version}"
    );
    assert!(set["attributes"]["created"].is_i64() && set["attributes"]["updated"].is_i64());
    assert_eq!(set["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
    let (_, _, set2) = kv
        .call(
            Method::PUT,
            "/secrets/db?api-version=2025-07-01",
            Some(&token),
            Some(json!({"value": "v2"})),
        )
        .await?;

    let (status, _, got) = kv
        .call(
            Method::GET,
            "/secrets/db/?api-version=2026-04-01",
            Some(&token),
            None,
        )
        .await?;
    assert_eq!((status, got["value"].as_str()), (200, Some("v2")));
    assert_eq!(got["id"], set2["id"]);
    let (_, _, old) = kv
        .call(
            Method::GET,
            &format!("/secrets/db/{version}?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(old["value"], "v1");
    assert_eq!(old["tags"]["a"], "b");

    let (_, _, versions) = kv
        .call(
            Method::GET,
            &format!("/secrets/db/versions?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(versions["value"].as_array().map(Vec::len), Some(2));
    assert!(
        versions["value"][0].get("value").is_none(),
        "lists carry no values"
    );

    // Paging: nextLink is absolute and leads to the rest.
    for n in 0..4 {
        kv.call(
            Method::PUT,
            &format!("/secrets/s{n}?api-version={DATA_API}"),
            Some(&token),
            Some(json!({"value": "x"})),
        )
        .await?;
    }
    let (_, _, page1) = kv
        .call(
            Method::GET,
            &format!("/secrets?api-version={DATA_API}&maxresults=3"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(page1["value"].as_array().map(Vec::len), Some(3));
    let next = page1["nextLink"].as_str().context("nextLink")?;
    assert!(
        next.starts_with(&format!("{}/secrets?", kv.origin)),
        "{next}"
    );
    let path = next.trim_start_matches(&kv.origin);
    let (_, _, page2) = kv.call(Method::GET, path, Some(&token), None).await?;
    assert_eq!(page2["value"].as_array().map(Vec::len), Some(2));
    assert!(page2["nextLink"].is_null());

    // Update attributes: a disabled secret is not returned.
    let (status, _, upd) = kv
        .call(
            Method::PATCH,
            &format!("/secrets/db/?api-version={DATA_API}"),
            Some(&token),
            Some(json!({"attributes": {"enabled": false}, "contentType": "application/x"})),
        )
        .await?;
    assert_eq!(status, 200, "{upd}");
    assert!(upd.get("value").is_none());
    let (status, _, disabled) = kv
        .call(
            Method::GET,
            &format!("/secrets/db/?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(status, 403);
    assert_eq!(disabled["error"]["innererror"]["code"], "SecretDisabled");
    // Expired secrets are not returned either.
    kv.call(
        Method::PUT,
        &format!("/secrets/old?api-version={DATA_API}"),
        Some(&token),
        Some(json!({"value": "x", "attributes": {"exp": 1_000_000_000}})),
    )
    .await?;
    let (status, _, expired) = kv
        .call(
            Method::GET,
            &format!("/secrets/old?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(
        (status, expired["error"]["innererror"]["code"].as_str()),
        (403, Some("SecretExpired"))
    );

    // Soft delete, name held, recover, delete again, purge.
    let (status, _, deleted) = kv
        .call(
            Method::DELETE,
            &format!("/secrets/s0?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        deleted["recoveryId"],
        format!("{}/deletedsecrets/s0", kv.origin)
    );
    assert!(deleted["scheduledPurgeDate"].as_i64() > deleted["deletedDate"].as_i64());
    let (status, _, held) = kv
        .call(
            Method::PUT,
            &format!("/secrets/s0?api-version={DATA_API}"),
            Some(&token),
            Some(json!({"value": "y"})),
        )
        .await?;
    assert_eq!(
        (status, held["error"]["innererror"]["code"].as_str()),
        (409, Some("ObjectIsDeletedButRecoverable"))
    );
    let (status, _, _) = kv
        .call(
            Method::GET,
            &format!("/deletedsecrets/s0?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(status, 200);
    let (status, _, _) = kv
        .call(
            Method::POST,
            &format!("/deletedsecrets/s0/recover?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(status, 200);
    let (_, _, back) = kv
        .call(
            Method::GET,
            &format!("/secrets/s0?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(back["value"], "x");
    kv.call(
        Method::DELETE,
        &format!("/secrets/s0?api-version={DATA_API}"),
        Some(&token),
        None,
    )
    .await?;
    let (status, _, _) = kv
        .call(
            Method::DELETE,
            &format!("/deletedsecrets/s0?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(status, 204);
    let (status, _, gone) = kv
        .call(
            Method::GET,
            &format!("/deletedsecrets/s0?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("SecretNotFound"))
    );
    Ok(())
}

#[tokio::test]
async fn data_plane_error_shapes() -> Result<()> {
    let s = Server::start(&["--token-lifetime", "300"]).await?;
    s.create_rg("kv-rg").await?;
    create_vault(&s, "kv-rg", "err-vault").await?;
    let kv = VaultHost::new(&s, "err-vault")?;
    let token = s.token_for(&vault_scope(&s)).await?;

    let (status, _, e) = kv
        .call(
            Method::GET,
            &format!("/secrets/missing/?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("SecretNotFound"))
    );
    let (status, _, e) = kv
        .call(
            Method::PUT,
            &format!("/secrets/bad_name?api-version={DATA_API}"),
            Some(&token),
            Some(json!({"value": "x"})),
        )
        .await?;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("BadParameter"))
    );
    let (status, _, e) = kv
        .call(
            Method::GET,
            "/secrets/missing/?api-version=1999-01-01",
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("BadParameter"))
    );
    let (status, _, e) = kv
        .call(
            Method::PUT,
            &format!("/secrets/big?api-version={DATA_API}"),
            Some(&token),
            Some(json!({"value": "x".repeat(26 * 1024)})),
        )
        .await?;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("BadParameter"))
    );
    let (status, _, e) = kv
        .call(
            Method::PUT,
            &format!("/secrets/nojson?api-version={DATA_API}"),
            Some(&token),
            Some(json!({"novalue": 1})),
        )
        .await?;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("BadParameter"))
    );

    // A management token (another audience) is refused with the challenge.
    let arm = s.admin_token().await?;
    let (status, challenge, e) = kv
        .call(
            Method::GET,
            &format!("/secrets?api-version={DATA_API}"),
            Some(&arm),
            None,
        )
        .await?;
    assert_eq!(status, 401);
    assert!(challenge.is_some_and(|c| c.contains("resource=")));
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("audience"),
        "{e}"
    );
    // A garbage token too.
    let (status, _, _) = kv
        .call(
            Method::GET,
            &format!("/secrets?api-version={DATA_API}"),
            Some("not.a.token"),
            None,
        )
        .await?;
    assert_eq!(status, 401);
    // A token from another Keyless tenant (another server) is refused.
    let other = Server::start(&[]).await?;
    let foreign = other
        .token_for(&format!("https://vault.localhost:{}/.default", other.port))
        .await?;
    let (status, _, _) = kv
        .call(
            Method::GET,
            &format!("/secrets?api-version={DATA_API}"),
            Some(&foreign),
            None,
        )
        .await?;
    assert_eq!(status, 401);
    // An unknown vault.
    let nowhere = VaultHost::new(&s, "no-such-vault")?;
    let (status, _, e) = nowhere
        .call(
            Method::GET,
            &format!("/secrets?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("VaultNotFound"))
    );
    Ok(())
}

#[tokio::test]
async fn rbac_on_secrets_takes_effect_immediately() -> Result<()> {
    let s = Server::start(&[]).await?;
    s.create_rg("kv-rg").await?;
    create_vault(&s, "kv-rg", "rbac-vault").await?;
    let kv = VaultHost::new(&s, "rbac-vault")?;
    let admin = s.token_for(&vault_scope(&s)).await?;
    kv.call(
        Method::PUT,
        &format!("/secrets/db?api-version={DATA_API}"),
        Some(&admin),
        Some(json!({"value": "x"})),
    )
    .await?;
    let oid = s.admin_object_id().await?;
    // Remove the admin's Key Vault Administrator assignment: it keeps Owner, which has
    // no data actions, so the vault refuses it.
    let list = s
        .armv(
            Method::GET,
            &format!(
                "{}/providers/Microsoft.Authorization/roleAssignments",
                s.sub_path()
            ),
            AUTHZ_API,
            None,
        )
        .await?;
    for a in list.body["value"].as_array().context("value")? {
        if a["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap_or_default()
            .ends_with(role_id("Key Vault Administrator"))
        {
            let r = s
                .arm(
                    Method::DELETE,
                    &format!(
                        "{}?api-version={AUTHZ_API}",
                        a["id"].as_str().unwrap_or_default()
                    ),
                    None,
                )
                .await?;
            assert_eq!(r.code(), 200, "{}", r.body);
        }
    }
    let (status, _, denied) = kv
        .call(
            Method::GET,
            &format!("/secrets/db/?api-version={DATA_API}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 403);
    assert_eq!(denied["error"]["code"], "Forbidden");
    assert_eq!(denied["error"]["innererror"]["code"], "ForbiddenByRbac");
    let message = denied["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("oid={oid}"))
            && message.contains("getSecret/action")
            && message.contains("/secrets/db"),
        "{message}"
    );

    // Secrets User on the one secret: read it, but not another, and not write.
    let secret_scope = format!("{}/secrets/db", vault_path(&s, "kv-rg", "rbac-vault"));
    let r = s
        .armv(
            Method::PUT,
            &Server::assignment_path(&secret_scope, &uuid::Uuid::new_v4().to_string()),
            AUTHZ_API,
            Some(json!({"properties": {"roleDefinitionId": format!("{}/providers/Microsoft.Authorization/roleDefinitions/{}", s.sub_path(), role_id("Key Vault Secrets User")), "principalId": oid, "principalType": "ServicePrincipal"}})),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let (status, _, got) = kv
        .call(
            Method::GET,
            &format!("/secrets/db/?api-version={DATA_API}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!((status, got["value"].as_str()), (200, Some("x")));
    let (status, _, _) = kv
        .call(
            Method::PUT,
            &format!("/secrets/db?api-version={DATA_API}"),
            Some(&admin),
            Some(json!({"value": "y"})),
        )
        .await?;
    assert_eq!(status, 403);
    let (status, _, _) = kv
        .call(
            Method::GET,
            &format!("/secrets?api-version={DATA_API}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 403, "listing needs readMetadata at the vault");
    Ok(())
}

#[tokio::test]
async fn secrets_survive_a_restart_and_are_sealed_at_rest() -> Result<()> {
    let mut s = Server::start(&[]).await?;
    s.create_rg("kv-rg").await?;
    create_vault(&s, "kv-rg", "keep-vault").await?;
    let kv = VaultHost::new(&s, "keep-vault")?;
    let token = s.token_for(&vault_scope(&s)).await?;
    let marker = "plaintext-marker-7f3a9c";
    kv.call(
        Method::PUT,
        &format!("/secrets/db?api-version={DATA_API}"),
        Some(&token),
        Some(json!({"value": marker})),
    )
    .await?;
    s.restart().await?;
    let kv = VaultHost::new(&s, "keep-vault")?;
    let token = s.token_for(&vault_scope(&s)).await?;
    let (_, _, got) = kv
        .call(
            Method::GET,
            &format!("/secrets/db?api-version={DATA_API}"),
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(got["value"], marker);
    s.stop().await?;
    for entry in std::fs::read_dir(s.data_dir())? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("keyless.db"))
        {
            let bytes = std::fs::read(&path)?;
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{} holds the value in clear",
                path.display()
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_demo_runs_the_whole_story() -> Result<()> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyless"))
        .arg("demo")
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "403 ForbiddenByRbac",
        "successfully got secret",
        "AADSTS700213",
        "All steps did what they should",
    ] {
        assert!(
            stdout.contains(needle),
            "demo output lacks {needle:?}:\n{stdout}"
        );
    }
    Ok(())
}
