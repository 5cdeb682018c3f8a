//! What can go wrong getting a token. Messages say what happened and what to do; they
//! never contain secrets, assertions or tokens.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// An error from a credential.
///
/// Cloneable, because one failed token request is reported to every caller that was
/// waiting for it (see [single flight](crate#caching-refresh-and-single-flight)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required setting was neither passed explicitly nor found in the environment.
    #[error(
        "{credential} needs {what}: set the {env} environment variable or pass it in the options"
    )]
    MissingSetting {
        /// The credential type that needs it.
        credential: &'static str,
        /// What is missing, e.g. "a client id".
        what: &'static str,
        /// The environment variable it is read from.
        env: &'static str,
    },
    /// A setting has an unusable value.
    #[error("invalid {setting}: {reason}")]
    InvalidSetting {
        /// Which setting (e.g. "authority host", "tenant id", "CA certificate").
        setting: &'static str,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// The federated token file could not be read, or holds no token.
    #[error("cannot use the federated token file {}: {reason}", path.display())]
    TokenFile {
        /// The file (`AZURE_FEDERATED_TOKEN_FILE`).
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
        /// The I/O error, when there was one.
        #[source]
        source: Option<Arc<std::io::Error>>,
    },
    /// The token service refused the request (an HTTP error status).
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// The token service could not be reached (after the configured retries).
    #[error("cannot reach the token service at {endpoint} ({attempts} attempt{}): {message}", plural(*attempts))]
    Transport {
        /// The token endpoint.
        endpoint: String,
        /// How many requests were sent.
        attempts: u32,
        /// The failure, with its causes.
        message: String,
        /// The underlying error.
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// The token service answered with success but the body is not a token response.
    #[error("the token service at {endpoint} sent an unusable response (HTTP {status}): {reason}")]
    InvalidResponse {
        /// The token endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with the body.
        reason: String,
    },
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Error {
    /// The AADSTS error codes the token service returned (`error_codes`), if any.
    ///
    /// ```
    /// # fn check(error: keyless_credential::Error) {
    /// if error.aadsts_codes().contains(&700213) {
    ///     eprintln!("the federated credential's subject does not match the token");
    /// }
    /// # }
    /// ```
    pub fn aadsts_codes(&self) -> &[u64] {
        match self {
            Error::Service(e) => &e.error_codes,
            _ => &[],
        }
    }

    /// The service's refusal, when this error is one.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            Error::Service(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidSetting {
            setting,
            reason: reason.into(),
        }
    }
}

/// A refusal from the token service: the HTTP status and Entra's error body.
///
/// Entra (and Keyless) answer errors with
/// `{"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}`;
/// every field is kept when present. A body that is not JSON (a proxy's error page) is
/// kept, shortened, in [`body`](ServiceError::body).
///
/// The message is the service's description (which starts with `AADSTS<code>: `) plus
/// the endpoint, status, error class and correlation id, so a log line is enough to
/// find the request in the service's sign-in log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceError {
    /// The token endpoint that answered.
    pub endpoint: String,
    /// The HTTP status (400, 401, 429, 5xx, ...).
    pub status: u16,
    /// The OAuth error class (`invalid_client`, `unauthorized_client`, ...).
    pub error: Option<String>,
    /// The description (`AADSTS700213: No matching federated identity record ...`).
    pub error_description: Option<String>,
    /// The AADSTS numbers (`error_codes`).
    pub error_codes: Vec<u64>,
    /// The correlation id: the service's, else the `client-request-id` this credential sent.
    pub correlation_id: Option<String>,
    /// The service's trace id.
    pub trace_id: Option<String>,
    /// The service's timestamp (`YYYY-MM-DD HH:MM:SSZ`).
    pub timestamp: Option<String>,
    /// A link describing the error code.
    pub error_uri: Option<String>,
    /// The body (at most 500 characters) when it was not an Entra error object.
    pub body: Option<String>,
    /// How long the service asked the client to wait (`Retry-After`), when it said.
    pub retry_after: Option<Duration>,
    /// How many requests were sent (more than one after retries).
    pub attempts: u32,
}

impl ServiceError {
    /// The refusal a token service's error response describes: `body` is read as
    /// Entra's error object, leniently (a partial or non-JSON body keeps what it has).
    /// For test doubles of [`TokenCredential`](crate::TokenCredential) and for programs
    /// that relay a token service's refusals.
    ///
    /// ```
    /// use keyless_credential::ServiceError;
    ///
    /// let e = ServiceError::from_response(
    ///     "https://keyless.example/t/oauth2/v2.0/token",
    ///     401,
    ///     br#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range."}"#,
    /// );
    /// assert!(e.has_code(700024));
    /// ```
    pub fn from_response(endpoint: impl Into<String>, status: u16, body: &[u8]) -> Self {
        crate::transport::service_error_parts(endpoint.into(), status, body, None, None, 1)
    }

    /// Whether the service returned this AADSTS code.
    pub fn has_code(&self, code: u64) -> bool {
        self.error_codes.contains(&code)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token request to {} failed: HTTP {}",
            self.endpoint, self.status
        )?;
        if let Some(error) = &self.error {
            write!(f, " {error}")?;
        }
        match (&self.error_description, &self.body) {
            (Some(description), _) => write!(f, ": {}", one_line(description))?,
            (None, Some(body)) if !body.is_empty() => write!(f, ": {}", one_line(body))?,
            _ => {}
        }
        if let Some(id) = &self.correlation_id {
            let described = self
                .error_description
                .as_deref()
                .is_some_and(|d| d.contains(id.as_str()));
            if !described {
                write!(f, " (correlation id {id})")?;
            }
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        if let Some(wait) = self.retry_after {
            write!(
                f,
                " (the service asked to retry after {} s)",
                wait.as_secs()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

/// Old Entra responses separate the description's parts with CRLF.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(description: Option<&str>, correlation: Option<&str>) -> ServiceError {
        ServiceError {
            endpoint: "https://login.example/t/oauth2/v2.0/token".into(),
            status: 401,
            error: Some("invalid_client".into()),
            error_description: description.map(str::to_owned),
            error_codes: vec![700213],
            correlation_id: correlation.map(str::to_owned),
            trace_id: None,
            timestamp: None,
            error_uri: None,
            body: None,
            retry_after: None,
            attempts: 1,
        }
    }

    #[test]
    fn message_carries_the_description_and_the_correlation_id_once() {
        let e = service(
            Some(
                "AADSTS700213: No matching federated identity record.\r\nTrace ID: t\r\nCorrelation ID: c-1",
            ),
            Some("c-1"),
        );
        let msg = Error::Service(Box::new(e)).to_string();
        assert_eq!(
            msg,
            "token request to https://login.example/t/oauth2/v2.0/token failed: HTTP 401 invalid_client: \
             AADSTS700213: No matching federated identity record. Trace ID: t Correlation ID: c-1"
        );
        let e = service(Some("AADSTS700213: no match"), Some("c-2"));
        assert!(e.to_string().ends_with("no match (correlation id c-2)"));
        assert!(e.has_code(700213));
        assert_eq!(Error::Service(Box::new(e)).aadsts_codes(), &[700213]);
    }

    #[test]
    fn setting_errors_say_what_to_do() {
        let e = Error::MissingSetting {
            credential: "WorkloadIdentityCredential",
            what: "a client id",
            env: "AZURE_CLIENT_ID",
        };
        assert_eq!(
            e.to_string(),
            "WorkloadIdentityCredential needs a client id: set the AZURE_CLIENT_ID environment variable or pass it in the options"
        );
        assert!(e.aadsts_codes().is_empty());
    }
}
