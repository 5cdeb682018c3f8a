//! OpenID Connect discovery document.

use serde::{Deserialize, Serialize};

/// The subset of an OpenID Provider Metadata document Keyless publishes and reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpenIdConfiguration {
    /// Issuer identifier; must equal the `iss` of tokens.
    pub issuer: String,
    /// Token endpoint (MSAL requires it).
    pub token_endpoint: String,
    /// Authorization endpoint (MSAL requires it even for client credentials).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub authorization_endpoint: String,
    /// Where the signing keys are.
    pub jwks_uri: String,
    /// Supported client authentication methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Response types (always `token` here; required by the OIDC spec).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    /// Subject types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    /// Signing algorithms of id tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Grant types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    /// Entra extension: the tenant's region scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_region_scope: Option<String>,
}
