//! Keyless' own operations under `/providers/Keyless`: signing-key rotation, static-JWKS
//! trusted issuers, the explain dry run and the sign-in log.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use keyless_core::Keyless;
use keyless_core::tokens::Caller;
use serde_json::Value;

use super::render;
use super::reply::{ArmResult, deleted, listed, method_not_allowed, not_found_path, ok, upserted};
use super::request::{eq, json_body, param};
use crate::errors::ArmResponseError;

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

/// The properties of a trusted issuer PUT, checked by the domain.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedIssuerProperties {
    issuer: Option<Value>,
    jwks: Option<Value>,
}

/// `POST /providers/Keyless/signingKeys/rotate[?prepublishSeconds=&alg=]`.
pub(super) async fn rotate_keys(k: &Keyless, c: &Caller, q: &[(String, String)]) -> ArmResult {
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

/// Everything else under `/providers/Keyless`; `rest` is the path after it.
pub(super) async fn operations(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    rest: &[&str],
    q: &[(String, String)],
    body: &Bytes,
) -> ArmResult {
    match (method, rest) {
        (&Method::GET, [t]) if eq(t, "trustedIssuers") => listed(
            k.list_trusted_issuers(c)?
                .iter()
                .map(render::trusted_issuer)
                .collect(),
        ),
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
            // Paged by row id, newest first: `$top` rows a page (`top` is its older
            // spelling), and a `$skipToken` naming the last row of the previous page,
            // so pages stay consistent while new rows arrive.
            let bad =
                |m: &str| ArmResponseError::new(StatusCode::BAD_REQUEST, "InvalidParameter", m);
            let top = match param(q, "$top").or_else(|| param(q, "top")) {
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad("$top must be an integer from 1 to 1000."))?,
                None => 100,
            };
            let before = param(q, "$skipToken")
                .map(|t| {
                    t.parse::<i64>().map_err(|_| {
                        bad("The $skipToken is invalid; use the nextLink of the previous page.")
                    })
                })
                .transpose()?;
            let mut rows = k
                .query_signins(c, param(q, "clientId"), failed, since, top + 1, before)
                .await?;
            let more = rows.len() > top as usize;
            rows.truncate(top as usize);
            let mut body =
                serde_json::json!({"value": rows.iter().map(render::signin).collect::<Vec<_>>()});
            if let (true, Some(last)) = (more, rows.last()) {
                let mut next: Vec<(String, String)> = q
                    .iter()
                    .filter(|(n, _)| !eq(n, "$top") && !eq(n, "top") && !eq(n, "$skipToken"))
                    .cloned()
                    .collect();
                next.push(("$top".into(), top.to_string()));
                next.push(("$skipToken".into(), last.id.to_string()));
                let link = serde_json::json!(format!(
                    "{}/providers/Keyless/signInLogs?{}",
                    k.settings().public.authority(),
                    serde_urlencoded::to_string(&next).unwrap_or_default()
                ));
                if let Some(o) = body.as_object_mut() {
                    o.insert("nextLink".into(), link);
                }
            }
            ok(body)
        }
        _ => Err(not_found_path(&format!(
            "/providers/Keyless/{}",
            rest.join("/")
        ))),
    }
}
