//! OAuth 2.0 token endpoint shapes (Entra ID v1 and v2 flavours).

use serde::{Deserialize, Serialize};

/// `client_assertion_type` value for a JWT bearer client assertion (RFC 7523).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The audience Kubernetes projected tokens carry for workload identity.
pub const DEFAULT_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Form parameters of a token request. Unknown parameters (MSAL's `client_info`,
/// telemetry fields, `claims`) are accepted and ignored, as Entra does.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    /// `client_credentials` is the only grant Keyless serves on these endpoints.
    pub grant_type: Option<String>,
    /// Application (client) id of the caller.
    pub client_id: Option<String>,
    /// Client secret, for service principals that have one.
    pub client_secret: Option<String>,
    /// Signed assertion (the federated token), for `jwt-bearer`.
    pub client_assertion: Option<String>,
    /// Must be [`JWT_BEARER_ASSERTION_TYPE`] when an assertion is given.
    pub client_assertion_type: Option<String>,
    /// v2 endpoint: `{resource}/.default`.
    pub scope: Option<String>,
    /// v1 endpoint: the resource URI itself.
    pub resource: Option<String>,
}

/// Successful v2 token response. Exactly these fields: MSAL's cache breaks on string
/// numbers, the Rust SDK requires an integer `expires_in`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponseV2 {
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// Same as `expires_in` (Entra's resilience extension).
    pub ext_expires_in: i64,
    /// The signed access token.
    pub access_token: String,
    /// Seconds after which a client should refresh; only an integer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refresh_in: Option<i64>,
}

/// Successful v1 token response: numbers are JSON strings, as Entra's v1 endpoint
/// sends them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponseV1 {
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until expiry, as a string.
    pub expires_in: String,
    /// Same as `expires_in`.
    pub ext_expires_in: String,
    /// Expiry as Unix seconds, as a string.
    pub expires_on: String,
    /// Start of validity as Unix seconds, as a string.
    pub not_before: String,
    /// The resource the token is for.
    pub resource: String,
    /// The signed access token.
    pub access_token: String,
}

/// Entra-shaped OAuth error body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthErrorBody {
    /// RFC 6749 error code (`invalid_client`, `invalid_request`, ...).
    pub error: String,
    /// `AADSTSnnnn: text Trace ID: .. Correlation ID: .. Timestamp: ..`.
    pub error_description: String,
    /// The AADSTS numbers.
    pub error_codes: Vec<u32>,
    /// `YYYY-MM-DD HH:MM:SSZ`.
    pub timestamp: String,
    /// Server-generated trace id.
    pub trace_id: String,
    /// The caller's `client-request-id`, or a generated one.
    pub correlation_id: String,
    /// Link to a description of the code.
    pub error_uri: String,
}
