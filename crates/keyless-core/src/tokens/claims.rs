//! Claims of a Keyless access token (Entra's v1 layout, which ARM and Key Vault take).

use serde::{Deserialize, Serialize};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    /// The resource.
    pub aud: String,
    /// Issuer URL of the tenant.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Client (application) id of the caller.
    pub appid: String,
    /// How the client authenticated: "1" secret, "2" certificate or assertion.
    pub appidacr: String,
    /// Always "app": an application token, no user.
    pub idtyp: String,
    /// Object id of the principal: the RBAC subject.
    pub oid: String,
    /// Subject: the principal's object id.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Unique token id.
    pub uti: String,
    /// "1.0" or "2.0".
    pub ver: String,
    /// Resource id of the managed identity the token represents.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub xms_mirid: Option<String>,
}
