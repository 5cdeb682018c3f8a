//! Azure Resource Manager-compatible JSON shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// ARM error envelope: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArmErrorBody {
    /// The error.
    pub error: ArmError,
}

/// One ARM error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArmError {
    /// Machine-readable code (`ResourceGroupNotFound`, `BadRequest`, ...).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

/// A page of a list: `{"value":[...],"nextLink":...}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListPage<T> {
    /// The items.
    pub value: Vec<T>,
    /// Absolute URL of the next page.
    #[serde(rename = "nextLink", skip_serializing_if = "Option::is_none", default)]
    pub next_link: Option<String>,
}

/// Body of `PUT` for a tracked resource (resource group, identity, vault).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackedResourcePut {
    /// Azure region name; any non-empty string is kept as given.
    pub location: Option<String>,
    /// Resource tags.
    #[serde(default)]
    pub tags: Option<Map<String, Value>>,
    /// Ignored read-only fields clients echo back.
    #[serde(default)]
    pub id: Option<Value>,
    /// Ignored read-only field.
    #[serde(default)]
    pub name: Option<Value>,
    /// Ignored read-only field.
    #[serde(default, rename = "type")]
    pub kind: Option<Value>,
    /// Resource-specific properties.
    #[serde(default)]
    pub properties: Option<Value>,
    /// ARM's `managedBy`, accepted and ignored.
    #[serde(default, rename = "managedBy")]
    pub managed_by: Option<Value>,
}

/// `properties` of a federated identity credential as sent by clients.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialProperties {
    /// Issuer URL.
    pub issuer: Option<Value>,
    /// Subject; absent when a claims-matching expression is used.
    pub subject: Option<Value>,
    /// Audiences (exactly one).
    pub audiences: Option<Value>,
    /// Flexible matching expression.
    pub claims_matching_expression: Option<Value>,
}

/// Body of `PUT` for a role assignment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignmentPut {
    /// Properties.
    pub properties: Option<RoleAssignmentPutProperties>,
    /// Ignored read-only field clients echo back.
    #[serde(default)]
    pub id: Option<Value>,
    /// Ignored read-only field.
    #[serde(default)]
    pub name: Option<Value>,
    /// Ignored read-only field.
    #[serde(default, rename = "type")]
    pub kind: Option<Value>,
}

/// Properties of a role assignment request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentPutProperties {
    /// Full role definition id or bare GUID.
    pub role_definition_id: Option<String>,
    /// Object id of the principal.
    pub principal_id: Option<String>,
    /// `ServicePrincipal`, `User`, `Group`, ...
    pub principal_type: Option<String>,
    /// Optional description.
    pub description: Option<String>,
    /// Read-only field az echoes back; ignored.
    #[serde(default)]
    pub scope: Option<Value>,
    /// ABAC condition; only `null` is supported.
    #[serde(default)]
    pub condition: Option<Value>,
    /// ABAC condition version; ignored without a condition.
    #[serde(default)]
    pub condition_version: Option<Value>,
}
