//! The failures-per-address limit as a router layer, and the 429 answer in each
//! protocol's error shape.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keyless_core::grant::{GrantError, OAuthError};

use super::{Limit, Throttled, client_address};
use crate::router::AppState;

/// The address a request is attributed to (limits and the sign-in log): the peer, or
/// the client named by a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The protocol whose error shape a refusal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Entra's token service.
    OAuth,
    /// The management API.
    Arm,
    /// A vault's data plane.
    KeyVault,
}

/// Entra's AADSTS number for "too many incoming requests".
const THROTTLED_AADSTS: u32 = 90055;

/// Refuses requests from an address whose failures are over the limit (before any
/// work), and charges the address for each request that fails in a way an attacker
/// makes happen: a refused token request, or a refused bearer token.
pub(crate) async fn limit_failures(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        // Not served from a socket (in-process callers): nothing to attribute.
        return next.run(req).await;
    };
    let throttle = &state.throttle;
    let address = client_address(peer, req.headers(), throttle.trusted_proxies());
    req.extensions_mut().insert(ClientAddress(address));
    if let Err(t) = throttle.check_address(address, Instant::now()) {
        // Only a refusal needs the protocol and a correlation id: the common path
        // neither parses the host nor makes an id.
        let correlation = crate::errors::correlation_id(req.headers());
        return throttled(&state, protocol_of(&state, &req), t, &correlation);
    }
    let token_request = req.method() == Method::POST
        && req.uri().path().ends_with("/token")
        && protocol_of(&state, &req) == Protocol::OAuth;
    let had_credentials = req.headers().contains_key(header::AUTHORIZATION);
    let resp = next.run(req).await;
    let status = resp.status();
    let failed = if token_request {
        status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS
    } else {
        // A 401 to a request without credentials is the challenge every Key Vault
        // client asks for first: normal, and cheap. A refused token cost a verify.
        status == StatusCode::UNAUTHORIZED && had_credentials
    };
    if failed {
        throttle.charge_failure(address, Instant::now());
    }
    resp
}

fn protocol_of(state: &AppState, req: &Request) -> Protocol {
    let public_host = &state.keyless.settings().public.host;
    let vault = crate::router::request_host(req)
        .is_some_and(|h| crate::vault::vault_name_from_host(&h, public_host).is_some());
    if vault {
        Protocol::KeyVault
    } else if crate::router::is_token_service_path(req.uri().path()) {
        Protocol::OAuth
    } else {
        Protocol::Arm
    }
}

/// 429 with `Retry-After`, in `protocol`'s error shape.
pub(crate) fn throttled(
    state: &AppState,
    protocol: Protocol,
    t: Throttled,
    correlation: &str,
) -> Response {
    let why = match t.limit {
        Limit::Client => "Too many token requests for this client",
        Limit::FailuresPerAddress => "Too many failed requests from this address",
        Limit::Principal => "Too many requests from this principal",
    };
    let message = format!(
        "{why}; retry after {} seconds. (Keyless rate limit, per server replica.)",
        t.retry_after
    );
    let mut resp = match protocol {
        Protocol::OAuth => {
            let k = &state.keyless;
            crate::errors::oauth_error(
                &GrantError::new(
                    OAuthError::TemporarilyUnavailable,
                    THROTTLED_AADSTS,
                    message,
                ),
                &k.settings().public.authority(),
                correlation,
                k.now(),
            )
        }
        Protocol::Arm => crate::errors::ArmResponseError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            message,
        )
        .into_response(),
        Protocol::KeyVault => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(crate::vault::render::error("Throttled", &message, None)),
        )
            .into_response(),
    };
    let h = resp.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after));
    if let Ok(v) = HeaderValue::from_str(correlation) {
        h.insert("client-request-id", v);
    }
    resp
}
