//! Parses an ARM path into an operation and runs it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use keyless_core::management::{FederatedCredentialInput, RoleAssignmentInput};
use keyless_core::tokens::Caller;
use keyless_store::UpsertOutcome;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::authenticate;
use super::render;
use super::versions::{Family, check};
use crate::errors::ArmResponseError;
use crate::router::AppState;

type ArmResult = Result<Response, ArmResponseError>;

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn percent_decode(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={}", s.replace('+', "%2B")))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, v)| v)
        .unwrap_or_else(|| s.to_string())
}

/// Query parameters with decoded keys (clients may percent-encode `api-version`).
fn query_params(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| eq(k, name)).map(|(_, v)| v.as_str())
}

fn not_found_path(path: &str) -> ArmResponseError {
    ArmResponseError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "No management operation is served at '{}'.",
            keyless_core::names::printable(path)
        ),
    )
}

fn method_not_allowed(method: &Method) -> ArmResponseError {
    ArmResponseError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The HTTP method '{method}' is not supported for this resource."),
    )
}

fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ArmResponseError> {
    if body.is_empty() {
        return Err(ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request body is required and must be a JSON object.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })
}

fn ok(value: Value) -> ArmResult {
    Ok(Json(value).into_response())
}

fn upserted(value: Value, outcome: UpsertOutcome) -> ArmResult {
    let status = match outcome {
        UpsertOutcome::Created => StatusCode::CREATED,
        UpsertOutcome::Updated => StatusCode::OK,
    };
    Ok((status, Json(value)).into_response())
}

fn deleted(existed: bool) -> ArmResult {
    Ok(if existed {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response())
}

/// Top-level body of a federated credential PUT.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FicPut {
    properties: Option<keyless_proto::arm::FederatedCredentialProperties>,
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

/// The fallback handler: every path that is not the token service.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(&state, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> ArmResult {
    let path = uri.path();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let family = family_of(&s).ok_or_else(|| not_found_path(path))?;
    let q = query_params(uri);
    let version = param(&q, "api-version").ok_or_else(|| {
        ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    })?;
    check(family, version).map_err(|supported| {
        ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{}' is invalid. The supported versions are: {supported}.",
                keyless_core::names::printable(version)
            ),
        )
    })?;
    let caller = authenticate(&state.keyless, headers)?;
    let k = &state.keyless;
    let c = &caller;

    // Role definitions and assignments hang off any scope.
    if let Some(i) = authorization_index(&s) {
        let scope = format!("/{}", s.get(..i).unwrap_or_default().join("/"));
        return authorization(
            state,
            c,
            method,
            &scope,
            s.get(i + 2..).unwrap_or_default(),
            &q,
            body,
        )
        .await;
    }

    match (method, s.as_slice()) {
        (&Method::GET, [t]) if eq(t, "tenants") => {
            ok(render::list(vec![render::tenant(&c.tenant_id)]))
        }
        (&Method::GET, [t]) if eq(t, "subscriptions") => ok(render::list(
            k.list_subscriptions(c)
                .iter()
                .map(render::subscription)
                .collect(),
        )),
        (&Method::GET, [t, sub]) if eq(t, "subscriptions") => {
            ok(render::subscription(&k.get_subscription(c, sub)?))
        }
        (&Method::POST, [p, ns, keys, rotate])
            if eq(p, "providers")
                && eq(ns, "Keyless")
                && eq(keys, "signingKeys")
                && eq(rotate, "rotate") =>
        {
            rotate_keys(state, c, &q).await
        }
        (_, [p, ns, rest @ ..]) if eq(p, "providers") && eq(ns, "Keyless") => {
            keyless_provider(state, c, method, rest, &q, body).await
        }
        (_, [t, sub, r]) if eq(t, "subscriptions") && eq(r, "resourcegroups") => match *method {
            Method::GET => ok(render::list(
                k.list_resource_groups(c, sub)
                    .await?
                    .iter()
                    .map(render::resource_group)
                    .collect(),
            )),
            _ => Err(method_not_allowed(method)),
        },
        (_, [t, sub, r, rg]) if eq(t, "subscriptions") && eq(r, "resourcegroups") => {
            match *method {
                Method::PUT => {
                    let put: keyless_proto::arm::TrackedResourcePut = json_body(body)?;
                    let (g, o) = k
                        .put_resource_group(c, sub, rg, put.location.as_deref(), put.tags)
                        .await?;
                    upserted(render::resource_group(&g), o)
                }
                Method::GET => ok(render::resource_group(
                    &k.get_resource_group(c, sub, rg).await?,
                )),
                Method::HEAD => {
                    k.get_resource_group(c, sub, rg).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                Method::DELETE => deleted(k.delete_resource_group(c, sub, rg).await?),
                _ => Err(method_not_allowed(method)),
            }
        }
        (_, [t, sub, p, ns, ty])
            if eq(t, "subscriptions")
                && eq(p, "providers")
                && eq(ns, "Microsoft.ManagedIdentity")
                && eq(ty, "userAssignedIdentities") =>
        {
            match *method {
                Method::GET => ok(render::list(
                    k.list_identities(c, sub, None)
                        .await?
                        .iter()
                        .map(render::identity)
                        .collect(),
                )),
                _ => Err(method_not_allowed(method)),
            }
        }
        (_, [t, sub, r, rg, p, ns, ty, rest @ ..])
            if eq(t, "subscriptions")
                && eq(r, "resourcegroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.ManagedIdentity")
                && eq(ty, "userAssignedIdentities") =>
        {
            identities(state, c, method, sub, rg, rest, body).await
        }
        (_, [t, sub, p, ns, ty])
            if eq(t, "subscriptions")
                && eq(p, "providers")
                && eq(ns, "Microsoft.KeyVault")
                && eq(ty, "vaults") =>
        {
            match *method {
                Method::GET => {
                    let list = k.list_vaults(c, sub, None).await?;
                    ok(render::list(
                        list.iter()
                            .map(|v| render::vault(&k.settings().public, v))
                            .collect(),
                    ))
                }
                _ => Err(method_not_allowed(method)),
            }
        }
        (_, [t, sub, r, rg, p, ns, ty, rest @ ..])
            if eq(t, "subscriptions")
                && eq(r, "resourcegroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.KeyVault")
                && eq(ty, "vaults") =>
        {
            vaults(state, c, method, sub, rg, rest, body).await
        }
        _ => Err(not_found_path(path)),
    }
}

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

async fn vaults(
    state: &AppState,
    c: &Caller,
    method: &Method,
    sub: &str,
    rg: &str,
    rest: &[&str],
    body: &Bytes,
) -> ArmResult {
    let k = &state.keyless;
    let public = &k.settings().public;
    match (method, rest) {
        (&Method::GET, []) => ok(render::list(
            k.list_vaults(c, sub, Some(rg))
                .await?
                .iter()
                .map(|v| render::vault(public, v))
                .collect(),
        )),
        (_, [name]) => match *method {
            Method::PUT => {
                let put: VaultPut = json_body(body)?;
                let props = put.properties.unwrap_or_default();
                let bad = |m: &str| {
                    ArmResponseError::new(StatusCode::BAD_REQUEST, "BadRequest", m.to_string())
                };
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
                upserted(render::vault(public, &v), o)
            }
            Method::GET => ok(render::vault(public, &k.get_vault(c, sub, rg, name).await?)),
            Method::DELETE => deleted(k.delete_vault(c, sub, rg, name).await?),
            _ => Err(method_not_allowed(method)),
        },
        _ => Err(not_found_path(&format!("…/vaults/{}", rest.join("/")))),
    }
}

/// The index of `providers/Microsoft.Authorization` (the last one) in the path.
fn authorization_index(s: &[&str]) -> Option<usize> {
    (0..s.len().saturating_sub(2)).rev().find(|&i| {
        s.get(i).is_some_and(|p| eq(p, "providers"))
            && s.get(i + 1)
                .is_some_and(|n| eq(n, "Microsoft.Authorization"))
    })
}

fn family_of(s: &[&str]) -> Option<Family> {
    if authorization_index(s).is_some() {
        return Some(Family::Authorization);
    }
    if s.iter().any(|p| eq(p, "Microsoft.ManagedIdentity")) {
        return Some(Family::ManagedIdentity);
    }
    if s.iter().any(|p| eq(p, "Microsoft.KeyVault")) {
        return Some(Family::KeyVault);
    }
    match s {
        [t] | [t, _] if eq(t, "tenants") || eq(t, "subscriptions") => Some(Family::Tenants),
        [p, ns, ..] if eq(p, "providers") && eq(ns, "Keyless") => Some(Family::Keyless),
        [t, _, r, ..] if eq(t, "subscriptions") && eq(r, "resourcegroups") => {
            Some(Family::Resources)
        }
        _ => None,
    }
}

async fn identities(
    state: &AppState,
    c: &Caller,
    method: &Method,
    sub: &str,
    rg: &str,
    rest: &[&str],
    body: &Bytes,
) -> ArmResult {
    let k = &state.keyless;
    match (method, rest) {
        (&Method::GET, []) => ok(render::list(
            k.list_identities(c, sub, Some(rg))
                .await?
                .iter()
                .map(render::identity)
                .collect(),
        )),
        (_, [name]) => match *method {
            Method::PUT => {
                let put: keyless_proto::arm::TrackedResourcePut = json_body(body)?;
                let (i, o) = k
                    .put_identity(c, sub, rg, name, put.location.as_deref(), put.tags)
                    .await?;
                upserted(render::identity(&i), o)
            }
            Method::PATCH => {
                let patch: keyless_proto::arm::TrackedResourcePut = json_body(body)?;
                let current = k.get_identity(c, sub, rg, name).await?;
                if patch
                    .location
                    .as_deref()
                    .is_some_and(|l| !l.eq_ignore_ascii_case(&current.location))
                {
                    return Err(ArmResponseError::new(
                        StatusCode::BAD_REQUEST,
                        "LocationNotAvailable",
                        "The location of an identity cannot be changed.",
                    ));
                }
                let tags = patch.tags.or(Some(current.tags.clone()));
                let (i, _) = k
                    .put_identity(c, sub, rg, name, Some(&current.location), tags)
                    .await?;
                ok(render::identity(&i))
            }
            Method::GET => ok(render::identity(&k.get_identity(c, sub, rg, name).await?)),
            Method::DELETE => deleted(k.delete_identity(c, sub, rg, name).await?),
            _ => Err(method_not_allowed(method)),
        },
        (&Method::GET, [name, f]) if eq(f, "federatedIdentityCredentials") => {
            let identity = k.get_identity(c, sub, rg, name).await?;
            let list = k.list_federated_credentials(c, sub, rg, name).await?;
            ok(render::list(
                list.iter()
                    .map(|f| render::federated_credential(&identity, f))
                    .collect(),
            ))
        }
        (_, [name, f, fic]) if eq(f, "federatedIdentityCredentials") => match *method {
            Method::PUT => {
                let put: FicPut = json_body(body)?;
                let input = FederatedCredentialInput::from_properties(put.properties)?;
                let (rec, o) = k
                    .put_federated_credential(c, sub, rg, name, fic, input)
                    .await?;
                let identity = k.get_identity(c, sub, rg, name).await?;
                upserted(render::federated_credential(&identity, &rec), o)
            }
            Method::GET => {
                let rec = k.get_federated_credential(c, sub, rg, name, fic).await?;
                let identity = k.get_identity(c, sub, rg, name).await?;
                ok(render::federated_credential(&identity, &rec))
            }
            Method::DELETE => deleted(k.delete_federated_credential(c, sub, rg, name, fic).await?),
            _ => Err(method_not_allowed(method)),
        },
        _ => Err(not_found_path(&format!(
            "…/userAssignedIdentities/{}",
            rest.join("/")
        ))),
    }
}

/// Parses an OData-ish `$filter` of the forms the SDKs and az send.
fn filter_value<'a>(filter: &'a str, key: &str) -> Option<&'a str> {
    let f = filter.trim();
    let lower = f.to_ascii_lowercase();
    let prefix = format!("{} eq '", key.to_ascii_lowercase());
    if lower.starts_with(&prefix) && f.ends_with('\'') {
        return f.get(prefix.len()..f.len() - 1);
    }
    let call = format!("{}('", key.to_ascii_lowercase());
    if lower.starts_with(&call) && f.ends_with("')") {
        return f.get(call.len()..f.len() - 2);
    }
    None
}

async fn authorization(
    state: &AppState,
    c: &Caller,
    method: &Method,
    scope: &str,
    rest: &[&str],
    q: &[(String, String)],
    body: &Bytes,
) -> ArmResult {
    let k = &state.keyless;
    let filter = param(q, "$filter").unwrap_or("");
    match (method, rest) {
        (&Method::GET, [d]) if eq(d, "roleDefinitions") => {
            let name = filter_value(filter, "roleName");
            let defs = k.list_role_definitions(c, scope, name).await?;
            ok(render::list(
                defs.iter()
                    .map(|r| render::role_definition(scope, r))
                    .collect(),
            ))
        }
        (&Method::GET, [d, id]) if eq(d, "roleDefinitions") => ok(render::role_definition(
            scope,
            k.get_role_definition(c, scope, id).await?,
        )),
        (&Method::GET, [a]) if eq(a, "roleAssignments") => {
            let principal =
                filter_value(filter, "principalId").or_else(|| filter_value(filter, "assignedTo"));
            let at_scope = filter.to_ascii_lowercase().contains("atscope()");
            let list = k
                .list_role_assignments(c, scope, principal, at_scope)
                .await?;
            ok(render::list(
                list.iter().map(render::role_assignment).collect(),
            ))
        }
        (_, [a, name]) if eq(a, "roleAssignments") => match *method {
            Method::PUT => {
                let put: keyless_proto::arm::RoleAssignmentPut = json_body(body)?;
                let input = RoleAssignmentInput::from_properties(put.properties)?;
                let rec = k.put_role_assignment(c, scope, name, input).await?;
                Ok((StatusCode::CREATED, Json(render::role_assignment(&rec))).into_response())
            }
            Method::GET => ok(render::role_assignment(
                &k.get_role_assignment(c, scope, name).await?,
            )),
            Method::DELETE => match k.delete_role_assignment(c, scope, name).await? {
                Some(rec) => ok(render::role_assignment(&rec)),
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            },
            _ => Err(method_not_allowed(method)),
        },
        _ => Err(not_found_path(&format!(
            "{scope}/providers/Microsoft.Authorization/{}",
            rest.join("/")
        ))),
    }
}

async fn rotate_keys(state: &AppState, c: &Caller, q: &[(String, String)]) -> ArmResult {
    let k = &state.keyless;
    k.authorize(c, "/", "Keyless/signingKeys/rotate/action")?;
    let prepublish = match param(q, "prepublishSeconds") {
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| (0..=30 * 86400).contains(n))
                .ok_or_else(|| {
                    ArmResponseError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameter",
                        "prepublishSeconds must be an integer from 0 to 2592000.",
                    )
                })?,
        ),
        None => None,
    };
    let alg = match param(q, "alg") {
        None => None,
        Some(name) => match keyless_jose::Alg::from_name(name) {
            Some(
                a @ (keyless_jose::Alg::ES256
                | keyless_jose::Alg::ES384
                | keyless_jose::Alg::RS256
                | keyless_jose::Alg::PS256
                | keyless_jose::Alg::EdDSA),
            ) => Some(a),
            _ => {
                return Err(ArmResponseError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    "alg must be one of ES256, ES384, RS256, PS256, EdDSA.",
                ));
            }
        },
    };
    let kid = k
        .rotate_signing_key(&c.tenant_id, prepublish, alg)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "key rotation failed");
            ArmResponseError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Key rotation failed; see the server log.",
            )
        })?;
    let ring = k.key_ring();
    let key = ring.by_kid(&kid);
    ok(serde_json::json!({
        "kid": kid,
        "alg": key.map(|k| k.record.alg.clone()),
        "activeFrom": key.map(|k| k.record.active_from),
        "publishedKeys": ring.tenant_keys(&c.tenant_id).iter().map(|k| k.record.kid.clone()).collect::<Vec<_>>(),
    }))
}

/// Body of an explain request.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExplainRequest {
    client_id: String,
    assertion: String,
}

/// Body of a trusted issuer PUT.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedIssuerPut {
    properties: Option<TrustedIssuerProperties>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedIssuerProperties {
    issuer: Option<Value>,
    jwks: Option<Value>,
}

fn parse_since(v: &str) -> Result<i64, ArmResponseError> {
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            ArmResponseError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "since must be Unix seconds or an RFC 3339 time.",
            )
        })
}

async fn keyless_provider(
    state: &AppState,
    c: &Caller,
    method: &Method,
    rest: &[&str],
    q: &[(String, String)],
    body: &Bytes,
) -> ArmResult {
    let k = &state.keyless;
    match (method, rest) {
        (&Method::GET, [t]) if eq(t, "trustedIssuers") => ok(render::list(
            k.list_trusted_issuers(c)?
                .iter()
                .map(render::trusted_issuer)
                .collect(),
        )),
        (_, [t, name]) if eq(t, "trustedIssuers") => match *method {
            Method::PUT => {
                let put: TrustedIssuerPut = json_body(body)?;
                let props = put.properties.ok_or_else(|| {
                    ArmResponseError::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "The 'properties' object is required.",
                    )
                })?;
                let (rec, o) = k
                    .put_trusted_issuer(c, name, props.issuer.as_ref(), props.jwks.as_ref())
                    .await?;
                upserted(render::trusted_issuer(&rec), o)
            }
            Method::GET => ok(render::trusted_issuer(&k.get_trusted_issuer(c, name)?)),
            Method::DELETE => deleted(k.delete_trusted_issuer(c, name).await?),
            _ => Err(method_not_allowed(method)),
        },
        (&Method::POST, [e]) if eq(e, "explain") => {
            let req: ExplainRequest = json_body(body)?;
            let steps = k.explain(c, &req.client_id, req.assertion.trim()).await?;
            let ok_all = steps.iter().all(|s| s.ok);
            ok(serde_json::json!({ "wouldSucceed": ok_all, "steps": steps }))
        }
        (&Method::GET, [l]) if eq(l, "signInLogs") => {
            let since = param(q, "since").map(parse_since).transpose()?;
            let failed = param(q, "failed").is_some_and(|v| eq(v, "true"));
            let top = match param(q, "top") {
                Some(v) => v.parse::<u32>().map_err(|_| {
                    ArmResponseError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameter",
                        "top must be a positive integer.",
                    )
                })?,
                None => 100,
            };
            let rows = k
                .query_signins(c, param(q, "clientId"), failed, since, top)
                .await?;
            ok(render::list(rows.iter().map(render::signin).collect()))
        }
        _ => Err(not_found_path(&format!(
            "/providers/Keyless/{}",
            rest.join("/")
        ))),
    }
}
