//! Plain records as stored. Times are Unix seconds. Names keep the caller's casing;
//! lookups compare case-insensitively, as ARM does.

use serde_json::{Map, Value};

/// A tenant (directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// Tenant GUID (lowercase).
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Creation time.
    pub created_at: i64,
}

/// A subscription, owned by one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// Subscription GUID (lowercase).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Human name.
    pub display_name: String,
    /// Creation time.
    pub created_at: i64,
}

/// A resource group.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceGroupRecord {
    /// Subscription GUID.
    pub subscription_id: String,
    /// Name as first created.
    pub name: String,
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Creation time.
    pub created_at: i64,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRecord {
    /// Subscription GUID.
    pub subscription_id: String,
    /// Resource group name (as stored on the group).
    pub resource_group: String,
    /// Identity name.
    pub name: String,
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Tenant GUID.
    pub tenant_id: String,
    /// Object id: the RBAC principal and the `oid` of its tokens. Primary key.
    pub principal_id: String,
    /// Application id: the `client_id` workloads present.
    pub client_id: String,
    /// Creation time.
    pub created_at: i64,
}

/// A federated identity credential on an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedCredentialRecord {
    /// The owning identity's principal id.
    pub identity_principal_id: String,
    /// Credential name.
    pub name: String,
    /// Issuer URL, compared exactly.
    pub issuer: String,
    /// Subject, compared exactly; `None` when `expression` is set.
    pub subject: Option<String>,
    /// Audiences (the API allows exactly one).
    pub audiences: Vec<String>,
    /// Claims-matching expression source (language v1).
    pub expression: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last update time.
    pub updated_at: i64,
}

/// An application that authenticates with a client secret (the bootstrap admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipalRecord {
    /// Application (client) id.
    pub client_id: String,
    /// Object id: the RBAC principal.
    pub principal_id: String,
    /// Tenant GUID.
    pub tenant_id: String,
    /// Human name.
    pub display_name: String,
    /// Hash of the client secret (never the secret itself).
    pub secret_hash: String,
    /// Creation time.
    pub created_at: i64,
}

/// A role assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignmentRecord {
    /// The assignment's GUID name (lowercase).
    pub name: String,
    /// Tenant the scope belongs to.
    pub tenant_id: String,
    /// Scope path as given (e.g. `/subscriptions/{s}/resourceGroups/{rg}`).
    pub scope: String,
    /// Full role definition id.
    pub role_definition_id: String,
    /// Principal object id (lowercase).
    pub principal_id: String,
    /// `ServicePrincipal`, `User`, `Group`, ...
    pub principal_type: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

/// One of Keyless' own token signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id.
    pub kid: String,
    /// Tenant it signs for.
    pub tenant_id: String,
    /// JOSE algorithm name.
    pub alg: String,
    /// PKCS#8 private key, sealed with the key-encryption key.
    pub sealed_private_key: Vec<u8>,
    /// Creation time (published in the JWKS from then on).
    pub created_at: i64,
    /// From when it may sign.
    pub active_from: i64,
    /// When it stopped signing (a newer key took over), if it has.
    pub retired_at: Option<i64>,
}
