//! What a token request asks for, read from its form before any credential is
//! looked at: the endpoint, the grant type, the client id and the resource.

use keyless_proto::oauth::TokenRequest;

use crate::grant::GrantError;
use crate::grant::error::{invalid_scope, missing, unknown_resource, unsupported_grant_type};
use crate::settings::PublicUrl;
use crate::tokens::{Resource, ScopeError, resolve_resource, resolve_scope};

/// Which token endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/{tenant}/oauth2/token`.
    V1,
    /// `/{tenant}/oauth2/v2.0/token`.
    V2,
}

/// Facts about the HTTP request, for the sign-in log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Client address.
    pub client_ip: Option<String>,
    /// Correlation id (the caller's `client-request-id` or a generated one).
    pub correlation_id: String,
}

/// The grant type must be `client_credentials`, the only one Keyless serves.
pub(crate) fn check_grant_type(req: &TokenRequest) -> Result<(), GrantError> {
    match req.grant_type.as_deref() {
        Some("client_credentials") => Ok(()),
        None | Some("") => Err(missing("grant_type")),
        Some(other) => Err(unsupported_grant_type(other)),
    }
}

/// The non-empty `client_id`.
pub(crate) fn client_id(req: &TokenRequest) -> Result<&str, GrantError> {
    req.client_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("client_id"))
}

/// The resource the token is for: v2 names it by `scope` (`{resource}/.default`),
/// v1 by `resource`.
pub(crate) fn requested_resource(
    public: &PublicUrl,
    req: &TokenRequest,
    endpoint: Endpoint,
) -> Result<Resource, GrantError> {
    match endpoint {
        Endpoint::V2 => {
            let scope = req
                .scope
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| missing("scope"))?;
            resolve_scope(public, scope).map_err(|e| match e {
                ScopeError::NotSingle | ScopeError::NotDefault => invalid_scope(scope),
                ScopeError::UnknownResource(r) => unknown_resource(&r),
            })
        }
        Endpoint::V1 => {
            let resource = req
                .resource
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("resource"))?;
            resolve_resource(public, resource).ok_or_else(|| unknown_resource(resource))
        }
    }
}
