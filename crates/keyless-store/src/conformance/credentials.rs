//! Federated identity credentials: uniqueness, limits, case rules, ordering, races.

use std::sync::Arc;

use super::fixtures::*;
use crate::StoreError;
use crate::store::{Store, UpsertOutcome};

/// Issuer+subject is unique per identity; subjects compare exactly (case matters).
pub async fn credential_issuer_and_subject_are_unique_per_identity(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    let pid = pid(1);
    let (_, o) = s
        .upsert_federated_credential(&fic(&pid, "Fic1", "sub-1"), Some(3))
        .await?;
    check(o == UpsertOutcome::Created, "credential created");
    let dup = s
        .upsert_federated_credential(&fic(&pid, "fic2", "sub-1"), Some(3))
        .await;
    check(
        matches!(dup, Err(StoreError::Conflict(_))),
        "issuer+subject unique per identity",
    );
    // Subjects compare exactly: another casing is another subject.
    s.upsert_federated_credential(&fic(&pid, "fic2", "SUB-1"), Some(3))
        .await?;
    Ok(())
}

/// An upsert with the same name in another casing updates the credential.
pub async fn credential_update_by_name_ignores_case(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    let pid = pid(1);
    s.upsert_federated_credential(&fic(&pid, "Fic1", "sub-1"), Some(3))
        .await?;
    let (u, o) = s
        .upsert_federated_credential(&fic(&pid, "FIC1", "sub-9"), Some(3))
        .await?;
    check(
        o == UpsertOutcome::Updated && u.subject.as_deref() == Some("sub-9"),
        "credential update by name",
    );
    check(
        s.get_federated_credential(&pid, "fic1")
            .await?
            .is_some_and(|c| c.name == "Fic1"),
        "lookup ignores case, first casing kept",
    );
    Ok(())
}

/// The per-identity limit refuses a new credential but not an update of one.
pub async fn credential_limit_is_enforced(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    let pid = pid(1);
    for n in 1..=3 {
        s.upsert_federated_credential(&fic(&pid, &format!("fic{n}"), &format!("sub-{n}")), Some(3))
            .await?;
    }
    let over = s
        .upsert_federated_credential(&fic(&pid, "fic4", "sub-4"), Some(3))
        .await;
    check(
        matches!(over, Err(StoreError::LimitExceeded { limit: 3, .. })),
        "limit enforced",
    );
    // Updating an existing one at the limit is fine.
    s.upsert_federated_credential(&fic(&pid, "fic3", "sub-33"), Some(3))
        .await?;
    check(
        s.list_federated_credentials(&pid).await?.len() == 3,
        "three credentials",
    );
    Ok(())
}

/// A credential cannot be created without its identity.
pub async fn credential_needs_its_identity(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    let orphan = s
        .upsert_federated_credential(
            &fic("00000000-0000-0000-0000-00000000dead", "x1x", "s"),
            None,
        )
        .await;
    check(
        matches!(orphan, Err(StoreError::ParentNotFound(_))),
        "credential needs its identity",
    );
    Ok(())
}

/// Deleting a credential ignores case; a second delete finds nothing.
pub async fn credential_delete_ignores_case(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    let pid = pid(1);
    s.upsert_federated_credential(&fic(&pid, "fic3", "sub-3"), None)
        .await?;
    check(
        s.delete_federated_credential(&pid, "FIC3").await?,
        "delete ignores case",
    );
    check(
        !s.delete_federated_credential(&pid, "fic3").await?,
        "second delete finds nothing",
    );
    check(
        s.list_federated_credentials(&pid).await?.is_empty(),
        "nothing left",
    );
    Ok(())
}

/// An identity's credentials are listed by name, ignoring case, whatever the insertion
/// order (messages that name several credentials read the same on every backend).
pub async fn credentials_are_listed_by_name(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    let pid = pid(1);
    for (n, name) in ["zeta", "Alpha", "mid", "beta", "Mu"]
        .into_iter()
        .enumerate()
    {
        s.upsert_federated_credential(&fic(&pid, name, &format!("s{n}")), None)
            .await?;
    }
    let listed: Vec<String> = s
        .list_federated_credentials(&pid)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    check(
        listed == ["Alpha", "beta", "mid", "Mu", "zeta"],
        "credentials by name, case-insensitively",
    );
    Ok(())
}

/// Every credential (the in-memory view's load) comes by identity principal id, then
/// name, whatever the insertion order.
pub async fn every_credential_is_listed_by_identity_then_name(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    s.upsert_identity(&identity("group-a", "id2", 2)).await?;
    let inserts = [(2, "b"), (1, "Z"), (2, "A"), (1, "c")];
    for (n, (who, name)) in inserts.into_iter().enumerate() {
        s.upsert_federated_credential(&fic(&pid(who), name, &format!("s{n}")), None)
            .await?;
    }
    let listed: Vec<(String, String)> = s
        .all_federated_credentials()
        .await?
        .into_iter()
        .map(|c| (c.identity_principal_id, c.name))
        .collect();
    let want = [(pid(1), "c"), (pid(1), "Z"), (pid(2), "A"), (pid(2), "b")];
    check(
        listed
            .iter()
            .map(|(p, n)| (p.as_str(), n.as_str()))
            .eq(want.iter().map(|(p, n)| (p.as_str(), *n))),
        "all credentials by (identity, name)",
    );
    Ok(())
}

/// Concurrent writers on one identity lose no credential, and of several racing for one
/// issuer+subject exactly one wins.
pub async fn concurrent_credential_writers_lose_nothing(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    s.upsert_identity(&identity("group-a", "busy", 2)).await?;
    let pid = pid(2);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (s, pid) = (s.clone(), pid.clone());
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(&pid, &format!("c{n:02}"), &format!("s{n}")), None)
                .await
        }));
    }
    // Racing writers for one issuer+subject: exactly one may win.
    for n in 0..8 {
        let (s, pid) = (s.clone(), pid.clone());
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(&pid, &format!("same{n}"), "contested"), None)
                .await
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(_)) => {}
            Ok(Err(StoreError::Conflict(_))) => conflicts += 1,
            Ok(Err(e)) => return Err(e),
            Err(e) => panic!("task failed: {e}"),
        }
    }
    check(conflicts == 7, "exactly one contested writer wins");
    check(
        s.list_federated_credentials(&pid).await?.len() == 17,
        "no lost credential",
    );
    Ok(())
}

/// Concurrent writers against a count limit never overshoot it.
pub async fn credential_limit_holds_under_races(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed_identity(&*s).await?;
    s.upsert_identity(&identity("group-a", "limited", 3))
        .await?;
    let pid = pid(3);
    let mut tasks = Vec::new();
    for n in 0..10 {
        let (s, pid) = (s.clone(), pid.clone());
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(&pid, &format!("l{n}"), &format!("s{n}")), Some(4))
                .await
        }));
    }
    for t in tasks {
        // Losers fail with LimitExceeded; only the count matters here.
        let _ = t.await;
    }
    check(
        s.list_federated_credentials(&pid).await?.len() == 4,
        "limit holds under races",
    );
    Ok(())
}
