//! The two protocols' response shapes.
//!
//! IMDS answers every token field as a JSON string (MSAL Python reads `expires_in`,
//! MSAL Node `expires_on`, both through conversions that accept strings) and errors as
//! `{"error", "error_description"}`. App Service 2019-08-01 answers
//! `{"access_token", "expires_on", "resource", "token_type", "client_id"}` with
//! `expires_on` in Unix seconds as a string (MSAL Python does `int(expires_on)`), and
//! errors as `{"statusCode", "message", "correlationId"}`, whose `message` the SDKs
//! show.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};
use keyless_credential::{AccessToken, Error};
use serde_json::{Map, Value, json};

/// Which protocol a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Azure IMDS.
    Imds,
    /// App Service 2019-08-01.
    AppService,
}

/// A refusal, rendered in the protocol's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    /// The OAuth-style error class (IMDS' `error`).
    pub error: String,
    /// The description (IMDS' `error_description`, App Service's `message`).
    pub description: String,
    /// What Keyless added, when the refusal is Keyless'.
    pub detail: Option<Box<ServiceDetail>>,
}

/// The parts of a Keyless refusal beyond its class and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceDetail {
    /// The AADSTS codes.
    pub codes: Vec<u64>,
    /// Keyless' correlation id.
    pub correlation_id: Option<String>,
    pub timestamp: Option<String>,
    pub trace_id: Option<String>,
}

impl Refusal {
    /// A refusal of the sidecar's own (not Keyless').
    pub(crate) fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_owned(),
            description: description.into(),
            detail: None,
        }
    }

    /// `400 invalid_request`.
    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// How a failure to get a token is told to the client.
    ///
    /// Keyless' refusals keep their 4xx status and AADSTS text, except 404 and 410,
    /// which the SDKs take for "IMDS is starting up" and retry for over a minute: they
    /// become 400. A 5xx from Keyless (after the credential's own retries) becomes 502,
    /// an unreachable Keyless 503: those are transient and worth the SDKs' retries. A
    /// token file that cannot be read is the pod's configuration: 400 with the reason.
    pub(crate) fn from_error(error: &Error) -> Self {
        match error {
            Error::Service(service) => {
                let status = match service.status {
                    404 | 410 => StatusCode::BAD_REQUEST,
                    s @ 400..=499 => StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST),
                    503 => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_GATEWAY,
                };
                Self {
                    status,
                    error: service
                        .error
                        .clone()
                        .unwrap_or_else(|| "invalid_request".to_owned()),
                    description: service
                        .error_description
                        .clone()
                        .unwrap_or_else(|| service.to_string()),
                    detail: Some(Box::new(ServiceDetail {
                        codes: service.error_codes.clone(),
                        correlation_id: service.correlation_id.clone(),
                        timestamp: service.timestamp.clone(),
                        trace_id: service.trace_id.clone(),
                    })),
                }
            }
            Error::Transport { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                error.to_string(),
            ),
            Error::InvalidResponse { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "server_error", error.to_string())
            }
            Error::TokenFile { .. } => Self::bad_request(error.to_string()),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                error.to_string(),
            ),
        }
    }

    /// The response in `protocol`'s error shape.
    pub(crate) fn render(&self, protocol: Protocol) -> Response<Body> {
        let detail = self.detail.as_deref();
        let correlation_id = detail
            .and_then(|d| d.correlation_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let body = match protocol {
            Protocol::Imds => {
                let mut body = Map::new();
                body.insert("error".into(), json!(self.error));
                body.insert("error_description".into(), json!(self.description));
                if let Some(d) = detail {
                    if !d.codes.is_empty() {
                        body.insert("error_codes".into(), json!(d.codes));
                    }
                    if let Some(t) = &d.timestamp {
                        body.insert("timestamp".into(), json!(t));
                    }
                    if let Some(t) = &d.trace_id {
                        body.insert("trace_id".into(), json!(t));
                    }
                }
                body.insert("correlation_id".into(), json!(correlation_id));
                Value::Object(body)
            }
            Protocol::AppService => json!({
                "statusCode": self.status.as_u16(),
                "message": self.description,
                "correlationId": correlation_id,
            }),
        };
        json_response(self.status, &body)
    }
}

/// The successful answer for `token`, asked for `resource`.
pub(crate) fn token_response(
    protocol: Protocol,
    token: &AccessToken,
    resource: &str,
    client_id: &str,
    not_before: Option<u64>,
) -> Response<Body> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires_on = u64::try_from(token.expires_on_unix()).unwrap_or(0);
    let expires_in = expires_on.saturating_sub(now);
    let body = match protocol {
        Protocol::Imds => json!({
            "access_token": token.secret(),
            "client_id": client_id,
            "expires_in": expires_in.to_string(),
            "expires_on": expires_on.to_string(),
            "ext_expires_in": expires_in.to_string(),
            "not_before": not_before.unwrap_or(now).to_string(),
            "resource": resource,
            "token_type": token.token_type(),
        }),
        Protocol::AppService => json!({
            "access_token": token.secret(),
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": token.token_type(),
            "client_id": client_id,
        }),
    };
    json_response(StatusCode::OK, &body)
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    // Tokens must not be kept by anything between the app and the sidecar.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
