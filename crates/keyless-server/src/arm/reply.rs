//! The success replies and routing refusals every resource family shares.

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use keyless_store::UpsertOutcome;
use serde_json::Value;

use crate::errors::ArmResponseError;

/// A management reply or its ARM error.
pub(super) type ArmResult = Result<Response, ArmResponseError>;

/// 200 with `value`.
pub(super) fn ok(value: Value) -> ArmResult {
    Ok(Json(value).into_response())
}

/// A list, paged by the dispatcher (`$top`, `$skipToken`, `nextLink`): handlers build
/// the whole list, one place pages it.
#[derive(Debug, Clone)]
pub(super) struct Listing(pub(super) Vec<Value>);

/// 200 with a page of `values` (see [`super::paging`]).
pub(super) fn listed(values: Vec<Value>) -> ArmResult {
    let mut r = StatusCode::OK.into_response();
    r.extensions_mut().insert(Listing(values));
    Ok(r)
}

/// 201 when the PUT created the resource, 200 when it replaced it.
pub(super) fn upserted(value: Value, outcome: UpsertOutcome) -> ArmResult {
    let status = match outcome {
        UpsertOutcome::Created => StatusCode::CREATED,
        UpsertOutcome::Updated => StatusCode::OK,
    };
    Ok((status, Json(value)).into_response())
}

/// 200 when the DELETE removed something, 204 when there was nothing to remove.
pub(super) fn deleted(existed: bool) -> ArmResult {
    Ok(if existed {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response())
}

/// 404 for a path no operation serves.
pub(super) fn not_found_path(path: &str) -> ArmResponseError {
    ArmResponseError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "No management operation is served at '{}'.",
            keyless_core::names::printable(path)
        ),
    )
}

/// 405 for a resource that exists but not with this method.
pub(super) fn method_not_allowed(method: &Method) -> ArmResponseError {
    ArmResponseError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The HTTP method '{method}' is not supported for this resource."),
    )
}
