//! ARM JSON for each resource type.

use keyless_core::ids;
use keyless_core::rbac::RoleDefinition;
use keyless_store::{
    FederatedCredentialRecord, IdentityRecord, ResourceGroupRecord, RoleAssignmentRecord,
    SignInRecord, SubscriptionRecord, TrustedIssuerRecord,
};
use serde_json::{Value, json};

/// ISO 8601 for `createdOn`-style fields.
fn iso(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A resource group.
pub fn resource_group(g: &ResourceGroupRecord) -> Value {
    json!({
        "id": ids::resource_group_id(&g.subscription_id, &g.name),
        "name": g.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": g.location,
        "tags": g.tags,
        "properties": {"provisioningState": "Succeeded"},
    })
}

/// A user-assigned identity.
pub fn identity(i: &IdentityRecord) -> Value {
    json!({
        "id": ids::identity_id(&i.subscription_id, &i.resource_group, &i.name),
        "name": i.name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": i.location,
        "tags": i.tags,
        "properties": {
            "tenantId": i.tenant_id,
            "principalId": i.principal_id,
            "clientId": i.client_id,
            "isolationScope": "None",
        },
    })
}

/// A federated identity credential.
pub fn federated_credential(identity: &IdentityRecord, f: &FederatedCredentialRecord) -> Value {
    let mut props = json!({ "issuer": f.issuer, "audiences": f.audiences });
    if let Some(o) = props.as_object_mut() {
        match (&f.subject, &f.expression) {
            (Some(s), _) => {
                o.insert("subject".into(), json!(s));
            }
            (None, Some(e)) => {
                o.insert(
                    "claimsMatchingExpression".into(),
                    json!({"value": e, "languageVersion": 1}),
                );
            }
            (None, None) => {}
        }
    }
    json!({
        "id": ids::federated_credential_id(&identity.subscription_id, &identity.resource_group, &identity.name, &f.name),
        "name": f.name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
        "properties": props,
    })
}

/// A role definition seen from `scope`.
pub fn role_definition(scope: &str, r: &RoleDefinition) -> Value {
    let sub = ids::subscription_of(scope);
    json!({
        "id": ids::role_definition_id(sub.as_deref(), r.id),
        "name": r.id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": r.name,
            "type": "BuiltInRole",
            "description": r.description,
            "assignableScopes": ["/"],
            "permissions": [{
                "actions": r.actions,
                "notActions": r.not_actions,
                "dataActions": r.data_actions,
                "notDataActions": r.not_data_actions,
            }],
        },
    })
}

/// A role assignment.
pub fn role_assignment(a: &RoleAssignmentRecord) -> Value {
    json!({
        "id": ids::role_assignment_id(&a.scope, &a.name),
        "name": a.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": a.role_definition_id,
            "principalId": a.principal_id,
            "principalType": a.principal_type,
            "scope": a.scope,
            "description": a.description,
            "condition": null,
            "conditionVersion": null,
            "createdOn": iso(a.created_at),
            "updatedOn": iso(a.created_at),
        },
    })
}

/// A subscription.
pub fn subscription(s: &SubscriptionRecord) -> Value {
    json!({
        "id": ids::subscription_id(&s.id),
        "subscriptionId": s.id,
        "tenantId": s.tenant_id,
        "displayName": s.display_name,
        "state": "Enabled",
        "authorizationSource": "RoleBased",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "Keyless", "spendingLimit": "Off"},
    })
}

/// A tenant.
pub fn tenant(id: &str) -> Value {
    json!({
        "id": format!("/tenants/{id}"),
        "tenantId": id,
        "tenantCategory": "Home",
        "displayName": "Default Directory",
    })
}

/// A static-JWKS issuer registration.
pub fn trusted_issuer(t: &TrustedIssuerRecord) -> Value {
    let jwks: Value = serde_json::from_str(&t.jwks).unwrap_or(Value::Null);
    json!({
        "id": format!("/providers/Keyless/trustedIssuers/{}", t.name),
        "name": t.name,
        "type": "Keyless/trustedIssuers",
        "properties": {"issuer": t.issuer, "jwks": jwks, "createdOn": iso(t.created_at), "updatedOn": iso(t.updated_at)},
    })
}

/// A sign-in log entry.
pub fn signin(r: &SignInRecord) -> Value {
    json!({
        "id": r.id,
        "createdDateTime": iso(r.at),
        "clientId": r.client_id,
        "principalId": r.principal_id,
        "issuer": r.issuer,
        "subject": r.subject,
        "resource": r.resource,
        "status": if r.success { "success" } else { "failure" },
        "errorCode": r.error_code,
        "failureReason": r.error,
        "ipAddress": r.client_ip,
        "correlationId": r.correlation_id,
        "latencyMicroseconds": r.latency_us,
        // Requests the row stands for: identical failures close together share a row.
        "count": r.count,
    })
}

/// A vault.
pub fn vault(public: &keyless_core::PublicUrl, v: &keyless_store::VaultRecord) -> Value {
    json!({
        "id": keyless_core::vault::vault_id(&v.subscription_id, &v.resource_group, &v.name),
        "name": v.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": v.location,
        "tags": v.tags,
        "properties": {
            "tenantId": v.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [],
            "enableRbacAuthorization": true,
            "enableSoftDelete": true,
            "softDeleteRetentionInDays": v.soft_delete_days,
            "enablePurgeProtection": v.purge_protection,
            "vaultUri": public.vault_uri(&v.name),
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        },
    })
}
