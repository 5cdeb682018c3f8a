//! Authentication and authorisation of the management API: bearer tokens, tenant
//! isolation and role-based access.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{AUTHZ_API, KEYLESS_API, MI_API, RG_API, SUB_API, Server, role_id};

#[tokio::test]
async fn anonymous_garbage_and_wrong_audience_tokens_are_401() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    let path = format!("{}?api-version={RG_API}", server.rg_path("rg1"));
    let challenge_prefix = format!("Bearer authorization_uri=\"{}\"", server.url);

    let r = server.arm_raw(Method::GET, &path, None, None).await?;
    let msg = r.arm_error(401, "AuthenticationFailed");
    assert!(msg.contains("Authorization"), "{msg}");
    let www = r
        .header("www-authenticate")
        .expect("WWW-Authenticate on 401");
    assert!(www.starts_with(&challenge_prefix), "{www}");

    for header in ["Basic YWRtaW46YWRtaW4=", "Bearer ", "Bearer", "token abc"] {
        let r = server
            .arm_raw(Method::GET, &path, Some(header), None)
            .await?;
        r.arm_error(401, "AuthenticationFailed");
        assert!(r.header("www-authenticate").is_some(), "{header}");
    }

    let r = server
        .arm_raw(Method::GET, &path, Some("Bearer not.a.token"), None)
        .await?;
    r.arm_error(401, "InvalidAuthenticationToken");
    assert!(r.header("www-authenticate").is_some());

    // A real token with its signature tampered with.
    let token = server.admin_token().await?;
    let (head, sig) = token.rsplit_once('.').unwrap();
    let flipped: String = sig
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 5 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    let r = server
        .arm_raw(
            Method::GET,
            &path,
            Some(&format!("Bearer {head}.{flipped}")),
            None,
        )
        .await?;
    let msg = r.arm_error(401, "InvalidAuthenticationToken");
    assert!(msg.contains("signature"), "{msg}");

    // A token whose claims were swapped for another principal's (signature kept).
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = crate::testkit::jwt_claims(&token);
    claims["oid"] = json!(uuid::Uuid::new_v4().to_string());
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    let r = server
        .arm_raw(Method::GET, &path, Some(&format!("Bearer {forged}")), None)
        .await?;
    r.arm_error(401, "InvalidAuthenticationToken");

    // A token for the vault is not a management token.
    let vault = server
        .token_for(&format!("https://vault.localhost:{}/.default", server.port))
        .await?;
    let r = server
        .arm_raw(Method::GET, &path, Some(&format!("Bearer {vault}")), None)
        .await?;
    let msg = r.arm_error(401, "InvalidAuthenticationTokenAudience");
    assert!(
        msg.contains(&format!("https://vault.localhost:{}", server.port)),
        "{msg}"
    );
    assert!(msg.contains(&server.admin.resource_manager_url), "{msg}");
    assert!(r.header("www-authenticate").is_some());

    // The real token works (the failures above were about the token only).
    let r = server
        .arm_raw(Method::GET, &path, Some(&format!("Bearer {token}")), None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    // `bearer` in lower case is accepted as well.
    let r = server
        .arm_raw(Method::GET, &path, Some(&format!("bearer {token}")), None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn tenants_are_isolated() -> Result<()> {
    let (a, b) = tokio::try_join!(Server::start(&[]), Server::start(&[]))?;
    assert_ne!(a.admin.tenant_id, b.admin.tenant_id);
    a.create_rg("rg1").await?;
    let b_token = b.admin_token().await?;

    // B's token on A: signed by a key A does not know.
    let r = a
        .arm_raw(
            Method::GET,
            &format!("{}?api-version={RG_API}", a.rg_path("rg1")),
            Some(&format!("Bearer {b_token}")),
            None,
        )
        .await?;
    r.arm_error(401, "InvalidAuthenticationToken");

    // A's subscription seen by B's admin on B: not found, never forbidden.
    let foreign = a.sub_path();
    for (method, path, api, body) in [
        (Method::GET, foreign.clone(), SUB_API, None),
        (
            Method::GET,
            format!("{foreign}/resourcegroups/rg1"),
            RG_API,
            None,
        ),
        (
            Method::PUT,
            format!("{foreign}/resourcegroups/rg2"),
            RG_API,
            Some(json!({"location": "westeurope"})),
        ),
        (
            Method::GET,
            format!("{foreign}/resourcegroups"),
            RG_API,
            None,
        ),
        (
            Method::PUT,
            a.identity_path("rg1", "id1"),
            MI_API,
            Some(json!({"location": "westeurope"})),
        ),
        (
            Method::GET,
            format!("{foreign}/providers/Microsoft.Authorization/roleAssignments"),
            AUTHZ_API,
            None,
        ),
    ] {
        let r = b.armv(method.clone(), &path, api, body).await?;
        let msg = r.arm_error(404, "SubscriptionNotFound");
        assert!(
            msg.contains(&a.admin.subscription_id),
            "{method} {path}: {msg}"
        );
    }
    // B lists only its own subscription.
    let r = b.armv(Method::GET, "/subscriptions", SUB_API, None).await?;
    assert_eq!(
        r.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["subscriptionId"].clone())
            .collect::<Vec<_>>(),
        vec![json!(b.admin.subscription_id)]
    );
    // A's admin cannot be assigned a role in B's directory.
    let a_oid = a.admin_object_id().await?;
    let r = b
        .put_assignment(
            &b.sub_path(),
            "8c1d6e55-1111-4222-8333-444455556666",
            role_id("Reader"),
            &a_oid,
        )
        .await?;
    r.arm_error(400, "PrincipalNotFound");
    // A's admin credential is unknown to B's token service.
    let r = b
        .post_form(
            &b.token_path_v2(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.admin.client_id),
                ("client_secret", &a.admin.client_secret),
                ("scope", &b.arm_scope()),
            ],
            &[],
        )
        .await?;
    r.oauth_error(400, "unauthorized_client", 700016);
    Ok(())
}

/// Deletes the admin's bootstrap assignments of `roles` (at the subscription and the
/// root; root last: the root Owner is what allows the deletions).
async fn drop_admin_roles(server: &Server, roles: &[&str]) -> Result<()> {
    let oid = server.admin_object_id().await?;
    let mine = server.assignments_of(&server.sub_path(), &oid).await?;
    let sub = server.sub_path();
    let mut doomed: Vec<&Value> = mine
        .iter()
        .filter(|a| {
            let rd = a["properties"]["roleDefinitionId"].as_str().unwrap();
            let scope = a["properties"]["scope"].as_str().unwrap();
            (scope == "/" || scope == sub) && roles.iter().any(|r| rd.ends_with(role_id(r)))
        })
        .collect();
    doomed.sort_by_key(|a| a["properties"]["scope"] == json!("/"));
    assert!(!doomed.is_empty(), "{mine:?}");
    for a in doomed {
        let id = a["id"].as_str().unwrap();
        let r = server
            .arm(
                Method::DELETE,
                &format!("{id}?api-version={AUTHZ_API}"),
                None,
            )
            .await?;
        assert_eq!(r.code(), 200, "deleting {id}: {}", r.body);
    }
    Ok(())
}

/// Deletes the admin's two Owner assignments.
async fn drop_admin_owner(server: &Server) -> Result<()> {
    drop_admin_roles(server, &["Owner"]).await?;
    let oid = server.admin_object_id().await?;
    let owners = server
        .assignments_of(&server.sub_path(), &oid)
        .await?
        .into_iter()
        .filter(|a| {
            a["properties"]["roleDefinitionId"]
                .as_str()
                .unwrap()
                .ends_with(role_id("Owner"))
                && a["properties"]["scope"].as_str().unwrap().len() <= server.sub_path().len()
        })
        .count();
    assert_eq!(owners, 0);
    Ok(())
}

#[tokio::test]
async fn without_owner_only_key_vault_administrator_rights_remain() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    server.create_identity("rg1", "existing").await?;
    drop_admin_owner(&server).await?;
    let oid = server.admin_object_id().await?;
    let left = server.assignments_of(&server.sub_path(), &oid).await?;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0]["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .ends_with(role_id("Key Vault Administrator"))
    );

    // Writing an identity is now forbidden, with a message naming action and scope.
    let path = server.identity_path("rg1", "id1");
    let r = server
        .armv(
            Method::PUT,
            &path,
            MI_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(
        msg.contains("Microsoft.ManagedIdentity/userAssignedIdentities/write"),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains(&path.to_lowercase()), "{msg}");
    assert!(msg.contains(&oid), "{msg}");
    assert!(msg.contains(&server.admin.client_id), "{msg}");

    // Reading a managed identity is not a Key Vault Administrator right either.
    let r = server
        .armv(
            Method::GET,
            &server.identity_path("rg1", "existing"),
            MI_API,
            None,
        )
        .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(msg.contains("userAssignedIdentities/read"), "{msg}");
    // Listing does not leak what cannot be read.
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                server.sub_path()
            ),
            MI_API,
            None,
        )
        .await?;
    assert!(
        r.code() == 403 || r.body["value"] == json!([]),
        "{} {}",
        r.code(),
        r.body
    );

    // Resource groups: read yes, write and delete no.
    let r = server
        .armv(Method::GET, &server.rg_path("rg1"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server
        .armv(
            Method::GET,
            &format!("{}/resourcegroups", server.sub_path()),
            RG_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["value"][0]["name"], json!("rg1"));
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("rg2"),
            RG_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(msg.contains("resourceGroups/write"), "{msg}");
    let r = server
        .armv(Method::DELETE, &server.rg_path("rg1"), RG_API, None)
        .await?;
    r.arm_error(403, "AuthorizationFailed");

    // Role assignments: readable (Microsoft.Authorization/*/read), not writable.
    let r = server
        .put_assignment(
            &server.sub_path(),
            "9a8b7c6d-1111-4222-8333-444455556666",
            role_id("Owner"),
            &oid,
        )
        .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(
        msg.contains("Microsoft.Authorization/roleAssignments/write"),
        "{msg}"
    );
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/providers/Microsoft.Authorization/roleDefinitions",
                server.sub_path()
            ),
            AUTHZ_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);

    // Key rotation needs Owner at the root.
    let r = server
        .armv(
            Method::POST,
            "/providers/Keyless/signingKeys/rotate",
            KEYLESS_API,
            None,
        )
        .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(msg.contains("Keyless/signingKeys/rotate/action"), "{msg}");

    // Nothing was written by the refused calls.
    let r = server
        .armv(Method::GET, &server.rg_path("rg2"), RG_API, None)
        .await?;
    r.arm_error(404, "ResourceGroupNotFound");
    Ok(())
}

#[tokio::test]
async fn contributor_manages_resources_but_not_access() -> Result<()> {
    let server = Server::start(&[]).await?;
    let oid = server.admin_object_id().await?;
    let r = server
        .put_assignment(
            &server.sub_path(),
            "2c4e6a8b-1111-4222-8333-444455556666",
            role_id("Contributor"),
            &oid,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    drop_admin_owner(&server).await?;

    server.create_rg("rg1").await?;
    let identity = server.create_identity("rg1", "id1").await?;
    let r = server
        .put_fic("rg1", "id1", "cred", json!({"issuer": "https://i.example", "subject": "s", "audiences": ["api://AzureADTokenExchange"]}))
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    let principal = identity["properties"]["principalId"].as_str().unwrap();
    let r = server
        .put_assignment(
            &server.rg_path("rg1"),
            "2c4e6a8b-1111-4222-8333-444455556667",
            role_id("Key Vault Secrets User"),
            principal,
        )
        .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(
        msg.contains("Microsoft.Authorization/roleAssignments/write"),
        "{msg}"
    );
    let r = server
        .armv(
            Method::POST,
            "/providers/Keyless/signingKeys/rotate",
            KEYLESS_API,
            None,
        )
        .await?;
    r.arm_error(403, "AuthorizationFailed");
    // Deleting is still a resource operation.
    let r = server
        .armv(
            Method::DELETE,
            &server.identity_path("rg1", "id1"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn a_resource_group_assignment_applies_only_inside_that_group() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("mine").await?;
    server.create_rg("other").await?;
    let oid = server.admin_object_id().await?;
    let r = server
        .put_assignment(
            &server.rg_path("mine"),
            "4d6f8a0c-1111-4222-8333-444455556666",
            role_id("Owner"),
            &oid,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    drop_admin_roles(&server, &["Owner", "Key Vault Administrator"]).await?;
    let left = server.assignments_of(&server.rg_path("mine"), &oid).await?;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        left[0]["properties"]["scope"],
        json!(server.rg_path("mine"))
    );

    // Inside the group: full control, with any casing of its name.
    server.create_identity("mine", "id1").await?;
    server.create_identity("MINE", "id2").await?;
    let principal = server.create_identity("mine", "id3").await?["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server
        .put_assignment(
            &server.rg_path("mine"),
            "4d6f8a0c-1111-4222-8333-444455556667",
            role_id("Key Vault Secrets User"),
            &principal,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    // Outside: nothing, neither the other group nor the subscription.
    let r = server
        .armv(
            Method::PUT,
            &server.identity_path("other", "id1"),
            MI_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    let msg = r.arm_error(403, "AuthorizationFailed");
    assert!(
        msg.to_lowercase().contains("/resourcegroups/other/"),
        "{msg}"
    );
    let r = server
        .put_assignment(
            &server.sub_path(),
            "4d6f8a0c-1111-4222-8333-444455556668",
            role_id("Key Vault Secrets User"),
            &principal,
        )
        .await?;
    r.arm_error(403, "AuthorizationFailed");
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("third"),
            RG_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    r.arm_error(403, "AuthorizationFailed");
    // The subscription's group list shows only the group the admin can read.
    let r = server
        .armv(
            Method::GET,
            &format!("{}/resourcegroups", server.sub_path()),
            RG_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let names: Vec<&Value> = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["name"])
        .collect();
    assert_eq!(names, [&json!("mine")]);
    // Deleting the group is allowed (Owner on it) and takes the assignment with it.
    let r = server
        .armv(Method::DELETE, &server.rg_path("mine"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server
        .armv(Method::GET, &server.rg_path("other"), RG_API, None)
        .await?;
    r.arm_error(403, "AuthorizationFailed");
    Ok(())
}
