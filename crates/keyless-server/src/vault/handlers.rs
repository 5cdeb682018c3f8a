//! Data-plane request handling: vault lookup, api-version, routing to the secret
//! operations.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use keyless_core::tokens::Caller;
use keyless_core::vault::{SecretAttributesInput, SecretPut, VaultError};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::authenticate;
use super::paging::{Paging, paged};
use super::render;
use super::reply::{Reply, bad, json_response, vault_error};
use crate::router::AppState;

/// Versions the official SDKs send (Python 4.12: 2026-04-01 down to 2016-10-01; Rust
/// 1.0: 2025-07-01).
const API_VERSIONS: &[&str] = &[
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-07-01",
    "2026-04-01",
];

/// The vault name when `host` (`{vault}.vault.{public-host}[:port]`) is a vault host.
pub fn vault_name_from_host(host: &str, public_host: &str) -> Option<String> {
    let without_port = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let suffix = format!(".vault.{}", public_host.to_ascii_lowercase());
    let lower = without_port.to_ascii_lowercase();
    let label = lower.strip_suffix(&suffix)?;
    (!label.is_empty() && !label.contains('.')).then(|| label.to_string())
}

struct Ctx<'a> {
    state: &'a AppState,
    origin: String,
}

/// Handles one data-plane request for `vault` reached at `host`.
pub async fn handle(
    state: AppState,
    vault: String,
    host: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(record) = state.keyless.vault_by_name(&vault) else {
        return json_response(
            StatusCode::NOT_FOUND,
            render::error(
                "VaultNotFound",
                &format!(
                    "No vault named '{}' exists on this server.",
                    keyless_core::names::printable(&vault)
                ),
                None,
            ),
        );
    };
    // Authenticate before looking at anything else, so the challenge is always the
    // answer to an unauthenticated request (the SDKs send a body-less probe first).
    let caller = match authenticate(&state, &record.tenant_id, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Err(t) = state
        .throttle
        .take_principal(&caller.object_id, std::time::Instant::now())
    {
        let correlation = crate::errors::correlation_id(&headers);
        return crate::throttle::throttled(
            &state,
            crate::throttle::Protocol::KeyVault,
            t,
            &correlation,
        );
    }
    let query: Vec<(String, String)> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    match param("api-version") {
        None => return bad("The api-version query parameter is required."),
        Some(v) if !API_VERSIONS.contains(&v) => {
            return bad(format!(
                "The specified version ({}) is not recognized. Consider using one of: {}.",
                keyless_core::names::printable(v),
                API_VERSIONS.join(", ")
            ));
        }
        Some(_) => {}
    }
    let ctx = Ctx {
        state: &state,
        origin: format!("https://{host}"),
    };
    let segs: Vec<&str> = uri.path().split('/').skip(1).collect();
    let page = Paging {
        max: param("maxresults"),
        skip: param("$skiptoken"),
        api_version: param("api-version").unwrap_or("7.6"),
    };
    let result = route(&ctx, &caller, &vault, &method, &segs, page, &body).await;
    match result {
        Ok(r) => r,
        Err(r) => *r,
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

async fn route(
    ctx: &Ctx<'_>,
    c: &Caller,
    vault: &str,
    method: &Method,
    segs: &[&str],
    page: Paging<'_>,
    body: &Bytes,
) -> Reply {
    let k = &ctx.state.keyless;
    let o = &ctx.origin;
    let err = |e: VaultError| Box::new(vault_error(&e));
    match (method, segs) {
        (&Method::GET, [s] | [s, ""]) if eq(s, "secrets") => {
            let list = k.list_secrets(c, vault).await.map_err(err)?;
            paged(
                o,
                "secrets",
                list.iter().map(|v| render::item(o, v, false)).collect(),
                page,
            )
        }
        (&Method::PUT, [s, name]) if eq(s, "secrets") => {
            let put: SetBody = parse(body)?;
            let view = k
                .set_secret(
                    c,
                    vault,
                    name,
                    SecretPut {
                        value: put.value,
                        content_type: put.content_type,
                        tags: put.tags,
                        attributes: put.attributes.unwrap_or_default().into(),
                    },
                )
                .await
                .map_err(err)?;
            Ok(json_response(StatusCode::OK, render::bundle(o, &view)))
        }
        (&Method::GET, [s, name] | [s, name, ""]) if eq(s, "secrets") => Ok(json_response(
            StatusCode::OK,
            render::bundle(o, &k.get_secret(c, vault, name, None).await.map_err(err)?),
        )),
        (&Method::GET, [s, name, v]) if eq(s, "secrets") && eq(v, "versions") => {
            let list = k.list_secret_versions(c, vault, name).await.map_err(err)?;
            paged(
                o,
                &format!("secrets/{name}/versions"),
                list.iter().map(|v| render::item(o, v, true)).collect(),
                page,
            )
        }
        (&Method::GET, [s, name, version]) if eq(s, "secrets") => Ok(json_response(
            StatusCode::OK,
            render::bundle(
                o,
                &k.get_secret(c, vault, name, Some(version))
                    .await
                    .map_err(err)?,
            ),
        )),
        (&Method::PATCH, [s, name, rest @ ..]) if eq(s, "secrets") && rest.len() <= 1 => {
            let version = rest.first().copied().filter(|v| !v.is_empty());
            let patch: UpdateBody = parse(body)?;
            let view = k
                .update_secret(
                    c,
                    vault,
                    name,
                    version,
                    keyless_core::vault::SecretUpdate {
                        content_type: patch.content_type,
                        tags: patch.tags,
                        attributes: patch.attributes.unwrap_or_default().into(),
                    },
                )
                .await
                .map_err(err)?;
            Ok(json_response(StatusCode::OK, render::bundle(o, &view)))
        }
        (&Method::DELETE, [s, name]) if eq(s, "secrets") => {
            let d = k.delete_secret(c, vault, name).await.map_err(err)?;
            Ok(json_response(StatusCode::OK, render::deleted(o, &d, false)))
        }
        (&Method::GET, [d] | [d, ""]) if eq(d, "deletedsecrets") => {
            let list = k.list_deleted_secrets(c, vault).await.map_err(err)?;
            paged(
                o,
                "deletedsecrets",
                list.iter().map(|d| render::deleted(o, d, true)).collect(),
                page,
            )
        }
        (&Method::GET, [d, name]) if eq(d, "deletedsecrets") => Ok(json_response(
            StatusCode::OK,
            render::deleted(
                o,
                &k.get_deleted_secret(c, vault, name).await.map_err(err)?,
                false,
            ),
        )),
        (&Method::DELETE, [d, name]) if eq(d, "deletedsecrets") => {
            k.purge_secret(c, vault, name).await.map_err(err)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (&Method::POST, [d, name, r]) if eq(d, "deletedsecrets") && eq(r, "recover") => {
            Ok(json_response(
                StatusCode::OK,
                render::bundle(o, &k.recover_secret(c, vault, name).await.map_err(err)?),
            ))
        }
        _ => Err(Box::new(json_response(
            StatusCode::NOT_FOUND,
            render::error(
                "NotFound",
                &format!(
                    "No secrets operation is served for {method} /{}.",
                    keyless_core::names::printable(&segs.join("/"))
                ),
                None,
            ),
        ))),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(bad(format!("The request body is not valid: {e}."))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttributesBody {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
    // Read-only attributes clients may echo back.
    #[serde(default)]
    #[allow(dead_code)]
    created: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    updated: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    recovery_level: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    recoverable_days: Option<Value>,
}

impl From<AttributesBody> for SecretAttributesInput {
    fn from(a: AttributesBody) -> Self {
        Self {
            enabled: a.enabled,
            nbf: a.nbf,
            exp: a.exp,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    value: String,
    content_type: Option<String>,
    tags: Option<Map<String, Value>>,
    attributes: Option<AttributesBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    content_type: Option<String>,
    tags: Option<Map<String, Value>>,
    attributes: Option<AttributesBody>,
}

#[cfg(test)]
mod tests {
    use super::vault_name_from_host;

    #[test]
    fn vault_hosts() {
        assert_eq!(
            vault_name_from_host("myvault.vault.localhost:8443", "localhost").as_deref(),
            Some("myvault")
        );
        assert_eq!(
            vault_name_from_host("MyVault.VAULT.localhost", "localhost").as_deref(),
            Some("myvault")
        );
        assert_eq!(
            vault_name_from_host("vault.localhost:8443", "localhost"),
            None
        );
        assert_eq!(
            vault_name_from_host("a.b.vault.localhost", "localhost"),
            None
        );
        assert_eq!(vault_name_from_host("localhost:8443", "localhost"), None);
        assert_eq!(
            vault_name_from_host("x.vault.localhost.evil.com", "localhost"),
            None
        );
    }
}
