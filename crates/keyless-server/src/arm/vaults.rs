//! Key vaults as management resources (`Microsoft.KeyVault/vaults`); their secrets are
//! served by the data plane in `crate::vault`.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use keyless_core::Keyless;
use keyless_core::tokens::Caller;
use serde_json::Value;

use super::render;
use super::reply::{ArmResult, deleted, listed, method_not_allowed, not_found_path, ok, upserted};
use super::request::json_body;
use crate::errors::ArmResponseError;

/// Body of a vault PUT.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultPut {
    location: Option<String>,
    #[serde(default)]
    tags: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    properties: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    #[allow(dead_code)] // read-only fields clients echo back
    id: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<Value>,
    #[serde(default, rename = "type")]
    #[allow(dead_code)]
    kind: Option<Value>,
}

/// `/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults`.
pub(super) async fn in_subscription(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
) -> ArmResult {
    match *method {
        Method::GET => {
            let list = k.list_vaults(c, sub, None).await?;
            listed(
                list.iter()
                    .map(|v| render::vault(&k.settings().public, v))
                    .collect(),
            )
        }
        _ => Err(method_not_allowed(method)),
    }
}

/// Everything under
/// `/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.KeyVault/vaults`;
/// `rest` is the path after it.
pub(super) async fn in_resource_group(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
    rg: &str,
    rest: &[&str],
    body: &Bytes,
) -> ArmResult {
    let public = &k.settings().public;
    match (method, rest) {
        (&Method::GET, []) => listed(
            k.list_vaults(c, sub, Some(rg))
                .await?
                .iter()
                .map(|v| render::vault(public, v))
                .collect(),
        ),
        (_, [name]) => match *method {
            Method::PUT => put_vault(k, c, sub, rg, name, body).await,
            Method::GET => ok(render::vault(public, &k.get_vault(c, sub, rg, name).await?)),
            Method::DELETE => deleted(k.delete_vault(c, sub, rg, name).await?),
            _ => Err(method_not_allowed(method)),
        },
        _ => Err(not_found_path(&format!("…/vaults/{}", rest.join("/")))),
    }
}

/// Creates or replaces a vault, refusing the settings Keyless does not implement
/// (access policies instead of RBAC, soft delete off, another tenant).
async fn put_vault(
    k: &Keyless,
    c: &Caller,
    sub: &str,
    rg: &str,
    name: &str,
    body: &Bytes,
) -> ArmResult {
    let put: VaultPut = json_body(body)?;
    let props = put.properties.unwrap_or_default();
    let bad = |m: &str| ArmResponseError::new(StatusCode::BAD_REQUEST, "BadRequest", m.to_string());
    if props
        .get("enableRbacAuthorization")
        .is_some_and(|v| v == &Value::Bool(false))
    {
        return Err(bad(
            "Keyless vaults use the Azure RBAC permission model only: set enableRbacAuthorization to true or omit it.",
        ));
    }
    if let Some(t) = props.get("tenantId").and_then(Value::as_str)
        && !t.eq_ignore_ascii_case(&c.tenant_id)
    {
        return Err(bad("properties.tenantId must be the tenant of the caller."));
    }
    if props
        .get("enableSoftDelete")
        .is_some_and(|v| v == &Value::Bool(false))
    {
        return Err(bad("Soft delete cannot be turned off."));
    }
    let days = match props.get("softDeleteRetentionInDays") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| bad("softDeleteRetentionInDays must be an integer."))?,
        ),
    };
    let (v, o) = k
        .put_vault(
            c,
            sub,
            rg,
            name,
            keyless_core::vault::VaultInput {
                location: put.location,
                tags: put.tags,
                soft_delete_days: days,
            },
        )
        .await?;
    upserted(render::vault(&k.settings().public, &v), o)
}
