//! Data-plane responses: JSON with Key Vault's content type, and its error shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyless_core::vault::VaultError;
use serde_json::Value;

use super::render;

/// A reply, or a refusal already rendered (boxed: responses are large).
pub(super) type Reply = Result<Response, Box<Response>>;

/// `body` as Key Vault sends JSON (with `charset`).
pub(super) fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A domain refusal in Key Vault's error shape.
pub(super) fn vault_error(e: &VaultError) -> Response {
    json_response(
        crate::errors::status_of(e.kind),
        render::error(&e.code, &e.message, e.inner.as_deref()),
    )
}

/// 400 `BadParameter`.
pub(super) fn bad(message: impl Into<String>) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        render::error("BadParameter", &message.into(), None),
    )
}
