//! `POST /{tenant}/oauth2/v2.0/token` and `POST /{tenant}/oauth2/token`.

use axum::body::Bytes;
use axum::{Extension, Json};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keyless_core::grant::{Endpoint, GrantError, OAuthError, RequestContext};
use keyless_proto::oauth::{TokenRequest, TokenResponseV1, TokenResponseV2};

use crate::errors::{correlation_id, no_store, oauth_error};
use crate::router::AppState;
use crate::throttle::{ClientAddress, Protocol, throttled};

/// Largest token request form (an assertion is at most 16 KiB; MSAL adds claims and
/// telemetry).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, GrantError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(GrantError::new(
            OAuthError::InvalidRequest,
            900144,
            "The request body must be application/x-www-form-urlencoded.",
        ));
    }
    let mut req: TokenRequest = serde_urlencoded::from_bytes(body).map_err(|e| {
        GrantError::new(
            OAuthError::InvalidRequest,
            900144,
            format!("The request body is not a valid form: {e}."),
        )
    })?;
    // client_secret_basic: credentials in the Authorization header.
    if req.client_secret.is_none()
        && let Some((id, secret)) = basic_credentials(headers)
    {
        if req.client_id.as_deref().is_some_and(|c| c != id) {
            return Err(GrantError::new(
                OAuthError::InvalidRequest,
                900144,
                "client_id differs between the body and the Authorization header.",
            ));
        }
        req.client_id = Some(id);
        req.client_secret = Some(secret);
    }
    Ok(req)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_value(id)?, form_value(secret)?))
}

/// Decodes one `application/x-www-form-urlencoded` value, as RFC 6749 §2.3.1 encodes
/// Basic credentials: `+` is a space, escapes must decode to UTF-8. `&` and `=` are
/// part of the value, never separators.
fn form_value(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

async fn answer(
    state: &AppState,
    tenant: &str,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: Endpoint,
) -> Response {
    let correlation = correlation_id(headers);
    let keyless = &state.keyless;
    let ctx = RequestContext {
        client_ip: client.map(|ip| ip.to_string()),
        correlation_id: correlation.clone(),
    };
    let result = match parse_form(headers, body) {
        Ok(req) => {
            // Checked after the (cheap) form parse, before anything that costs: a
            // throttled request does no crypto and writes no sign-in row.
            let client_id = req.client_id.as_deref().unwrap_or_default();
            if let Err(t) = state
                .throttle
                .take_client(tenant, client_id, Instant::now())
            {
                return throttled(state, Protocol::OAuth, t, &correlation);
            }
            keyless.token_request(tenant, &req, endpoint, &ctx).await
        }
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(t) => match endpoint {
            Endpoint::V2 => Json(TokenResponseV2 {
                token_type: "Bearer".into(),
                expires_in: t.expires_in,
                ext_expires_in: t.expires_in,
                access_token: t.access_token,
                refresh_in: None,
            })
            .into_response(),
            Endpoint::V1 => Json(TokenResponseV1 {
                token_type: "Bearer".into(),
                expires_in: t.expires_in.to_string(),
                ext_expires_in: t.expires_in.to_string(),
                expires_on: t.expires_on.to_string(),
                not_before: t.not_before.to_string(),
                resource: t.resource,
                access_token: t.access_token,
            })
            .into_response(),
        },
        Err(e) => {
            tracing::info!(
                code = e.code,
                error = e.error.as_str(),
                "token request refused"
            );
            oauth_error(
                &e,
                &keyless.settings().public.authority(),
                &correlation,
                keyless.now(),
            )
        }
    };
    let h = resp.headers_mut();
    no_store(h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&correlation) {
        h.insert("client-request-id", v);
    }
    resp
}

/// The token endpoints: `/{tenant}/oauth2/v2.0/token` and `/{tenant}/oauth2/token`.
pub async fn token<const V2: bool>(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = if V2 { Endpoint::V2 } else { Endpoint::V1 };
    // The address the limits resolved (a trusted proxy's client), else the peer.
    let client = address.map_or(peer.ip(), |Extension(ClientAddress(ip))| ip);
    answer(&state, &tenant, Some(client), &headers, &body, endpoint).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let b64 = base64::engine::general_purpose::STANDARD.encode(user_pass);
        if let Ok(v) = HeaderValue::from_str(&format!("Basic {b64}")) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(
            basic_credentials(&basic("app%201:s%2Bx+y%26z=w&v")),
            Some(("app 1".to_owned(), "s+x y&z=w&v".to_owned()))
        );
        assert_eq!(
            basic_credentials(&basic("caf%C3%A9:100%25")),
            Some(("café".to_owned(), "100%".to_owned()))
        );
        assert_eq!(basic_credentials(&basic("id:%ff")), None);
        assert_eq!(basic_credentials(&basic("no-colon")), None);
    }
}
