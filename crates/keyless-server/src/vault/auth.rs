//! Data-plane authentication: a bearer token for the vault resource, or the challenge
//! the SDKs answer by fetching one.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use keyless_core::tokens::Caller;

use super::render;
use super::reply::json_response;
use crate::router::AppState;

/// The 401 challenge both SDKs parse: `authorization` is the token service with the
/// vault's tenant, `resource` the vault resource (port included when not 443). No `,`
/// or `=` inside values.
fn challenge(state: &AppState, tenant: &str, message: &str) -> Response {
    let public = &state.keyless.settings().public;
    let value = format!(
        "Bearer authorization=\"{}/{tenant}\", resource=\"{}\"",
        public.authority(),
        public.vault_resource()
    );
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        render::error("Unauthorized", message, None),
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The caller of a data-plane request to a vault of `tenant`, or the challenge.
pub(super) fn authenticate(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<Caller, Box<Response>> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(Box::new(challenge(
            state,
            tenant,
            "AKV10000: Request is missing a Bearer or PoP token.",
        )));
    }
    let token = crate::bearer::bearer_token(headers).unwrap_or_default();
    let k = &state.keyless;
    k.authenticate(token, &k.settings().public.vault_resource())
        .map_err(|r| Box::new(challenge(state, tenant, &format!("AKV10022: {r}"))))
}
