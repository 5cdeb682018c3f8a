//! Role definitions and role assignments (`Microsoft.Authorization`), which hang off
//! any scope.

use axum::Json;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use keyless_core::Keyless;
use keyless_core::management::RoleAssignmentInput;
use keyless_core::tokens::Caller;

use super::render;
use super::reply::{ArmResult, listed, method_not_allowed, not_found_path, ok};
use super::request::{eq, json_body, param};

/// The index of `providers/Microsoft.Authorization` (the last one) in the path.
pub(super) fn authorization_index(s: &[&str]) -> Option<usize> {
    (0..s.len().saturating_sub(2)).rev().find(|&i| {
        s.get(i).is_some_and(|p| eq(p, "providers"))
            && s.get(i + 1)
                .is_some_and(|n| eq(n, "Microsoft.Authorization"))
    })
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

/// Everything under `{scope}/providers/Microsoft.Authorization`; `rest` is the path
/// after it.
pub(super) async fn at_scope(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    scope: &str,
    rest: &[&str],
    q: &[(String, String)],
    body: &Bytes,
) -> ArmResult {
    let filter = param(q, "$filter").unwrap_or("");
    match (method, rest) {
        (&Method::GET, [d]) if eq(d, "roleDefinitions") => {
            let name = filter_value(filter, "roleName");
            let defs = k.list_role_definitions(c, scope, name).await?;
            listed(
                defs.iter()
                    .map(|r| render::role_definition(scope, r))
                    .collect(),
            )
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
            listed(list.iter().map(render::role_assignment).collect())
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
