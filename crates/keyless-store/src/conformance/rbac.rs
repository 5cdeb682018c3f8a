//! Role assignments, and the cascade when a resource group goes.

use std::sync::Arc;

use super::fixtures::*;
use crate::StoreError;
use crate::store::Store;

/// Names are unique, and so is (role, scope, principal) with the scope compared
/// case-insensitively.
pub async fn role_assignment_rules_are_unique(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    let sub_scope = format!("/subscriptions/{S}");
    s.insert_role_assignment(&assignment("a1", &sub_scope, "p1"))
        .await?;
    let same = s
        .insert_role_assignment(&assignment("a2", &sub_scope.to_uppercase(), "p1"))
        .await;
    check(
        matches!(same, Err(StoreError::Conflict(_))),
        "same role+scope+principal conflicts",
    );
    let name = s
        .insert_role_assignment(&assignment("a1", "/other", "p2"))
        .await;
    check(
        matches!(name, Err(StoreError::Conflict(_))),
        "assignment names are unique",
    );
    Ok(())
}

/// Deleting an assignment returns it; a second delete finds nothing.
pub async fn role_assignment_delete_returns_the_row_once(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.insert_role_assignment(&assignment("a1", &format!("/subscriptions/{S}"), "p1"))
        .await?;
    check(
        s.delete_role_assignment("a1")
            .await?
            .is_some_and(|a| a.principal_id == "p1"),
        "assignment deleted",
    );
    check(
        s.delete_role_assignment("a1").await?.is_none(),
        "already deleted",
    );
    Ok(())
}

/// Assignments are listed by creation time, then name.
pub async fn role_assignments_are_listed_in_creation_order(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    for (name, at) in [("b", 5), ("c", 1), ("a", 5)] {
        let mut a = assignment(name, &format!("/subscriptions/{S}/x/{name}"), "p1");
        a.created_at = at;
        s.insert_role_assignment(&a).await?;
    }
    let listed: Vec<String> = s
        .all_role_assignments()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    check(
        listed == ["c", "a", "b"],
        "assignments by (created_at, name)",
    );
    Ok(())
}

/// `role_assignments_of` gives one principal's assignments, in creation order, and
/// nothing of another principal.
pub async fn role_assignments_of_one_principal(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    for (name, at, principal) in [
        ("b", 5, "p1"),
        ("c", 1, "p1"),
        ("a", 5, "p1"),
        ("d", 2, "p2"),
    ] {
        let mut a = assignment(name, &format!("/subscriptions/{S}/x/{name}"), principal);
        a.created_at = at;
        s.insert_role_assignment(&a).await?;
    }
    let names = |list: Vec<crate::RoleAssignmentRecord>| -> Vec<String> {
        list.into_iter().map(|a| a.name).collect()
    };
    check(
        names(s.role_assignments_of("p1").await?) == ["c", "a", "b"],
        "p1's assignments by (created_at, name)",
    );
    check(names(s.role_assignments_of("p2").await?) == ["d"], "p2's");
    check(s.role_assignments_of("p3").await?.is_empty(), "none");
    Ok(())
}

/// Deleting a group deletes its identities, their credentials, the assignments at or
/// below its scope and those naming its identities, and nothing of a sibling whose name
/// it prefixes.
pub async fn deleting_a_group_cascades(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    s.upsert_resource_group(&rg("doomed_group")).await?;
    s.upsert_resource_group(&rg("doomed_groupX")).await?;
    s.upsert_identity(&identity("doomed_group", "victim", 7))
        .await?;
    let pid = pid(7);
    s.upsert_federated_credential(&fic(&pid, "f1x", "s"), None)
        .await?;
    let scope = format!("/subscriptions/{S}/resourceGroups/doomed_group");
    s.insert_role_assignment(&assignment("at-group", &scope, "p9"))
        .await?;
    s.insert_role_assignment(&assignment(
        "below",
        &format!("{scope}/providers/X/y/z"),
        "p9",
    ))
    .await?;
    s.insert_role_assignment(&assignment("sibling", &format!("{scope}X"), "p9"))
        .await?;
    s.insert_role_assignment(&assignment(
        "for-victim",
        &format!("/subscriptions/{S}"),
        &pid,
    ))
    .await?;
    check(
        s.delete_resource_group(S, "DOOMED_GROUP").await?,
        "group deleted",
    );
    check(
        s.get_identity(S, "doomed_group", "victim").await?.is_none(),
        "identity gone with group",
    );
    check(
        s.get_federated_credential(&pid, "f1x").await?.is_none(),
        "credential gone with identity",
    );
    let left: Vec<String> = s
        .all_role_assignments()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    check(
        left == ["sibling"],
        "only the sibling group's assignment is left",
    );
    check(
        !s.delete_resource_group(S, "doomed_group").await?,
        "second delete finds nothing",
    );
    Ok(())
}
