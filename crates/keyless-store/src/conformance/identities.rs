//! Tenancy, settings, service principals, resource groups and identities.

use std::sync::Arc;

use super::fixtures::*;
use crate::StoreError;
use crate::records::*;
use crate::store::{Store, UpsertOutcome};

/// Tenants and subscriptions are listed once inserted.
pub async fn tenants_and_subscriptions_are_listed(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    check(s.list_tenants().await?.len() == 1, "one tenant");
    check(s.list_subscriptions().await?.len() == 1, "one subscription");
    let dup = s
        .insert_tenant(&TenantRecord {
            id: T.into(),
            display_name: "again".into(),
            created_at: 2,
        })
        .await;
    check(
        matches!(dup, Err(StoreError::Conflict(_))),
        "a tenant id is unique",
    );
    Ok(())
}

/// A service principal's secret hash is replaced; an unknown principal is reported.
pub async fn service_principal_secret_is_replaced(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.insert_service_principal(&service_principal("c1", 1, 1))
        .await?;
    check(
        s.set_service_principal_secret("c1", "new").await?,
        "secret replaced",
    );
    check(
        !s.set_service_principal_secret("nope", "x").await?,
        "unknown principal",
    );
    check(
        s.all_service_principals()
            .await?
            .iter()
            .any(|sp| sp.client_id == "c1" && sp.secret_hash == "new"),
        "new hash stored",
    );
    Ok(())
}

/// Service principals are listed by creation time, then client id.
pub async fn service_principals_are_listed_in_creation_order(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    for (client, n, at) in [("c-b", 1, 5), ("c-c", 2, 3), ("c-a", 3, 5)] {
        s.insert_service_principal(&service_principal(client, n, at))
            .await?;
    }
    let listed: Vec<String> = s
        .all_service_principals()
        .await?
        .into_iter()
        .map(|sp| sp.client_id)
        .collect();
    check(
        listed == ["c-c", "c-a", "c-b"],
        "service principals by (created_at, client_id)",
    );
    Ok(())
}

/// The first write of a setting wins; later ones get the stored value back.
pub async fn meta_first_write_wins(s: Arc<dyn Store>) -> Result<(), StoreError> {
    check(s.meta_get("k").await?.is_none(), "meta absent");
    check(
        s.meta_put_if_absent("k", "a").await? == "a",
        "first meta write wins",
    );
    check(
        s.meta_put_if_absent("k", "b").await? == "a",
        "second meta write keeps first",
    );
    check(
        s.meta_get("k").await?.as_deref() == Some("a"),
        "meta read back",
    );
    Ok(())
}

/// Resource group names compare case-insensitively and keep their first casing.
pub async fn resource_group_names_ignore_case(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    let (g, o) = s.upsert_resource_group(&rg("Group-A")).await?;
    check(
        o == UpsertOutcome::Created && g.name == "Group-A",
        "group created",
    );
    let mut again = rg("group-a");
    again.location = "northeurope".into();
    let (g, o) = s.upsert_resource_group(&again).await?;
    check(
        o == UpsertOutcome::Updated,
        "group name is case-insensitive",
    );
    check(
        g.name == "Group-A" && g.location == "northeurope",
        "first casing kept, location updated",
    );
    check(
        s.get_resource_group(S, "GROUP-A").await?.is_some(),
        "group lookup ignores case",
    );
    Ok(())
}

/// An identity cannot be created without its resource group.
pub async fn identity_needs_its_group(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    let missing = s.upsert_identity(&identity("nope", "id1", 1)).await;
    check(
        matches!(missing, Err(StoreError::ParentNotFound(_))),
        "identity needs its group",
    );
    Ok(())
}

/// An identity is stored under the group's stored name; an upsert keeps its ids.
pub async fn identity_upsert_keeps_ids_and_group_casing(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("Group-A")).await?;
    let (i, o) = s.upsert_identity(&identity("group-a", "Id1", 1)).await?;
    check(
        o == UpsertOutcome::Created && i.resource_group == "Group-A",
        "identity created under stored group name",
    );
    let (i2, o) = s.upsert_identity(&identity("GROUP-A", "id1", 99)).await?;
    check(o == UpsertOutcome::Updated, "identity upsert updates");
    check(
        i2.principal_id == i.principal_id && i2.client_id == i.client_id,
        "identity ids are stable",
    );
    check(
        s.list_identities(S, Some("group-A")).await?.len() == 1,
        "list per group",
    );
    check(
        s.list_identities(S, None).await?.len() == 1,
        "list per subscription",
    );
    Ok(())
}

/// Groups are listed by name and identities by (group, name), ignoring case, whatever
/// the insertion order.
pub async fn resource_groups_and_identities_are_listed_by_name(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    for g in ["zulu", "Alpha", "mike"] {
        s.upsert_resource_group(&rg(g)).await?;
    }
    let groups: Vec<String> = s
        .list_resource_groups(S)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    check(groups == ["Alpha", "mike", "zulu"], "groups by name");
    for (n, (g, name)) in [("zulu", "b"), ("mike", "Z"), ("zulu", "A"), ("Alpha", "m")]
        .into_iter()
        .enumerate()
    {
        s.upsert_identity(&identity(g, name, n as u32 + 1)).await?;
    }
    let listed: Vec<(String, String)> = s
        .list_identities(S, None)
        .await?
        .into_iter()
        .map(|i| (i.resource_group, i.name))
        .collect();
    let want = [("Alpha", "m"), ("mike", "Z"), ("zulu", "A"), ("zulu", "b")];
    check(
        listed
            .iter()
            .map(|(g, n)| (g.as_str(), n.as_str()))
            .eq(want),
        "identities by (group, name)",
    );
    let in_zulu: Vec<String> = s
        .list_identities(S, Some("ZULU"))
        .await?
        .into_iter()
        .map(|i| i.name)
        .collect();
    check(in_zulu == ["A", "b"], "identities of a group by name");
    Ok(())
}

/// Every identity (the in-memory view's load) comes by creation time, then principal id.
pub async fn every_identity_is_listed_in_creation_order(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("g")).await?;
    for (n, at) in [(3, 20), (2, 10), (1, 20)] {
        let mut i = identity("g", &format!("id{n}"), n);
        i.created_at = at;
        s.upsert_identity(&i).await?;
    }
    let listed: Vec<String> = s
        .all_identities()
        .await?
        .into_iter()
        .map(|i| i.principal_id)
        .collect();
    check(
        listed == [pid(2), pid(1), pid(3)],
        "identities by (created_at, principal_id)",
    );
    Ok(())
}

/// A whole-table read of more rows than a backend decodes in line (the SQL backends
/// decode large reads on a blocking thread) returns every row, in order.
pub async fn a_large_table_loads_whole_and_in_order(s: Arc<dyn Store>) -> Result<(), StoreError> {
    const N: u32 = 1_100;
    seed(&*s).await?;
    s.upsert_resource_group(&rg("g")).await?;
    for n in (1..=N).rev() {
        let mut i = identity("g", &format!("id{n}"), n);
        i.created_at = i64::from(n);
        s.upsert_identity(&i).await?;
        s.upsert_federated_credential(&fic(&pid(n), "fic", &format!("s{n}")), None)
            .await?;
    }
    let identities = s.all_identities().await?;
    check(
        identities
            .iter()
            .map(|i| i.principal_id.clone())
            .eq((1..=N).map(pid)),
        "every identity, by creation time",
    );
    let credentials = s.all_federated_credentials().await?;
    check(
        credentials
            .iter()
            .map(|c| (c.identity_principal_id.clone(), c.subject.clone()))
            .eq((1..=N).map(|n| (pid(n), Some(format!("s{n}"))))),
        "every credential, by identity",
    );
    Ok(())
}
