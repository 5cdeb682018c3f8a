//! No privilege escalation through federation (issue 11): a federated credential lets
//! the workloads it trusts act with every role of its identity, so only someone who
//! could grant those roles may change it. Reproduces the attack against the real
//! binary: a Contributor of one group trusting its own workload on a subscription
//! Owner identity.

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{AUTHZ_API, Identity, MI_API, Reply, Server, TestIssuer, credential, role_id};

const ISSUER: &str = "https://oidc.escalation.test/cluster-1";

/// A server trusting [`ISSUER`] (static JWKS) with resource group `rg1`.
async fn setup() -> Result<(Server, TestIssuer)> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new(ISSUER)?;
    server
        .register_issuer("escalation", &issuer.issuer, issuer.jwks())
        .await?;
    server.create_rg("rg1").await?;
    Ok((server, issuer))
}

fn sa(name: &str) -> String {
    format!("system:serviceaccount:team:{name}")
}

/// Identity `name` in rg1 trusting service account `team:{name}`, holding `role` at
/// `scope`; returns it and a management token obtained by federation.
async fn workload(
    server: &Server,
    issuer: &TestIssuer,
    name: &str,
    role: &str,
    scope: &str,
) -> Result<(Identity, String)> {
    let identity = server
        .identity_with_credential("rg1", name, credential(&issuer.issuer, &sa(name)))
        .await?;
    let r = server
        .put_assignment(
            scope,
            &uuid::Uuid::new_v4().to_string(),
            role_id(role),
            &identity.principal_id,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let r = server
        .exchange(&identity.client_id, &issuer.sign(&issuer.claims(&sa(name))))
        .await?;
    assert_eq!(r.code(), 200, "exchange as {name}: {}", r.body);
    let token = r.body["access_token"]
        .as_str()
        .context("no access_token")?
        .to_string();
    Ok((identity, token))
}

/// A management call with `token`.
async fn arm_as(
    server: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Reply> {
    server
        .arm_raw(
            method,
            path,
            Some(&format!("Bearer {token}")),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
}

async fn put_fic_as(
    server: &Server,
    token: &str,
    identity: &str,
    name: &str,
    properties: Value,
) -> Result<Reply> {
    arm_as(
        server,
        token,
        Method::PUT,
        &format!(
            "{}?api-version={MI_API}",
            server.fic_path("rg1", identity, name)
        ),
        Some(json!({ "properties": properties })),
    )
    .await
}

async fn assign_as(
    server: &Server,
    token: &str,
    scope: &str,
    role: &str,
    principal: &str,
) -> Result<Reply> {
    let body = json!({"properties": {
        "roleDefinitionId": format!("{}/providers/Microsoft.Authorization/roleDefinitions/{}", server.sub_path(), role_id(role)),
        "principalId": principal,
        "principalType": "ServicePrincipal",
    }});
    let path = format!(
        "{}?api-version={AUTHZ_API}",
        Server::assignment_path(scope, &uuid::Uuid::new_v4().to_string())
    );
    arm_as(server, token, Method::PUT, &path, Some(body)).await
}

/// `deployer` in rg1 with no credential, Owner of the subscription.
async fn owner_identity(server: &Server) -> Result<Identity> {
    let body = server.create_identity("rg1", "deployer").await?;
    let s = |v: &Value| v.as_str().map(str::to_string).context("missing field");
    let identity = Identity {
        id: s(&body["id"])?,
        client_id: s(&body["properties"]["clientId"])?,
        principal_id: s(&body["properties"]["principalId"])?,
    };
    let r = server
        .put_assignment(
            &server.sub_path(),
            &uuid::Uuid::new_v4().to_string(),
            role_id("Owner"),
            &identity.principal_id,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    Ok(identity)
}

#[tokio::test]
async fn a_contributor_cannot_become_a_subscription_owner_through_a_federated_credential()
-> Result<()> {
    let (server, issuer) = setup().await?;
    let (team_app, token) = workload(
        &server,
        &issuer,
        "team-app",
        "Contributor",
        &server.rg_path("rg1"),
    )
    .await?;
    let deployer = owner_identity(&server).await?;

    // 1. Directly: refused, as before.
    let r = assign_as(
        &server,
        &token,
        &server.sub_path(),
        "Owner",
        &team_app.principal_id,
    )
    .await?;
    r.arm_error(403, "AuthorizationFailed");

    // 2. Through the deployer: a credential trusting team-app's own service account.
    let r = put_fic_as(
        &server,
        &token,
        "deployer",
        "backdoor",
        credential(ISSUER, &sa("team-app")),
    )
    .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(msg.contains("'Owner'"), "{msg}");
    assert!(
        msg.contains(&format!("scope '{}'", server.sub_path())),
        "{msg}"
    );
    assert!(
        msg.contains("Microsoft.Authorization/roleAssignments/write"),
        "{msg}"
    );
    let r = server
        .armv(
            Method::GET,
            &server.fic_path("rg1", "deployer", "backdoor"),
            MI_API,
            None,
        )
        .await?;
    r.arm_error(404, "NotFound");

    // 3. So team-app's token cannot be exchanged for the deployer...
    let r = server
        .exchange(
            &deployer.client_id,
            &issuer.sign(&issuer.claims(&sa("team-app"))),
        )
        .await?;
    r.oauth_error(401, "invalid_client", 700211);

    // 4. ...and team-app is still only a Contributor.
    let held = server
        .assignments_of(&server.sub_path(), &team_app.principal_id)
        .await?;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        held[0]["properties"]["roleDefinitionId"]
            .as_str()
            .map(|id| id.ends_with(role_id("Contributor"))),
        Some(true),
        "{held:?}"
    );
    Ok(())
}

#[tokio::test]
async fn who_may_write_a_credential_depends_on_the_identitys_roles() -> Result<()> {
    let (server, issuer) = setup().await?;
    let (_, contributor) = workload(
        &server,
        &issuer,
        "team-app",
        "Contributor",
        &server.rg_path("rg1"),
    )
    .await?;
    let (_, owner) = workload(&server, &issuer, "platform", "Owner", &server.sub_path()).await?;
    owner_identity(&server).await?;
    server.create_identity("rg1", "no-roles").await?;

    // An identity without roles: anyone who may write credentials.
    let r = put_fic_as(
        &server,
        &contributor,
        "no-roles",
        "team-app",
        credential(ISSUER, &sa("team-app")),
    )
    .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    // An Owner of the subscription may trust anyone with the deployer.
    let pipeline = credential(ISSUER, &sa("pipeline"));
    let r = put_fic_as(&server, &owner, "deployer", "pipeline", pipeline.clone()).await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    // The Contributor re-PUTting exactly the same properties: allowed, nothing changes.
    let r = put_fic_as(
        &server,
        &contributor,
        "deployer",
        "pipeline",
        pipeline.clone(),
    )
    .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"]["subject"], json!(sa("pipeline")));

    // Changing only the subject is a change: refused, and the credential stays.
    let mut moved = pipeline.clone();
    moved["subject"] = json!(sa("team-app"));
    let r = put_fic_as(&server, &contributor, "deployer", "pipeline", moved).await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(msg.contains("'Owner'"), "{msg}");
    let r = server
        .armv(
            Method::GET,
            &server.fic_path("rg1", "deployer", "pipeline"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"]["subject"], json!(sa("pipeline")));
    Ok(())
}

#[tokio::test]
async fn the_managed_identity_roles_exist_with_their_azure_ids() -> Result<()> {
    let server = Server::start(&[]).await?;
    let defs = format!(
        "{}/providers/Microsoft.Authorization/roleDefinitions",
        server.sub_path()
    );
    for (name, id, action) in [
        (
            "Managed Identity Contributor",
            "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
        ),
        (
            "Managed Identity Operator",
            "f1a07417-d97a-45cb-824c-7a7467783830",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        ),
    ] {
        let r = server
            .armv(Method::GET, &format!("{defs}/{id}"), AUTHZ_API, None)
            .await?;
        assert_eq!(r.code(), 200, "{}", r.body);
        assert_eq!(r.body["name"], json!(id));
        assert_eq!(r.body["properties"]["roleName"], json!(name));
        let actions = &r.body["properties"]["permissions"][0]["actions"];
        assert!(
            actions
                .as_array()
                .is_some_and(|a| a.contains(&json!(action))),
            "{name}: {}",
            r.body
        );
    }
    Ok(())
}
