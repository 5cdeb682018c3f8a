//! The escalation rule: changing an identity's federated credentials requires being
//! able to grant every role the identity holds, decided on one snapshot and checked
//! again after the write so a role assigned concurrently cannot slip through.

use keyless_core::ErrorKind;
use keyless_core::management::FederatedCredentialInput;
use keyless_core::tokens::Caller;
use keyless_store::{IdentityRecord, UpsertOutcome};

use crate::harness::{Harness, STATIC_ISSUER, sa_subject, subject_credential};

fn sub_scope(h: &Harness) -> String {
    format!("/subscriptions/{}", h.sub())
}

fn group_scope(h: &Harness, rg: &str) -> String {
    format!("{}/resourceGroups/{rg}", sub_scope(h))
}

/// An identity trusting the static issuer for `ns1:{name}`, holding `role` at
/// `scope`, signed in.
async fn workload(h: &Harness, name: &str, role: &str, scope: &str) -> Caller {
    h.group("rg1").await;
    let id = h
        .federated_identity(name, STATIC_ISSUER, &sa_subject("ns1", name))
        .await;
    h.assign(scope, role, &id.principal_id).await;
    h.sign_in(&id, "ns1", name).await
}

/// `deployer` in rg1, Owner of the subscription, with no credential yet.
async fn owner_identity(h: &Harness) -> IdentityRecord {
    let deployer = h.identity("rg1", "deployer").await;
    h.assign(&sub_scope(h), "Owner", &deployer.principal_id)
        .await;
    deployer
}

/// A credential on `identity` that trusts the caller's own service account.
fn backdoor(name: &str) -> FederatedCredentialInput {
    subject_credential(STATIC_ISSUER, &sa_subject("ns1", name))
}

async fn put(
    h: &Harness,
    caller: &Caller,
    identity: &IdentityRecord,
    name: &str,
    input: FederatedCredentialInput,
) -> Result<(keyless_store::FederatedCredentialRecord, UpsertOutcome), keyless_core::ManagementError>
{
    h.k.put_federated_credential(
        caller,
        h.sub(),
        &identity.resource_group,
        &identity.name,
        name,
        input,
    )
    .await
}

async fn credential_names(h: &Harness, identity: &IdentityRecord) -> Vec<String> {
    h.k.list_federated_credentials(
        &h.admin.caller,
        h.sub(),
        &identity.resource_group,
        &identity.name,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|c| c.name)
    .collect()
}

#[tokio::test]
async fn a_contributor_cannot_make_an_owner_identity_trust_it() {
    let h = Harness::new().await;
    let team_app = workload(&h, "team-app", "Contributor", &group_scope(&h, "rg1")).await;
    let deployer = owner_identity(&h).await;

    let e = put(&h, &team_app, &deployer, "backdoor", backdoor("team-app"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert_eq!(e.code, "AuthorizationFailed");
    assert!(e.message.contains("'Owner'"), "{}", e.message);
    assert!(
        e.message.contains(&format!("at scope '{}'", sub_scope(&h))),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("Microsoft.Authorization/roleAssignments/write"),
        "{}",
        e.message
    );
    assert!(credential_names(&h, &deployer).await.is_empty());
    // So the workload cannot become the deployer.
    let refused = h
        .exchange(&deployer.client_id, &h.static_token("ns1", "team-app"))
        .await;
    assert!(refused.is_err(), "exchange as deployer must fail");
}

#[tokio::test]
async fn an_identity_without_roles_takes_credentials_from_a_contributor() {
    let h = Harness::new().await;
    let team_app = workload(&h, "team-app", "Contributor", &group_scope(&h, "rg1")).await;
    let fresh = h.identity("rg1", "fresh").await;
    let (_, outcome) = put(&h, &team_app, &fresh, "fic", backdoor("team-app"))
        .await
        .unwrap();
    assert_eq!(outcome, UpsertOutcome::Created);
}

#[tokio::test]
async fn an_owner_of_every_scope_the_identity_holds_a_role_at_may_add_one() {
    let h = Harness::new().await;
    let platform = workload(&h, "platform", "Owner", &sub_scope(&h)).await;
    let deployer = owner_identity(&h).await;
    h.assign(
        &group_scope(&h, "rg1"),
        "Key Vault Secrets User",
        &deployer.principal_id,
    )
    .await;
    put(&h, &platform, &deployer, "ci-pipeline", backdoor("ci"))
        .await
        .unwrap();
    // An Owner of rg1 alone could grant the rg1 role, not the subscription one.
    let rg_owner = workload(&h, "rg-owner", "Owner", &group_scope(&h, "rg1")).await;
    let e = put(&h, &rg_owner, &deployer, "other", backdoor("rg-owner"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(e.message.contains("'Owner'"), "{}", e.message);
}

#[tokio::test]
async fn any_change_of_trust_is_checked_but_an_identical_put_changes_nothing() {
    let h = Harness::new().await;
    let team_app = workload(&h, "team-app", "Contributor", &group_scope(&h, "rg1")).await;
    let deployer = owner_identity(&h).await;
    let original = subject_credential(STATIC_ISSUER, &sa_subject("deploy", "pipeline"));
    h.credential(&deployer, "pipeline", original.clone()).await;
    let before =
        h.k.get_federated_credential(&h.admin.caller, h.sub(), "rg1", "deployer", "pipeline")
            .await
            .unwrap();
    h.clock.advance(60);

    // The same properties again: allowed, and nothing is written.
    let (same, outcome) = put(&h, &team_app, &deployer, "pipeline", original.clone())
        .await
        .unwrap();
    assert_eq!(outcome, UpsertOutcome::Updated);
    assert_eq!(
        same, before,
        "an identical PUT must not touch the credential"
    );

    // A different subject, audience, issuer or expression is a change.
    let mut subject = original.clone();
    subject.subject = Some(sa_subject("ns1", "team-app"));
    let mut audience = original.clone();
    audience.audiences = vec!["api://other".into()];
    let mut issuer = original.clone();
    issuer.issuer = "https://elsewhere.example".into();
    let expression = FederatedCredentialInput {
        subject: None,
        expression: Some("claims['sub'] eq 'system:serviceaccount:ns1:team-app'".into()),
        ..original.clone()
    };
    for changed in [subject, audience, issuer, expression] {
        let e = put(&h, &team_app, &deployer, "pipeline", changed.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden, "{changed:?}: {e}");
    }
    let after =
        h.k.get_federated_credential(&h.admin.caller, h.sub(), "rg1", "deployer", "pipeline")
            .await
            .unwrap();
    assert_eq!(after, before);
}

#[tokio::test]
async fn managed_identity_roles_write_credentials_only_on_identities_without_roles() {
    let h = Harness::new().await;
    let mi_contributor = workload(
        &h,
        "mi-contributor",
        "Managed Identity Contributor",
        &group_scope(&h, "rg1"),
    )
    .await;
    let mi_operator = workload(
        &h,
        "mi-operator",
        "Managed Identity Operator",
        &group_scope(&h, "rg1"),
    )
    .await;
    let fresh = h.identity("rg1", "fresh").await;
    let deployer = owner_identity(&h).await;

    put(
        &h,
        &mi_contributor,
        &fresh,
        "fic",
        backdoor("mi-contributor"),
    )
    .await
    .unwrap();
    let e = put(
        &h,
        &mi_contributor,
        &deployer,
        "fic",
        backdoor("mi-contributor"),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("'Owner'"), "{}", e.message);
    // The operator reads credentials but cannot write any.
    let listed =
        h.k.list_federated_credentials(&mi_operator, h.sub(), "rg1", "fresh")
            .await
            .unwrap();
    assert_eq!(listed.len(), 1);
    let e = put(&h, &mi_operator, &fresh, "fic2", backdoor("mi-operator"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(
        e.message.contains("federatedIdentityCredentials/write"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_role_assigned_concurrently_is_caught_after_the_write_and_the_write_undone() {
    let h = Harness::new().await;
    let team_app = workload(&h, "team-app", "Contributor", &group_scope(&h, "rg1")).await;
    let target = h.identity("rg1", "target").await;
    let existing = subject_credential(STATIC_ISSUER, &sa_subject("deploy", "pipeline"));
    h.credential(&target, "pipeline", existing.clone()).await;
    // A second replica whose view predates the Owner assignment below: the
    // Contributor's request there is decided on a snapshot without it, as if the
    // assignment committed between the check and the write.
    // One replica per attempt: a refused write refreshes the replica's view.
    let (stale_a, stale_b) = (h.replica().await, h.replica().await);
    h.assign(&sub_scope(&h), "Owner", &target.principal_id)
        .await;

    for (stale, name, input) in [
        (&stale_a, "backdoor", backdoor("team-app")),
        (&stale_b, "pipeline", backdoor("team-app")),
    ] {
        let e = stale
            .put_federated_credential(&team_app, h.sub(), "rg1", "target", name, input)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden, "{name}: {e}");
        assert!(e.message.contains("'Owner'"), "{}", e.message);
    }
    // The new credential is gone and the replaced one is back as it was, in the store
    // (both replicas' views) — so no token for the workload.
    h.k.refresh().await.unwrap();
    assert_eq!(credential_names(&h, &target).await, ["pipeline"]);
    let restored =
        h.k.get_federated_credential(&h.admin.caller, h.sub(), "rg1", "target", "pipeline")
            .await
            .unwrap();
    assert_eq!(restored.subject, existing.subject);
    assert!(
        h.exchange(&target.client_id, &h.static_token("ns1", "team-app"))
            .await
            .is_err()
    );
}
