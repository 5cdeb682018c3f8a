//! The JSON routes the page calls. They relay to the management API and to vaults with
//! the console's credentials, which never leave this process:
//!
//! | route | relays to |
//! |---|---|
//! | `GET /api/session` | who the console acts as (no secret) |
//! | `/api/arm/{path}?{query}` | `{resourceManagerUrl}/{path}?{query}` (`subscriptions/…`, `providers/…`, `tenants`) |
//! | `/api/vault/{vault}/{path}?{query}` | `https://{vault}.vault.HOST/{path}` with the operator's vault token |
//!
//! Replies keep the upstream status and body, so the page shows the API's own message.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{Console, json_error, json_reply};
use super::upstream::Reply;

/// First path segments the management relay accepts.
const ARM_ROOTS: [&str; 3] = ["subscriptions", "providers", "tenants"];

/// Serves one `/api/…` request (the guard has already checked it).
pub async fn handle(console: &Console, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body = match Bytes::from_request(request, &()).await {
        Ok(b) => b,
        Err(rejection) => return rejection.into_response(),
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if path == "/api/session" {
        if method != Method::GET {
            return method_not_allowed();
        }
        let who = console.upstream.identity();
        return json_reply(
            StatusCode::OK,
            &json!({
                "source": who.source,
                "clientId": who.client_id,
                "tenantId": who.tenant_id,
                "subscriptionId": who.subscription,
                "authorityHost": who.authority_host,
            }),
        );
    }
    if let Some(rest) = path.strip_prefix("/api/arm") {
        let root = rest.trim_start_matches('/').split('/').next().unwrap_or("");
        if !ARM_ROOTS.iter().any(|r| r.eq_ignore_ascii_case(root)) {
            return not_found(&path);
        }
        return relayed(console.upstream.arm(method, rest, &query, body).await);
    }
    if let Some(rest) = path.strip_prefix("/api/vault/") {
        let (vault, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_vault_name(vault) {
            return json_error(
                StatusCode::BAD_REQUEST,
                "InvalidVaultName",
                "A vault name has 3-24 letters, digits and dashes.",
            );
        }
        let rest = format!("/{rest}");
        return relayed(
            console
                .upstream
                .vault(vault, method, &rest, &query, body)
                .await,
        );
    }
    not_found(&path)
}

fn parse_body(bytes: &Bytes) -> Result<Option<Value>, Box<Response>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| {
        Box::new(json_error(
            StatusCode::BAD_REQUEST,
            "InvalidJson",
            &format!("The request body is not JSON: {e}"),
        ))
    })
}

fn relayed(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    if reply.body.is_null() {
        return status.into_response();
    }
    json_reply(status, &reply.body)
}

fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn not_found(path: &str) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("The console has no API route {path}."),
    )
}

fn method_not_allowed() -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "This route is read with GET.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_names_are_checked() {
        assert!(valid_vault_name("kv-1"));
        assert!(!valid_vault_name("kv"));
        assert!(!valid_vault_name("a.b.c"));
        assert!(!valid_vault_name("evil.test#"));
    }
}
