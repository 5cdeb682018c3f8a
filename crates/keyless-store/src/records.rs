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

/// An issuer trusted through a static JWKS (no discovery fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuerRecord {
    /// Tenant.
    pub tenant_id: String,
    /// Registration name.
    pub name: String,
    /// Issuer URL, exactly as in tokens.
    pub issuer: String,
    /// The JWKS document (JSON).
    pub jwks: String,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
}

/// One token request in the sign-in log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRecord {
    /// Row id (assigned by the store; 0 when new).
    pub id: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// Tenant.
    pub tenant_id: String,
    /// Client id presented.
    pub client_id: String,
    /// Principal the token was (or would have been) for.
    pub principal_id: Option<String>,
    /// Assertion issuer, for federated requests.
    pub issuer: Option<String>,
    /// Assertion subject, for federated requests.
    pub subject: Option<String>,
    /// Requested resource.
    pub resource: Option<String>,
    /// Whether a token was issued.
    pub success: bool,
    /// AADSTS code of a failure.
    pub error_code: Option<u32>,
    /// Failure text.
    pub error: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Correlation id.
    pub correlation_id: String,
    /// Server-side latency, microseconds (of the first request, when aggregated).
    pub latency_us: i64,
    /// Requests this row stands for: identical failures (same tenant, client id,
    /// address and error code) arriving close together are logged as one row; 1
    /// otherwise.
    pub count: i64,
}

/// Filter of a sign-in log query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInQuery {
    /// Tenant (required: logs never cross tenants).
    pub tenant_id: String,
    /// Only this client id.
    pub client_id: Option<String>,
    /// Only failures.
    pub failed_only: bool,
    /// Only at or after this time.
    pub since: Option<i64>,
    /// Most rows, newest first.
    pub limit: u32,
    /// Only rows older (by insertion) than this row id: the next page after it.
    pub before_id: Option<i64>,
}

/// A vault (ARM resource `Microsoft.KeyVault/vaults`).
#[derive(Debug, Clone, PartialEq)]
pub struct VaultRecord {
    /// Globally unique name (a host name label).
    pub name: String,
    /// Subscription.
    pub subscription_id: String,
    /// Resource group (as stored on the group).
    pub resource_group: String,
    /// Tenant whose tokens the vault accepts.
    pub tenant_id: String,
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Days a deleted secret stays recoverable (0: no soft delete).
    pub soft_delete_days: i64,
    /// Whether purging is refused while recoverable.
    pub purge_protection: bool,
    /// Creation time.
    pub created_at: i64,
}

/// One version of a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretVersionRecord {
    /// Vault name.
    pub vault: String,
    /// Secret name.
    pub name: String,
    /// 32 lowercase hex characters.
    pub version: String,
    /// Value sealed with the key-encryption key.
    pub sealed_value: Vec<u8>,
    /// Content type.
    pub content_type: Option<String>,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Whether the version may be read.
    pub enabled: bool,
    /// Not valid before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
}

/// A secret's state: its versions (oldest first) and whether it is soft-deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRecord {
    /// Vault name.
    pub vault: String,
    /// Secret name (as first created).
    pub name: String,
    /// When it was deleted, while recoverable.
    pub deleted_at: Option<i64>,
    /// When it will be purged.
    pub purge_at: Option<i64>,
    /// Versions, oldest first.
    pub versions: Vec<SecretVersionRecord>,
}
