//! Matches an ARM path to the operation that serves it. Handlers live with their
//! resource family; this module only reads the path's shape.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use keyless_core::error::ManagementError;
use keyless_core::ids::CanonicalScope;

use super::auth::authenticate;
use super::authorization::authorization_index;
use super::reply::{ArmResult, not_found_path};
use super::request::{check_api_version, eq, path_segments, query_params};
use super::versions::Family;
use super::{authorization, identities, provider, resources, vaults};
use crate::router::AppState;

/// The fallback handler: every path that is not the token service.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(&state, &method, &uri, &headers, &body).await {
        Ok(r) => super::paging::page(r, &state.keyless.settings().public.authority(), &uri),
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
    let segs = path_segments(path)?;
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let family = family_of(&s).ok_or_else(|| not_found_path(path))?;
    let q = query_params(uri);
    check_api_version(family, &q)?;
    let caller = authenticate(&state.keyless, headers)?;
    if let Err(t) = state
        .throttle
        .take_principal(&caller.object_id, std::time::Instant::now())
    {
        let correlation = crate::errors::correlation_id(headers);
        return Ok(crate::throttle::throttled(
            state,
            crate::throttle::Protocol::Arm,
            t,
            &correlation,
        ));
    }
    let k = &state.keyless;
    let c = &caller;

    // Role definitions and assignments hang off any scope. The scope is canonicalised
    // from the decoded segments, where an encoded `%2F` is still visible inside its
    // segment (and refused): joined first, it would read as a different path.
    if let Some(i) = authorization_index(&s) {
        let scope = CanonicalScope::from_segments(s.get(..i).unwrap_or_default().iter().copied())
            .map_err(ManagementError::from)?;
        let rest = s.get(i + 2..).unwrap_or_default();
        return authorization::at_scope(k, c, method, scope.id(), rest, &q, body).await;
    }

    match (method, s.as_slice()) {
        (&Method::GET, [t]) if eq(t, "tenants") => resources::list_tenants(c),
        (&Method::GET, [t]) if eq(t, "subscriptions") => resources::list_subscriptions(k, c),
        (&Method::GET, [t, sub]) if eq(t, "subscriptions") => {
            resources::get_subscription(k, c, sub)
        }
        (&Method::POST, [p, ns, keys, rotate])
            if eq(p, "providers")
                && eq(ns, "Keyless")
                && eq(keys, "signingKeys")
                && eq(rotate, "rotate") =>
        {
            provider::rotate_keys(k, c, &q).await
        }
        (_, [p, ns, rest @ ..]) if eq(p, "providers") && eq(ns, "Keyless") => {
            provider::operations(k, c, method, rest, &q, body).await
        }
        (_, [t, sub, r]) if eq(t, "subscriptions") && eq(r, "resourcegroups") => {
            resources::resource_groups(k, c, method, sub).await
        }
        (_, [t, sub, r, rg]) if eq(t, "subscriptions") && eq(r, "resourcegroups") => {
            resources::resource_group(k, c, method, sub, rg, body).await
        }
        (_, [t, sub, p, ns, ty])
            if eq(t, "subscriptions")
                && eq(p, "providers")
                && eq(ns, "Microsoft.ManagedIdentity")
                && eq(ty, "userAssignedIdentities") =>
        {
            identities::in_subscription(k, c, method, sub).await
        }
        (_, [t, sub, r, rg, p, ns, ty, rest @ ..])
            if eq(t, "subscriptions")
                && eq(r, "resourcegroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.ManagedIdentity")
                && eq(ty, "userAssignedIdentities") =>
        {
            identities::in_resource_group(k, c, method, sub, rg, rest, body).await
        }
        (_, [t, sub, p, ns, ty])
            if eq(t, "subscriptions")
                && eq(p, "providers")
                && eq(ns, "Microsoft.KeyVault")
                && eq(ty, "vaults") =>
        {
            vaults::in_subscription(k, c, method, sub).await
        }
        (_, [t, sub, r, rg, p, ns, ty, rest @ ..])
            if eq(t, "subscriptions")
                && eq(r, "resourcegroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.KeyVault")
                && eq(ty, "vaults") =>
        {
            vaults::in_resource_group(k, c, method, sub, rg, rest, body).await
        }
        _ => Err(not_found_path(path)),
    }
}

/// The resource family a path belongs to, which decides the accepted `api-version`s;
/// `None` when no family serves it.
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
