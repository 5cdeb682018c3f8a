//! OpenID discovery documents and the tenant's JWKS.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keyless_proto::oidc::OpenIdConfiguration;

use crate::errors::{correlation_id, oauth_error};
use crate::router::AppState;

fn config(state: &AppState, tenant: &str, v2: bool) -> OpenIdConfiguration {
    let public = &state.keyless.settings().public;
    let base = format!("{}/{tenant}", public.authority());
    let (issuer, token, authorize, jwks) = if v2 {
        (
            public.issuer_v2(tenant),
            format!("{base}/oauth2/v2.0/token"),
            format!("{base}/oauth2/v2.0/authorize"),
            format!("{base}/discovery/v2.0/keys"),
        )
    } else {
        (
            public.issuer_v1(tenant),
            format!("{base}/oauth2/token"),
            format!("{base}/oauth2/authorize"),
            format!("{base}/discovery/keys"),
        )
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    OpenIdConfiguration {
        issuer,
        token_endpoint: token,
        authorization_endpoint: authorize,
        jwks_uri: jwks,
        token_endpoint_auth_methods_supported: strings(&[
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
        ]),
        response_types_supported: strings(&["token"]),
        subject_types_supported: strings(&["pairwise"]),
        id_token_signing_alg_values_supported: vec![
            state.keyless.settings().signing_alg.as_str().to_string(),
        ],
        scopes_supported: strings(&["openid"]),
        grant_types_supported: strings(&["client_credentials"]),
        tenant_region_scope: None,
    }
}

/// The tenant named by the path, or Entra's error answer for an unknown one.
fn tenant_or_error(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<String, Box<Response>> {
    state.keyless.resolve_tenant(tenant).map_err(|e| {
        Box::new(oauth_error(
            &e,
            &state.keyless.settings().public.authority(),
            &correlation_id(headers),
            state.keyless.now(),
        ))
    })
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (`V2`) and
/// `GET /{tenant}/.well-known/openid-configuration`.
pub async fn openid_configuration<const V2: bool>(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    match tenant_or_error(&state, &tenant, &headers) {
        Ok(t) => Json(config(&state, &t, V2)).into_response(),
        Err(answer) => *answer,
    }
}

/// `GET /{tenant}/discovery[/v2.0]/keys`: every published key of the tenant, the
/// pre-published next key and retired keys whose tokens may still be alive included.
pub async fn jwks(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    match tenant_or_error(&state, &tenant, &headers) {
        Ok(t) => Json(state.keyless.key_ring().jwks(&t)).into_response(),
        Err(answer) => *answer,
    }
}
