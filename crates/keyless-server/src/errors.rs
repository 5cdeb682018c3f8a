//! Error responses, one shape per protocol: Entra's OAuth error body for the token
//! service, ARM's `{"error":{"code","message"}}` for the management API.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyless_core::grant::{GrantError, OAuthError};
use keyless_core::{ErrorKind, ManagementError};
use keyless_proto::arm::{ArmError, ArmErrorBody};
use keyless_proto::oauth::OAuthErrorBody;

/// The caller's correlation id (`client-request-id` or `x-ms-client-request-id`) when it
/// is a sane token, else a new one.
pub fn correlation_id(headers: &HeaderMap) -> String {
    ["client-request-id", "x-ms-client-request-id"]
        .iter()
        .filter_map(|h| headers.get(*h))
        .filter_map(|v| v.to_str().ok())
        .find(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Renders a refused token request.
pub fn oauth_error(
    err: &GrantError,
    public_authority: &str,
    correlation: &str,
    now: i64,
) -> Response {
    let status = match err.error {
        OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::TemporarilyUnavailable => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let trace = uuid::Uuid::new_v4().to_string();
    let ts = keyless_core::grant::format_time(now);
    let body = OAuthErrorBody {
        error: err.error.as_str().to_string(),
        error_description: format!(
            "AADSTS{}: {} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {ts}",
            err.code, err.message
        ),
        error_codes: vec![err.code],
        timestamp: ts,
        trace_id: trace,
        correlation_id: correlation.to_string(),
        error_uri: format!("{public_authority}/error?code={}", err.code),
    };
    let mut resp = (status, axum::Json(body)).into_response();
    no_store(resp.headers_mut());
    resp
}

/// Marks a response as not cacheable (token responses and their errors).
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// An ARM error response.
#[derive(Debug, Clone)]
pub struct ArmResponseError {
    /// Status.
    pub status: StatusCode,
    /// ARM code.
    pub code: String,
    /// Message.
    pub message: String,
    /// `WWW-Authenticate` value for 401s.
    pub challenge: Option<String>,
}

impl ArmResponseError {
    /// A new error.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            challenge: None,
        }
    }
}

/// The HTTP status of a domain error class (ARM and Key Vault alike).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<ManagementError> for ArmResponseError {
    fn from(e: ManagementError) -> Self {
        let status = status_of(e.kind);
        Self {
            status,
            code: e.code,
            message: e.message,
            challenge: None,
        }
    }
}

impl IntoResponse for ArmResponseError {
    fn into_response(self) -> Response {
        let body = ArmErrorBody {
            error: ArmError {
                code: self.code,
                message: self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_format() {
        assert_eq!(keyless_core::grant::format_time(0), "1970-01-01 00:00:00Z");
    }
}
