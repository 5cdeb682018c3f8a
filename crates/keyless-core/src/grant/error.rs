//! The token endpoint's error vocabulary: OAuth error classes, the AADSTS-numbered
//! [`GrantError`], and one constructor per refusal so that the exchange and `explain`
//! word each one the same way.

use keyless_jose::TimeError;
use keyless_proto::oauth::JWT_BEARER_ASSERTION_TYPE;

use crate::names::printable;

/// RFC 6749 error classes, as Entra uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    /// 400.
    InvalidRequest,
    /// 401.
    InvalidClient,
    /// 400.
    InvalidGrant,
    /// 400.
    UnauthorizedClient,
    /// 400.
    UnsupportedGrantType,
    /// 400.
    InvalidScope,
    /// 400 (`invalid_resource`, Entra's extension).
    InvalidResource,
    /// 400 (`invalid_tenant`... Entra answers `invalid_request` with 90002; kept distinct).
    InvalidTenant,
    /// 500.
    ServerError,
    /// 429: a rate limit refused the request before any work was done
    /// (`temporarily_unavailable`, RFC 6749 §4.1.2.1; the SDKs retry 429 after
    /// `Retry-After`).
    TemporarilyUnavailable,
}

impl OAuthError {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::InvalidResource => "invalid_resource",
            OAuthError::InvalidTenant => "invalid_tenant",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A refused token request: the class, the AADSTS number and a message that says
/// what did not match.
///
/// `message` goes to the caller. Before an assertion's signature has verified, the
/// caller is anonymous, so the message names only what the caller sent; what would
/// disclose the identity's configuration or the server's network (trusted issuers,
/// credential names, why an issuer could not be fetched) is kept in
/// `operator_detail`, which reaches only the server log, the sign-in log and
/// `keyless explain` — never an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AADSTS{code}: {message}")]
pub struct GrantError {
    /// Error class.
    pub error: OAuthError,
    /// AADSTS number.
    pub code: u32,
    /// Explanation for the caller (without the `AADSTSnnn:` prefix).
    pub message: String,
    /// What only an operator may see (never rendered to the caller).
    pub operator_detail: Option<String>,
}

impl GrantError {
    /// A new error.
    pub fn new(error: OAuthError, code: u32, message: impl Into<String>) -> Self {
        Self {
            error,
            code,
            message: message.into(),
            operator_detail: None,
        }
    }

    /// Adds what only an operator may see.
    pub fn with_operator_detail(mut self, detail: impl Into<String>) -> Self {
        self.operator_detail = Some(detail.into());
        self
    }

    /// The message with the operator detail, for the sign-in log and `explain`.
    pub fn for_operator(&self) -> String {
        match &self.operator_detail {
            Some(d) => format!("{} {d}", self.message),
            None => self.message.clone(),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SSZ`: the timestamp format of Entra errors, also used in messages.
pub fn format_time(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| unix.to_string())
}

pub(crate) fn missing(param: &str) -> GrantError {
    GrantError::new(
        OAuthError::InvalidRequest,
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

pub(crate) fn unknown_tenant(segment: &str) -> GrantError {
    GrantError::new(
        OAuthError::InvalidTenant,
        90002,
        format!(
            "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            printable(segment)
        ),
    )
}

pub(crate) fn unsupported_grant_type(grant_type: &str) -> GrantError {
    GrantError::new(
        OAuthError::UnsupportedGrantType,
        70003,
        format!(
            "The app requested an unsupported grant type '{}'. Keyless serves 'client_credentials'.",
            printable(grant_type)
        ),
    )
}

pub(crate) fn invalid_scope(scope: &str) -> GrantError {
    GrantError::new(
        OAuthError::InvalidScope,
        1002012,
        format!(
            "The provided value for scope '{}' is not valid. Client credential flows must have a single scope value with /.default suffixed to the resource identifier (application ID URI).",
            printable(scope)
        ),
    )
}

pub(crate) fn unknown_resource(resource: &str) -> GrantError {
    GrantError::new(
        OAuthError::InvalidResource,
        500011,
        format!(
            "The resource principal named {} was not found in the tenant. Keyless issues tokens for its resource manager and its vaults.",
            printable(resource)
        ),
    )
}

pub(crate) fn unknown_client(client_id: &str, tenant: &str) -> GrantError {
    GrantError::new(
        OAuthError::UnauthorizedClient,
        700016,
        format!(
            "Application with identifier '{}' was not found in the directory '{tenant}'. Check the client id (AZURE_CLIENT_ID) and that the identity exists in this tenant.",
            printable(client_id)
        ),
    )
}

pub(crate) fn no_client_credential() -> GrantError {
    GrantError::new(
        OAuthError::InvalidClient,
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )
}

pub(crate) fn invalid_secret(client_id: &str) -> GrantError {
    GrantError::new(
        OAuthError::InvalidClient,
        7000215,
        format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
            printable(client_id)
        ),
    )
}

pub(crate) fn wrong_assertion_type() -> GrantError {
    GrantError::new(
        OAuthError::InvalidRequest,
        7000218,
        format!("The client_assertion_type must be '{JWT_BEARER_ASSERTION_TYPE}'."),
    )
}

pub(crate) fn malformed(why: impl std::fmt::Display) -> GrantError {
    GrantError::new(
        OAuthError::InvalidRequest,
        50027,
        format!("JWT token is invalid or malformed: {why}."),
    )
}

pub(crate) fn own_token() -> GrantError {
    GrantError::new(
        OAuthError::InvalidClient,
        700222,
        "The assertion was issued by Keyless itself. Present the workload's platform token (e.g. the projected service account token), not a Keyless access token.",
    )
}

/// The issuer's metadata or keys could not be had. The reason (DNS, connection,
/// TLS, HTTP status, a private address) is for the operator only: told to an
/// anonymous caller it would map the server's network.
pub(crate) fn issuer_unreachable(issuer: &str, why: impl std::fmt::Display) -> GrantError {
    GrantError::new(
        OAuthError::InvalidRequest,
        50166,
        format!(
            "Request to External OIDC endpoint failed: could not fetch the issuer's metadata or keys for '{}'. The server log, the sign-in log and `keyless explain` name the reason.",
            printable(issuer)
        ),
    )
    .with_operator_detail(format!("Reason: {why}. Keyless must reach '{issuer}/.well-known/openid-configuration' and its jwks_uri, or the issuer must be registered with a static JWKS."))
}

/// The issuer's keys are older than the configured maximum staleness and could not
/// be refreshed.
pub(crate) fn issuer_keys_stale(
    issuer: &str,
    since: i64,
    why: impl std::fmt::Display,
) -> GrantError {
    GrantError::new(
        OAuthError::InvalidRequest,
        50166,
        format!(
            "Request to External OIDC endpoint failed: the keys of issuer '{}' could not be refreshed since {}, longer than the server accepts stale keys.",
            printable(issuer),
            format_time(since)
        ),
    )
    .with_operator_detail(format!("Reason: {why}."))
}

pub(crate) fn no_signing_key(why: String) -> GrantError {
    GrantError::new(OAuthError::InvalidClient, 7000272, why)
}

pub(crate) fn bad_signature(why: impl std::fmt::Display) -> GrantError {
    GrantError::new(
        OAuthError::InvalidClient,
        700027,
        format!("Client assertion failed signature validation: {why}."),
    )
}

pub(crate) fn server_error(what: &str) -> GrantError {
    GrantError::new(OAuthError::ServerError, 50000, what)
}

/// The refusal for an assertion outside its validity period or living too long.
pub(crate) fn time_error(e: &TimeError) -> GrantError {
    let fmt = |t: i64| format_time(t);
    match e {
        TimeError::LifetimeTooLong { lifetime, max } => GrantError::new(
            OAuthError::InvalidClient,
            70023,
            format!(
                "The external token's lifetime of {lifetime} seconds is longer than the allowed {max} seconds."
            ),
        ),
        TimeError::Expired { exp, now } => GrantError::new(
            OAuthError::InvalidClient,
            700024,
            format!(
                "Client assertion is not within its valid time range: it expired at {} (exp {exp}); the server time is {} ({now}). The token file may not be rotated any more.",
                fmt(*exp),
                fmt(*now)
            ),
        ),
        TimeError::NotYetValid { nbf, now } => GrantError::new(
            OAuthError::InvalidClient,
            700024,
            format!(
                "Client assertion is not within its valid time range: it is not valid before {} (nbf {nbf}); the server time is {} ({now}). Check the clocks.",
                fmt(*nbf),
                fmt(*now)
            ),
        ),
        TimeError::IssuedInFuture { iat, now } => GrantError::new(
            OAuthError::InvalidClient,
            700024,
            format!(
                "Client assertion is not within its valid time range: it was issued in the future at {} (iat {iat}); the server time is {} ({now}). Check the clocks.",
                fmt(*iat),
                fmt(*now)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_timestamps() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13:20Z");
    }

    #[test]
    fn echoed_values_are_made_printable() {
        let e = unknown_client("a\u{1b}[31mb", "t");
        assert!(!e.message.contains('\u{1b}'), "{}", e.message);
        let e = invalid_secret("x\ny");
        assert!(!e.message.contains('\n'), "{}", e.message);
    }
}
