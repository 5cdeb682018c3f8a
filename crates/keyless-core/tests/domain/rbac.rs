//! Role-based access control through the façade: an assignment applies at its scope
//! and below, never to siblings; management actions and data actions are granted
//! separately; another tenant's objects do not exist for a caller.

use keyless_core::ErrorKind;
use keyless_core::ids::role_definition_id;
use keyless_core::rbac::OWNER;
use keyless_core::tokens::Caller;
use keyless_core::vault::{SecretPut, VaultInput};
use keyless_store::{RoleAssignmentRecord, SubscriptionRecord, TenantRecord};

use crate::harness::{Harness, STATIC_ISSUER, sa_subject};

/// An identity trusting the static issuer for `ns1:{name}`, signed in.
async fn workload(h: &Harness, name: &str) -> (String, Caller) {
    let id = h
        .federated_identity(name, STATIC_ISSUER, &sa_subject("ns1", name))
        .await;
    let caller = h.sign_in(&id, "ns1", name).await;
    (id.principal_id, caller)
}

fn sub_scope(h: &Harness) -> String {
    format!("/subscriptions/{}", h.sub())
}

fn group_scope(h: &Harness, rg: &str) -> String {
    format!("{}/resourceGroups/{rg}", sub_scope(h))
}

#[tokio::test]
async fn a_role_at_subscription_scope_applies_to_the_groups_and_resources_below() {
    let h = Harness::new().await;
    let target = h.identity("rg-a", "target").await;
    let (principal, reader) = workload(&h, "reader").await;
    h.assign(&sub_scope(&h), "Reader", &principal).await;
    let got =
        h.k.get_identity(&reader, h.sub(), "rg-a", "target")
            .await
            .unwrap();
    assert_eq!(got.client_id, target.client_id);
    h.k.get_resource_group(&reader, h.sub(), "rg-a")
        .await
        .unwrap();
    let e =
        h.k.put_identity(&reader, h.sub(), "rg-a", "new", Some("westeurope"), None)
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "Reader cannot write: {e}");
}

#[tokio::test]
async fn a_role_at_a_group_does_not_apply_to_its_sibling_or_its_subscription() {
    let h = Harness::new().await;
    h.group("rg-a").await;
    h.group("rg-b").await;
    let (principal, contributor) = workload(&h, "contrib").await;
    h.assign(&group_scope(&h, "rg-a"), "Contributor", &principal)
        .await;
    h.k.put_identity(
        &contributor,
        h.sub(),
        "rg-a",
        "mine",
        Some("westeurope"),
        None,
    )
    .await
    .unwrap();
    let e =
        h.k.put_identity(
            &contributor,
            h.sub(),
            "rg-b",
            "theirs",
            Some("westeurope"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(e.message.contains("/rg-b/"), "{e}");
    let e =
        h.k.put_resource_group(&contributor, h.sub(), "rg-c", Some("westeurope"), None)
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
}

#[tokio::test]
async fn management_roles_grant_no_data_actions_and_data_roles_no_more_than_theirs() {
    let h = Harness::new().await;
    h.group("rg-v").await;
    h.k.put_vault(
        &h.admin.caller,
        h.sub(),
        "rg-v",
        "data-roles",
        VaultInput {
            location: Some("westeurope".into()),
            ..VaultInput::default()
        },
    )
    .await
    .unwrap();
    h.k.set_secret(
        &h.admin.caller,
        "data-roles",
        "db-password",
        SecretPut {
            value: "hunter2".into(),
            ..SecretPut::default()
        },
    )
    .await
    .unwrap();
    let (principal, app) = workload(&h, "app").await;
    h.assign(&sub_scope(&h), "Owner", &principal).await;
    let e =
        h.k.get_secret(&app, "data-roles", "db-password", None)
            .await
            .unwrap_err();
    assert_eq!(
        e.inner.as_deref(),
        Some("ForbiddenByRbac"),
        "Owner reads no data: {e}"
    );

    let vault = keyless_core::vault::vault_id(h.sub(), "rg-v", "data-roles");
    h.assign(&vault, "Key Vault Secrets User", &principal).await;
    let got =
        h.k.get_secret(&app, "data-roles", "db-password", None)
            .await
            .unwrap();
    assert_eq!(got.value.as_deref(), Some("hunter2"));
    let e =
        h.k.set_secret(&app, "data-roles", "db-password", SecretPut::default())
            .await
            .unwrap_err();
    assert_eq!(
        e.inner.as_deref(),
        Some("ForbiddenByRbac"),
        "a user only reads: {e}"
    );
}

#[tokio::test]
async fn a_caller_of_another_tenant_finds_nothing_even_as_owner_at_its_root() {
    let h = Harness::new().await;
    h.group("rg-v").await;
    h.k.put_vault(
        &h.admin.caller,
        h.sub(),
        "rg-v",
        "tenant-a-vault",
        VaultInput {
            location: Some("westeurope".into()),
            ..VaultInput::default()
        },
    )
    .await
    .unwrap();
    // A second tenant with its own subscription and an Owner at its root ("/").
    let store = h.k.store();
    let (tenant_b, sub_b, owner_b) = (
        "bbbbbbbb-0000-4000-8000-000000000001",
        "bbbbbbbb-0000-4000-8000-000000000002",
        "bbbbbbbb-0000-4000-8000-000000000003",
    );
    store
        .insert_tenant(&TenantRecord {
            id: tenant_b.into(),
            display_name: "B".into(),
            created_at: h.k.now(),
        })
        .await
        .unwrap();
    store
        .insert_subscription(&SubscriptionRecord {
            id: sub_b.into(),
            tenant_id: tenant_b.into(),
            display_name: "B".into(),
            created_at: h.k.now(),
        })
        .await
        .unwrap();
    store
        .insert_role_assignment(&RoleAssignmentRecord {
            name: "bbbbbbbb-0000-4000-8000-000000000004".into(),
            tenant_id: tenant_b.into(),
            scope: "/".into(),
            role_definition_id: role_definition_id(Some(sub_b), OWNER),
            principal_id: owner_b.into(),
            principal_type: "ServicePrincipal".into(),
            description: None,
            created_at: h.k.now(),
        })
        .await
        .unwrap();
    h.k.refresh().await.unwrap();
    let b = Caller {
        tenant_id: tenant_b.into(),
        object_id: owner_b.into(),
        app_id: "b-app".into(),
    };

    let subs: Vec<String> =
        h.k.list_subscriptions(&b)
            .into_iter()
            .map(|s| s.id)
            .collect();
    assert_eq!(subs, vec![sub_b.to_string()]);
    let e = h.k.get_subscription(&b, h.sub()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e =
        h.k.put_resource_group(&b, h.sub(), "intruder", Some("westeurope"), None)
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e = h.k.vault_for(&b, "tenant-a-vault").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthenticated, "{e}");
    assert!(e.message.contains("AKV10032"), "{e}");
}
