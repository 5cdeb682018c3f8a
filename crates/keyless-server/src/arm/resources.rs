//! Tenants, subscriptions and resource groups (`Microsoft.Resources`).

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use keyless_core::Keyless;
use keyless_core::tokens::Caller;

use super::render;
use super::reply::{ArmResult, deleted, listed, method_not_allowed, ok, upserted};
use super::request::json_body;

/// `GET /tenants`: the caller's tenant.
pub(super) fn list_tenants(c: &Caller) -> ArmResult {
    listed(vec![render::tenant(&c.tenant_id)])
}

/// `GET /subscriptions`.
pub(super) fn list_subscriptions(k: &Keyless, c: &Caller) -> ArmResult {
    listed(
        k.list_subscriptions(c)
            .iter()
            .map(render::subscription)
            .collect(),
    )
}

/// `GET /subscriptions/{sub}`.
pub(super) fn get_subscription(k: &Keyless, c: &Caller, sub: &str) -> ArmResult {
    ok(render::subscription(&k.get_subscription(c, sub)?))
}

/// `/subscriptions/{sub}/resourcegroups`.
pub(super) async fn resource_groups(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
) -> ArmResult {
    match *method {
        Method::GET => listed(
            k.list_resource_groups(c, sub)
                .await?
                .iter()
                .map(render::resource_group)
                .collect(),
        ),
        _ => Err(method_not_allowed(method)),
    }
}

/// `/subscriptions/{sub}/resourcegroups/{rg}`.
pub(super) async fn resource_group(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
    rg: &str,
    body: &Bytes,
) -> ArmResult {
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
