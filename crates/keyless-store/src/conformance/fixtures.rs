//! Records and seeding shared by the conformance checks.

use serde_json::Map;

use crate::StoreError;
use crate::records::*;
use crate::store::Store;

/// The tenant every check works in.
pub(super) const T: &str = "11111111-1111-1111-1111-111111111111";
/// The subscription every check works in.
pub(super) const S: &str = "22222222-2222-2222-2222-222222222222";

/// Fails the check (a panic: this is test code) unless `cond` holds.
pub(super) fn check(cond: bool, what: &str) {
    if !cond {
        panic!("store conformance: {what}");
    }
}

/// The tenant `T` and subscription `S`.
pub(super) async fn seed(s: &dyn Store) -> Result<(), StoreError> {
    s.insert_tenant(&TenantRecord {
        id: T.into(),
        display_name: "t".into(),
        created_at: 1,
    })
    .await?;
    s.insert_subscription(&SubscriptionRecord {
        id: S.into(),
        tenant_id: T.into(),
        display_name: "s".into(),
        created_at: 1,
    })
    .await
}

/// `seed`, the group `group-a` and identity 1 in it (principal [`pid`]`(1)`).
pub(super) async fn seed_identity(s: &dyn Store) -> Result<(), StoreError> {
    seed(s).await?;
    s.upsert_resource_group(&rg("group-a")).await?;
    s.upsert_identity(&identity("group-a", "id1", 1)).await?;
    Ok(())
}

pub(super) fn rg(name: &str) -> ResourceGroupRecord {
    ResourceGroupRecord {
        subscription_id: S.into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: Map::new(),
        created_at: 10,
    }
}

/// The principal id of identity `n`.
pub(super) fn pid(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

pub(super) fn identity(group: &str, name: &str, n: u32) -> IdentityRecord {
    IdentityRecord {
        subscription_id: S.into(),
        resource_group: group.into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: Map::new(),
        tenant_id: T.into(),
        principal_id: pid(n),
        client_id: format!("00000000-0000-0000-0001-{n:012}"),
        created_at: 10,
    }
}

pub(super) fn fic(pid: &str, name: &str, subject: &str) -> FederatedCredentialRecord {
    FederatedCredentialRecord {
        identity_principal_id: pid.into(),
        name: name.into(),
        issuer: "https://issuer.example".into(),
        subject: Some(subject.into()),
        audiences: vec!["api://AzureADTokenExchange".into()],
        expression: None,
        created_at: 20,
        updated_at: 20,
    }
}

pub(super) fn assignment(name: &str, scope: &str, principal: &str) -> RoleAssignmentRecord {
    RoleAssignmentRecord {
        name: name.into(),
        tenant_id: T.into(),
        scope: scope.into(),
        role_definition_id: format!(
            "/subscriptions/{S}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"
        ),
        principal_id: principal.into(),
        principal_type: "ServicePrincipal".into(),
        description: None,
        created_at: 30,
    }
}

pub(super) fn service_principal(client_id: &str, n: u32, at: i64) -> ServicePrincipalRecord {
    ServicePrincipalRecord {
        client_id: client_id.into(),
        principal_id: format!("p{n}"),
        tenant_id: T.into(),
        display_name: "admin".into(),
        secret_hash: "old".into(),
        created_at: at,
    }
}

pub(super) fn vault(name: &str, group: &str) -> VaultRecord {
    VaultRecord {
        name: name.into(),
        subscription_id: S.into(),
        resource_group: group.into(),
        tenant_id: T.into(),
        location: "westeurope".into(),
        tags: Map::new(),
        soft_delete_days: 90,
        purge_protection: false,
        created_at: 1,
    }
}

pub(super) fn secret_version(
    vault: &str,
    name: &str,
    version: &str,
    at: i64,
) -> SecretVersionRecord {
    SecretVersionRecord {
        vault: vault.into(),
        name: name.into(),
        version: version.into(),
        sealed_value: vec![9, 9],
        content_type: Some("text/plain".into()),
        tags: Map::new(),
        enabled: true,
        nbf: None,
        exp: None,
        created_at: at,
        updated_at: at,
    }
}
