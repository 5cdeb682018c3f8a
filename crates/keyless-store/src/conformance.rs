//! The conformance suite every [`Store`] implementation must pass. Backends call
//! [`run`] from their own tests with a fresh, empty store, so SQLite and PostgreSQL are
//! held to exactly the same behaviour.
#![allow(clippy::panic, clippy::indexing_slicing)] // test code: a failed check panics

use std::sync::Arc;

use serde_json::Map;

use crate::StoreError;
use crate::records::*;
use crate::store::{Store, UpsertOutcome};

const T: &str = "11111111-1111-1111-1111-111111111111";
const S: &str = "22222222-2222-2222-2222-222222222222";

fn check(cond: bool, what: &str) {
    if !cond {
        panic!("store conformance: {what}");
    }
}

/// Runs every check against `store`, which must be empty.
pub async fn run(store: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*store).await?;
    meta(&*store).await?;
    groups_and_identities(&*store).await?;
    federated_credentials(&*store).await?;
    concurrent_credentials(store.clone()).await?;
    role_assignments(&*store).await?;
    cascade_delete(&*store).await?;
    signing_keys(&*store).await?;
    trusted_issuers(&*store).await?;
    signins(&*store).await?;
    vaults_and_secrets(&*store).await?;
    Ok(())
}

async fn seed(s: &dyn Store) -> Result<(), StoreError> {
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
    .await?;
    check(s.list_tenants().await?.len() == 1, "one tenant");
    s.insert_service_principal(&ServicePrincipalRecord {
        client_id: "c1".into(),
        principal_id: "p1".into(),
        tenant_id: T.into(),
        display_name: "admin".into(),
        secret_hash: "old".into(),
        created_at: 1,
    })
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
    check(s.list_subscriptions().await?.len() == 1, "one subscription");
    Ok(())
}

async fn meta(s: &dyn Store) -> Result<(), StoreError> {
    check(s.meta_get("k").await?.is_none(), "meta absent");
    check(
        s.meta_put_if_absent("k", "a").await? == "a",
        "first meta write wins",
    );
    check(
        s.meta_put_if_absent("k", "b").await? == "a",
        "second meta write keeps first",
    );
    Ok(())
}

fn rg(name: &str) -> ResourceGroupRecord {
    ResourceGroupRecord {
        subscription_id: S.into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: Map::new(),
        created_at: 10,
    }
}

fn identity(group: &str, name: &str, n: u32) -> IdentityRecord {
    IdentityRecord {
        subscription_id: S.into(),
        resource_group: group.into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: Map::new(),
        tenant_id: T.into(),
        principal_id: format!("00000000-0000-0000-0000-{n:012}"),
        client_id: format!("00000000-0000-0000-0001-{n:012}"),
        created_at: 10,
    }
}

fn fic(pid: &str, name: &str, subject: &str) -> FederatedCredentialRecord {
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

async fn groups_and_identities(s: &dyn Store) -> Result<(), StoreError> {
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

    let missing = s.upsert_identity(&identity("nope", "id1", 1)).await;
    check(
        matches!(missing, Err(StoreError::ParentNotFound(_))),
        "identity needs its group",
    );

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

async fn federated_credentials(s: &dyn Store) -> Result<(), StoreError> {
    let pid = "00000000-0000-0000-0000-000000000001";
    let (_, o) = s
        .upsert_federated_credential(&fic(pid, "Fic1", "sub-1"), Some(3))
        .await?;
    check(o == UpsertOutcome::Created, "credential created");
    let dup = s
        .upsert_federated_credential(&fic(pid, "fic2", "sub-1"), Some(3))
        .await;
    check(
        matches!(dup, Err(StoreError::Conflict(_))),
        "issuer+subject unique per identity",
    );
    // Subjects compare exactly: another casing is another subject.
    s.upsert_federated_credential(&fic(pid, "fic2", "SUB-1"), Some(3))
        .await?;
    let (u, o) = s
        .upsert_federated_credential(&fic(pid, "FIC1", "sub-9"), Some(3))
        .await?;
    check(
        o == UpsertOutcome::Updated && u.subject.as_deref() == Some("sub-9"),
        "credential update by name",
    );
    s.upsert_federated_credential(&fic(pid, "fic3", "sub-3"), Some(3))
        .await?;
    let over = s
        .upsert_federated_credential(&fic(pid, "fic4", "sub-4"), Some(3))
        .await;
    check(
        matches!(over, Err(StoreError::LimitExceeded { limit: 3, .. })),
        "limit enforced",
    );
    // Updating an existing one at the limit is fine.
    s.upsert_federated_credential(&fic(pid, "fic3", "sub-33"), Some(3))
        .await?;
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
    check(
        s.list_federated_credentials(pid).await?.len() == 3,
        "three credentials",
    );
    check(
        s.delete_federated_credential(pid, "FIC3").await?,
        "delete ignores case",
    );
    check(
        !s.delete_federated_credential(pid, "fic3").await?,
        "second delete finds nothing",
    );
    Ok(())
}

async fn concurrent_credentials(s: Arc<dyn Store>) -> Result<(), StoreError> {
    s.upsert_identity(&identity("group-a", "busy", 2)).await?;
    let pid = "00000000-0000-0000-0000-000000000002";
    let mut tasks = Vec::new();
    for n in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(pid, &format!("c{n:02}"), &format!("s{n}")), None)
                .await
        }));
    }
    // Racing writers for one issuer+subject: exactly one may win.
    for n in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(pid, &format!("same{n}"), "contested"), None)
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
        s.list_federated_credentials(pid).await?.len() == 17,
        "no lost credential",
    );
    // Racing writers against a limit never overshoot it.
    s.upsert_identity(&identity("group-a", "limited", 3))
        .await?;
    let pid3 = "00000000-0000-0000-0000-000000000003";
    let mut tasks = Vec::new();
    for n in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(pid3, &format!("l{n}"), &format!("s{n}")), Some(4))
                .await
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    check(
        s.list_federated_credentials(pid3).await?.len() == 4,
        "limit holds under races",
    );
    Ok(())
}

fn assignment(name: &str, scope: &str, principal: &str) -> RoleAssignmentRecord {
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

async fn role_assignments(s: &dyn Store) -> Result<(), StoreError> {
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
    check(
        s.delete_role_assignment("a1").await?.is_some(),
        "assignment deleted",
    );
    check(
        s.delete_role_assignment("a1").await?.is_none(),
        "already deleted",
    );
    Ok(())
}

async fn cascade_delete(s: &dyn Store) -> Result<(), StoreError> {
    s.upsert_resource_group(&rg("doomed_group")).await?;
    s.upsert_resource_group(&rg("doomed_groupX")).await?;
    s.upsert_identity(&identity("doomed_group", "victim", 7))
        .await?;
    let pid = "00000000-0000-0000-0000-000000000007";
    s.upsert_federated_credential(&fic(pid, "f1x", "s"), None)
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
        pid,
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
        s.get_federated_credential(pid, "f1x").await?.is_none(),
        "credential gone with identity",
    );
    let left: Vec<String> = s
        .all_role_assignments()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    check(
        left == vec!["sibling".to_string()],
        "only the sibling group's assignment is left",
    );
    check(
        !s.delete_resource_group(S, "doomed_group").await?,
        "second delete finds nothing",
    );
    Ok(())
}

async fn signing_keys(s: &dyn Store) -> Result<(), StoreError> {
    let key = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.into(),
        tenant_id: T.into(),
        alg: "ES256".into(),
        sealed_private_key: vec![1, 2, 3],
        created_at: at,
        active_from: at,
        retired_at: None,
    };
    s.insert_signing_key(&key("k1", 100)).await?;
    s.insert_signing_key(&key("k2", 200)).await?;
    s.retire_signing_key("k1", 300).await?;
    let keys = s.all_signing_keys().await?;
    check(
        keys.len() == 2 && keys[0].retired_at == Some(300),
        "retirement recorded",
    );
    check(
        s.delete_signing_keys_retired_before(300).await? == 0,
        "not yet expired",
    );
    check(
        s.delete_signing_keys_retired_before(301).await? == 1,
        "expired key removed",
    );
    check(
        s.all_signing_keys().await?[0].sealed_private_key == vec![1, 2, 3],
        "blob round-trips",
    );
    Ok(())
}

async fn trusted_issuers(s: &dyn Store) -> Result<(), StoreError> {
    let rec = |name: &str, issuer: &str| TrustedIssuerRecord {
        tenant_id: T.into(),
        name: name.into(),
        issuer: issuer.into(),
        jwks: "{\"keys\":[]}".into(),
        created_at: 1,
        updated_at: 1,
    };
    check(
        s.upsert_trusted_issuer(&rec("Air", "https://a.example"))
            .await?
            == UpsertOutcome::Created,
        "issuer registered",
    );
    check(
        s.upsert_trusted_issuer(&rec("air", "https://a.example/2"))
            .await?
            == UpsertOutcome::Updated,
        "re-registered by name",
    );
    let dup = s
        .upsert_trusted_issuer(&rec("other", "https://a.example/2"))
        .await;
    check(
        matches!(dup, Err(StoreError::Conflict(_))),
        "one registration per issuer",
    );
    check(
        s.all_trusted_issuers().await?.len() == 1,
        "one registration",
    );
    check(s.delete_trusted_issuer(T, "AIR").await?, "deleted");
    Ok(())
}

async fn signins(s: &dyn Store) -> Result<(), StoreError> {
    let rec = |at: i64, ok: bool, client: &str| SignInRecord {
        id: 0,
        at,
        tenant_id: T.into(),
        client_id: client.into(),
        principal_id: None,
        issuer: Some("https://i".into()),
        subject: Some("s".into()),
        resource: None,
        success: ok,
        error_code: (!ok).then_some(700213),
        error: None,
        client_ip: Some("127.0.0.1".into()),
        correlation_id: "c".into(),
        latency_us: 5,
    };
    s.insert_signins(&[rec(10, true, "a"), rec(20, false, "a"), rec(30, false, "b")])
        .await?;
    let q = |client: Option<&str>, failed: bool, since: Option<i64>| SignInQuery {
        tenant_id: T.into(),
        client_id: client.map(str::to_string),
        failed_only: failed,
        since,
        limit: 100,
    };
    let all = s.query_signins(&q(None, false, None)).await?;
    check(all.len() == 3 && all[0].at == 30, "newest first");
    check(
        s.query_signins(&q(Some("a"), false, None)).await?.len() == 2,
        "by client",
    );
    let failed = s.query_signins(&q(None, true, None)).await?;
    check(
        failed.len() == 2 && failed[1].error_code == Some(700213),
        "failures with codes",
    );
    check(
        s.query_signins(&q(None, false, Some(20))).await?.len() == 2,
        "since",
    );
    let other = SignInQuery {
        tenant_id: "other".into(),
        limit: 10,
        ..SignInQuery::default()
    };
    check(
        s.query_signins(&other).await?.is_empty(),
        "tenants are separate",
    );
    // Logged fields come from callers: whatever they contain, the batch is kept whole
    // (PostgreSQL cannot store U+0000 in text; it keeps U+FFFD there instead).
    let mut odd = rec(40, false, "x\0y");
    odd.tenant_id = "nul".into();
    odd.subject = Some("sub\0ject".into());
    odd.error = Some("bad \0 input".into());
    let mut plain = odd.clone();
    plain.client_id = "z".into();
    s.insert_signins(&[odd, plain]).await?;
    let logged = s
        .query_signins(&SignInQuery {
            tenant_id: "nul".into(),
            limit: 10,
            ..SignInQuery::default()
        })
        .await?;
    check(
        logged.len() == 2,
        "a batch with NUL characters is stored whole",
    );
    Ok(())
}

fn secret_version(vault: &str, name: &str, version: &str, at: i64) -> SecretVersionRecord {
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

async fn vaults_and_secrets(s: &dyn Store) -> Result<(), StoreError> {
    s.upsert_resource_group(&rg("vault-rg")).await?;
    let v = VaultRecord {
        name: "Vault-One".into(),
        subscription_id: S.into(),
        resource_group: "VAULT-RG".into(),
        tenant_id: T.into(),
        location: "westeurope".into(),
        tags: Map::new(),
        soft_delete_days: 90,
        purge_protection: false,
        created_at: 1,
    };
    let (stored, o) = s.upsert_vault(&v).await?;
    check(
        o == UpsertOutcome::Created && stored.resource_group == "vault-rg",
        "vault created under the stored group name",
    );
    let (_, o) = s
        .upsert_vault(&VaultRecord {
            name: "vault-one".into(),
            ..v.clone()
        })
        .await?;
    check(
        o == UpsertOutcome::Updated,
        "same vault updated, names ignore case",
    );
    s.upsert_resource_group(&rg("other-rg")).await?;
    let taken = s
        .upsert_vault(&VaultRecord {
            resource_group: "other-rg".into(),
            ..v.clone()
        })
        .await;
    check(
        matches!(taken, Err(StoreError::Conflict(_))),
        "vault names are global",
    );

    s.add_secret_version(&secret_version("vault-one", "Db-Password", "a1", 10))
        .await?;
    s.add_secret_version(&secret_version("VAULT-ONE", "db-password", "a2", 11))
        .await?;
    let sec = s
        .get_secret("vault-one", "DB-PASSWORD")
        .await?
        .unwrap_or_else(|| panic!("secret exists"));
    check(
        sec.name == "Db-Password" && sec.versions.len() == 2,
        "two versions, first casing kept",
    );
    check(
        sec.versions.last().map(|x| x.version.as_str()) == Some("a2"),
        "versions in order",
    );
    let orphan = s
        .add_secret_version(&secret_version("nope", "x", "a1", 1))
        .await;
    check(
        matches!(orphan, Err(StoreError::ParentNotFound(_))),
        "secret needs its vault",
    );

    let mut upd = secret_version("vault-one", "db-password", "a1", 10);
    upd.enabled = false;
    upd.updated_at = 20;
    check(s.update_secret_version(&upd).await?, "version updated");
    check(
        !s.update_secret_version(&secret_version("vault-one", "db-password", "zz", 1))
            .await?,
        "unknown version",
    );

    check(
        s.soft_delete_secret("vault-one", "db-password", 30, 100)
            .await?,
        "soft deleted",
    );
    check(
        !s.soft_delete_secret("vault-one", "db-password", 31, 100)
            .await?,
        "already deleted",
    );
    let reuse = s
        .add_secret_version(&secret_version("vault-one", "db-password", "a3", 32))
        .await;
    check(
        matches!(reuse, Err(StoreError::Conflict(_))),
        "a deleted name cannot be reused",
    );
    check(
        s.recover_secret("vault-one", "db-password").await?,
        "recovered",
    );
    check(
        s.get_secret("vault-one", "db-password")
            .await?
            .is_some_and(|x| x.deleted_at.is_none() && x.versions.len() == 2),
        "recovered whole",
    );
    s.add_secret_version(&secret_version("vault-one", "other", "b1", 40))
        .await?;
    check(s.list_secrets("vault-one").await?.len() == 2, "two secrets");
    s.soft_delete_secret("vault-one", "other", 50, 60).await?;
    check(s.purge_expired_secrets(59).await? == 0, "not yet purged");
    check(s.purge_expired_secrets(60).await? == 1, "purged on time");
    check(
        s.get_secret("vault-one", "other").await?.is_none(),
        "purged for good",
    );

    let vault_scope = format!(
        "/subscriptions/{S}/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/vault-one"
    );
    s.insert_role_assignment(&assignment("on-vault", &vault_scope, "p5"))
        .await?;
    check(s.delete_vault("VAULT-ONE").await?, "vault deleted");
    check(
        s.get_secret("vault-one", "db-password").await?.is_none(),
        "secrets go with the vault",
    );
    check(
        !s.all_role_assignments()
            .await?
            .iter()
            .any(|a| a.name == "on-vault"),
        "assignments on the vault go with it",
    );
    Ok(())
}
