//! Deleting a resource deletes the role assignments at or below its scope, compared by
//! segment and ignoring case ([`crate::scope::contains`]), and nothing else.

use std::sync::Arc;

use super::fixtures::*;
use crate::StoreError;
use crate::scope;
use crate::store::Store;

/// The names of the assignments left, sorted.
async fn left(s: &dyn Store) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = s
        .all_role_assignments()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    names.sort();
    Ok(names)
}

/// Inserts one assignment per `(name, scope)`, each for its own principal.
async fn assign(s: &dyn Store, list: &[(&str, &str)]) -> Result<(), StoreError> {
    for (name, at) in list {
        s.insert_role_assignment(&assignment(name, at, &format!("principal-{name}")))
            .await?;
    }
    Ok(())
}

/// Deleting `rg1` takes the assignments on it and below it, never `rg10`'s (whose
/// scope starts with the same characters) nor the subscription's.
pub async fn deleting_rg1_leaves_rg10_assignments(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("rg1")).await?;
    s.upsert_resource_group(&rg("rg10")).await?;
    let rg1 = scope::resource_group(S, "rg1");
    let rg10 = scope::resource_group(S, "rg10");
    assign(
        &*s,
        &[
            ("a-rg1", &rg1),
            ("a-rg1-vault", &scope::vault(S, "rg1", "v")),
            ("b-rg10", &rg10),
            ("b-rg10-vault", &scope::vault(S, "rg10", "v")),
            ("c-sub", &scope::subscription(S)),
            ("d-root", scope::ROOT),
        ],
    )
    .await?;
    check(s.delete_resource_group(S, "rg1").await?, "rg1 deleted");
    check(
        left(&*s).await? == ["b-rg10", "b-rg10-vault", "c-sub", "d-root"],
        "rg1's assignments go; rg10's, the subscription's and the root's stay",
    );
    check(
        s.get_resource_group(S, "rg10").await?.is_some(),
        "rg10 stays",
    );
    Ok(())
}

/// Deleting an identity takes the assignments granting rights over it (and below it),
/// as well as those naming it, so a new identity of the same name starts bare.
pub async fn deleting_an_identity_removes_assignments_on_it(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("group-a")).await?;
    s.upsert_identity(&identity("group-a", "id2", 2)).await?;
    s.upsert_identity(&identity("group-a", "id20", 3)).await?;
    let on_id2 = scope::identity(S, "group-a", "id2");
    assign(
        &*s,
        &[
            ("a-on-id2", &on_id2),
            (
                "a-below-id2",
                &format!("{on_id2}/federatedIdentityCredentials/f"),
            ),
            ("b-on-id20", &scope::identity(S, "group-a", "id20")),
            ("c-group", &scope::resource_group(S, "group-a")),
        ],
    )
    .await?;
    s.insert_role_assignment(&assignment(
        "a-naming-id2",
        &scope::subscription(S),
        &pid(2),
    ))
    .await?;
    check(
        s.delete_identity(S, "group-a", "id2").await?,
        "identity deleted",
    );
    check(
        left(&*s).await? == ["b-on-id20", "c-group"],
        "assignments on and naming id2 go; id20's and the group's stay",
    );
    Ok(())
}

/// Deleting a vault takes the assignments on it and below it (on its secrets), not
/// those of a vault whose name it prefixes, nor the group's.
pub async fn deleting_a_vault_removes_assignments_on_it(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("vault-rg")).await?;
    s.upsert_vault(&vault("kv", "vault-rg")).await?;
    s.upsert_vault(&vault("kv2", "vault-rg")).await?;
    let kv = scope::vault(S, "vault-rg", "kv");
    assign(
        &*s,
        &[
            ("a-kv", &kv),
            ("a-kv-secret", &format!("{kv}/secrets/s1")),
            ("b-kv2", &scope::vault(S, "vault-rg", "kv2")),
            ("c-group", &scope::resource_group(S, "vault-rg")),
        ],
    )
    .await?;
    check(s.delete_vault("kv").await?, "vault deleted");
    check(
        left(&*s).await? == ["b-kv2", "c-group"],
        "the vault's assignments go; kv2's and the group's stay",
    );
    Ok(())
}

/// Scopes match whatever their casing (keywords and names) and however many slashes a
/// stored scope carries: the comparison is by segment, ignoring ASCII case.
pub async fn scope_cascade_ignores_case_and_empty_segments(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("MixedCase")).await?;
    s.upsert_resource_group(&rg("mixedcase2")).await?;
    s.upsert_identity(&identity("MixedCase", "Id1", 1)).await?;
    let sub = S.to_ascii_uppercase();
    assign(
        &*s,
        &[
            ("a-upper", &format!("/SUBSCRIPTIONS/{sub}/RESOURCEGROUPS/MIXEDCASE")),
            (
                "a-slashes",
                &format!("/subscriptions/{S}//resourcegroups///mixedcase/"),
            ),
            (
                "a-identity",
                &format!(
                    "/subscriptions/{S}/resourcegroups/mixedcase/providers/microsoft.managedidentity/userassignedidentities/ID1"
                ),
            ),
            ("b-other", &scope::resource_group(S, "mixedcase2")),
        ],
    )
    .await?;
    check(
        s.delete_resource_group(S, "mixedcase").await?,
        "group deleted",
    );
    check(
        left(&*s).await? == ["b-other"],
        "every spelling of the group's scope goes; the other group's stays",
    );
    Ok(())
}
