//! Why a pod is refused. Every rejection reaches the API server as `allowed: false`
//! with an HTTP-like `status.code` and a message the user sees in `kubectl`'s error.

/// Where an annotation was read from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The pod's own annotation.
    Pod,
    /// The ServiceAccount's annotation.
    ServiceAccount,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Pod => "pod",
            Source::ServiceAccount => "service account",
        })
    }
}

/// A refused admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The token expiration annotation is not a whole number of seconds in range.
    #[error(
        "invalid {key} annotation on the {origin}: {value:?} is not a whole number of seconds between {min} and {max}"
    )]
    InvalidExpiration {
        /// The annotation key.
        key: &'static str,
        /// Where it was read.
        origin: Source,
        /// The value as written.
        value: String,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// The pod asks for CA trust but the webhook has none configured.
    #[error(
        "the pod asks for the Keyless CA ({key}: \"true\") but this webhook has no CA configured (start it with --ca-configmap)"
    )]
    CaTrustUnavailable {
        /// The annotation key.
        key: &'static str,
    },
    /// The pod's ServiceAccount does not exist.
    #[error("serviceaccounts \"{name}\" not found")]
    ServiceAccountNotFound {
        /// The ServiceAccount's name.
        name: String,
    },
    /// The Kubernetes API server could not be asked for the ServiceAccount.
    #[error("cannot read service account \"{namespace}/{name}\" from the Kubernetes API: {detail}")]
    ApiUnavailable {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What went wrong.
        detail: String,
    },
    /// The object in the review is not a pod the webhook can read.
    #[error("cannot read the pod: {0}")]
    InvalidPod(String),
    /// The pod asks for a managed-identity endpoint the webhook cannot inject as asked.
    #[error("cannot inject the managed-identity endpoint: {0}")]
    IdentityEndpoint(String),
}

impl Rejection {
    /// The `status.code` of the admission response: 400 for what the user must fix,
    /// 500 when the webhook could not do its work.
    pub fn code(&self) -> u16 {
        match self {
            Rejection::ApiUnavailable { .. } => 500,
            _ => 400,
        }
    }

    /// A short, fixed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::InvalidExpiration { .. } => "invalid_token_expiration",
            Rejection::CaTrustUnavailable { .. } => "ca_trust_unavailable",
            Rejection::ServiceAccountNotFound { .. } => "service_account_not_found",
            Rejection::ApiUnavailable { .. } => "api_unavailable",
            Rejection::InvalidPod(_) => "invalid_pod",
            Rejection::IdentityEndpoint(_) => "identity_endpoint",
        }
    }
}
