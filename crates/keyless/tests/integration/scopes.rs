//! Role-assignment scopes: one canonical spelling, refused when a segment hides a `/`,
//! removed with the resource they grant rights over (by segment, never by string
//! prefix), and authorisation checked before existence.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{AUTHZ_API, MI_API, RG_API, Server, role_id};

const KV_API: &str = "2023-07-01";

/// The principal id of a fresh identity `name` in group `rg` (created if needed).
async fn principal(server: &Server, rg: &str, name: &str) -> Result<String> {
    server.create_rg(rg).await?;
    let identity = server.create_identity(rg, name).await?;
    Ok(identity["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string())
}

/// The names of `principal`'s assignments visible at `scope`.
async fn names_at(server: &Server, scope: &str, principal: &str) -> Result<Vec<String>> {
    Ok(server
        .assignments_of(scope, principal)
        .await?
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect())
}

/// PUTs an Owner assignment for `principal` at `scope` and expects 201.
async fn owner_at(server: &Server, scope: &str, name: &str, principal: &str) -> Result<Value> {
    let r = server
        .put_assignment(scope, name, role_id("Owner"), principal)
        .await?;
    assert_eq!(r.code(), 201, "PUT at {scope}: {}", r.body);
    Ok(r.body)
}

#[tokio::test]
async fn an_encoded_slash_in_a_scope_is_refused_and_nothing_is_stored() -> Result<()> {
    let server = Server::start(&[]).await?;
    let p = principal(&server, "keep", "holder").await?;
    server.create_rg("rg2").await?;
    let sub = server.sub_path();
    let name = "5a1e0c2d-1111-4222-8333-444455556666";
    for scope in [
        format!("{sub}/%2F/resourceGroups/rg2"),
        format!("{sub}/%2f/resourceGroups/rg2"),
        format!("{sub}/resourceGroups%2Frg2"),
        format!("{sub}/resourceGroups/rg2%2F"),
    ] {
        let r = server
            .put_assignment(&scope, name, role_id("Owner"), &p)
            .await?;
        let msg = r.arm_error(400, "InvalidRoleAssignmentScope");
        assert!(msg.contains("'/'"), "{scope}: {msg}");
        // Reads through such a path are refused the same way.
        let r = server
            .armv(
                Method::GET,
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments"),
                AUTHZ_API,
                None,
            )
            .await?;
        r.arm_error(400, "InvalidRoleAssignmentScope");
    }
    assert_eq!(names_at(&server, &sub, &p).await?, Vec::<String>::new());
    let r = server
        .armv(
            Method::GET,
            &Server::assignment_path(&server.rg_path("rg2"), name),
            AUTHZ_API,
            None,
        )
        .await?;
    r.arm_error(404, "RoleAssignmentNotFound");
    Ok(())
}

#[tokio::test]
async fn keyword_casing_and_empty_segments_are_stored_canonically() -> Result<()> {
    let server = Server::start(&[]).await?;
    let p = principal(&server, "keep", "holder").await?;
    server.create_rg("rg").await?;
    let sub_id = &server.admin.subscription_id;
    let canonical = format!("/subscriptions/{sub_id}/resourceGroups/rg");
    for (scope, name) in [
        (
            format!("/SUBSCRIPTIONS/{}/RESOURCEGROUPS/rg", sub_id.to_uppercase()),
            "6b2f1d3e-1111-4222-8333-444455556661",
        ),
        (
            format!("/subscriptions/{sub_id}//resourcegroups///rg/"),
            "6b2f1d3e-1111-4222-8333-444455556662",
        ),
    ] {
        let r = server
            .put_assignment(&scope, name, role_id("Key Vault Secrets User"), &p)
            .await?;
        if name.ends_with('2') {
            // Same principal, role and (canonical) scope as the first: a duplicate.
            r.arm_error(409, "RoleAssignmentExists");
            continue;
        }
        assert_eq!(r.code(), 201, "{scope}: {}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        assert_eq!(
            id,
            format!("{canonical}/providers/Microsoft.Authorization/roleAssignments/{name}")
        );
        assert_eq!(r.body["properties"]["scope"], json!(canonical));
        // The returned id works as given, for GET and DELETE.
        let r = server
            .arm(Method::GET, &format!("{id}?api-version={AUTHZ_API}"), None)
            .await?;
        assert_eq!(r.code(), 200, "{}", r.body);
        assert_eq!(r.body["id"], json!(id));
        let listed = server.assignments_of(&canonical, &p).await?;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["properties"]["scope"], json!(canonical));
    }
    let id = format!(
        "{canonical}/providers/Microsoft.Authorization/roleAssignments/6b2f1d3e-1111-4222-8333-444455556661"
    );
    let r = server
        .arm(
            Method::DELETE,
            &format!("{id}?api-version={AUTHZ_API}"),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server
        .arm(Method::GET, &format!("{id}?api-version={AUTHZ_API}"), None)
        .await?;
    r.arm_error(404, "RoleAssignmentNotFound");

    // An identity's id as Keyless returns it (Azure's `resourcegroups` spelling) is a
    // scope too, stored canonically.
    let identity = server.create_identity("rg", "target").await?;
    let returned = identity["id"].as_str().unwrap();
    let body = owner_at(
        &server,
        returned,
        "6b2f1d3e-1111-4222-8333-444455556663",
        &p,
    )
    .await?;
    assert_eq!(
        body["properties"]["scope"],
        json!(format!(
            "{canonical}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/target"
        ))
    );
    Ok(())
}

#[tokio::test]
async fn an_owner_assignment_on_a_group_does_not_survive_its_recreation() -> Result<()> {
    let server = Server::start(&[]).await?;
    let p = principal(&server, "keep", "holder").await?;
    server.create_rg("rg2").await?;
    let sub = server.sub_path();
    // Spelled with empty segments and odd casing: still the group's scope.
    owner_at(
        &server,
        &format!("{sub}//RESOURCEGROUPS/RG2/"),
        "7c3a2e4f-1111-4222-8333-444455556661",
        &p,
    )
    .await?;
    let r = server
        .put_assignment(
            &server.rg_path("rg2"),
            "7c3a2e4f-1111-4222-8333-444455556662",
            role_id("Reader"),
            &p,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    assert_eq!(
        names_at(&server, &server.rg_path("rg2"), &p).await?.len(),
        2
    );

    let r = server
        .armv(Method::DELETE, &server.rg_path("rg2"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    server.create_rg("rg2").await?;
    assert_eq!(
        names_at(&server, &server.rg_path("rg2"), &p).await?,
        Vec::<String>::new(),
        "the recreated group starts without the old Owner"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_rg1_leaves_rg10_assignments() -> Result<()> {
    let server = Server::start(&[]).await?;
    let p = principal(&server, "keep", "holder").await?;
    server.create_rg("rg1").await?;
    server.create_rg("rg10").await?;
    owner_at(
        &server,
        &server.rg_path("rg1"),
        "8d4b3f5a-1111-4222-8333-444455556661",
        &p,
    )
    .await?;
    owner_at(
        &server,
        &server.rg_path("rg10"),
        "8d4b3f5a-1111-4222-8333-444455556662",
        &p,
    )
    .await?;
    let r = server
        .armv(Method::DELETE, &server.rg_path("rg1"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(
        names_at(&server, &server.rg_path("rg10"), &p).await?,
        ["8d4b3f5a-1111-4222-8333-444455556662"]
    );
    assert_eq!(
        names_at(&server, &server.sub_path(), &p).await?,
        ["8d4b3f5a-1111-4222-8333-444455556662"]
    );
    Ok(())
}

#[tokio::test]
async fn a_grant_on_an_identity_does_not_apply_to_its_successor() -> Result<()> {
    let server = Server::start(&[]).await?;
    let p = principal(&server, "keep", "holder").await?;
    server.create_rg("rg1").await?;
    server.create_identity("rg1", "id2").await?;
    server.create_identity("rg1", "id20").await?;
    let id2 = server.identity_path("rg1", "id2");
    owner_at(&server, &id2, "9e5c4a6b-1111-4222-8333-444455556661", &p).await?;
    owner_at(
        &server,
        &server.identity_path("rg1", "id20"),
        "9e5c4a6b-1111-4222-8333-444455556662",
        &p,
    )
    .await?;

    let r = server.armv(Method::DELETE, &id2, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    server.create_identity("rg1", "id2").await?;
    assert_eq!(
        names_at(&server, &id2, &p).await?,
        Vec::<String>::new(),
        "the new id2 starts without the old grant"
    );
    assert_eq!(
        names_at(&server, &server.rg_path("rg1"), &p).await?,
        ["9e5c4a6b-1111-4222-8333-444455556662"],
        "id20's grant stays"
    );
    Ok(())
}

#[tokio::test]
async fn a_grant_on_a_vault_does_not_apply_to_its_successor() -> Result<()> {
    let server = Server::start(&[]).await?;
    let p = principal(&server, "keep", "holder").await?;
    server.create_rg("rg1").await?;
    let vault = |name: &str| {
        format!(
            "{}/providers/Microsoft.KeyVault/vaults/{name}",
            server.rg_path("rg1")
        )
    };
    for name in ["kv-one", "kv-one2"] {
        let r = server
            .armv(
                Method::PUT,
                &vault(name),
                KV_API,
                Some(json!({"location": "westeurope"})),
            )
            .await?;
        assert_eq!(r.code(), 201, "{}", r.body);
    }
    owner_at(
        &server,
        &vault("kv-one"),
        "af6d5b7c-1111-4222-8333-444455556661",
        &p,
    )
    .await?;
    owner_at(
        &server,
        &vault("kv-one2"),
        "af6d5b7c-1111-4222-8333-444455556662",
        &p,
    )
    .await?;

    let r = server
        .armv(Method::DELETE, &vault("kv-one"), KV_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server
        .armv(
            Method::PUT,
            &vault("kv-one"),
            KV_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    assert_eq!(
        names_at(&server, &vault("kv-one"), &p).await?,
        Vec::<String>::new(),
        "the new vault starts without the old grant"
    );
    assert_eq!(
        names_at(&server, &server.rg_path("rg1"), &p).await?,
        ["af6d5b7c-1111-4222-8333-444455556662"],
        "kv-one2's grant stays"
    );
    Ok(())
}

#[tokio::test]
async fn role_paths_check_rights_before_existence() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("exists").await?;
    let list = |rg: &str, what: &str| {
        format!(
            "{}/providers/Microsoft.Authorization/{what}",
            server.rg_path(rg)
        )
    };
    // With rights, a missing group is a missing group.
    let r = server
        .armv(
            Method::GET,
            &list("missing", "roleAssignments"),
            AUTHZ_API,
            None,
        )
        .await?;
    r.arm_error(404, "ResourceGroupNotFound");

    // Without any: 403 whether or not the group exists, for every role operation.
    let oid = server.admin_object_id().await?;
    let mut mine = server.assignments_of(&server.sub_path(), &oid).await?;
    // The root Owner goes last: it is what allows the other deletions.
    mine.sort_by_key(|a| a["properties"]["scope"] == json!("/"));
    for a in &mine {
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
    let name = "b07e6c8d-1111-4222-8333-444455556666";
    for rg in ["missing", "exists"] {
        for (method, path, action) in [
            (
                Method::GET,
                list(rg, "roleAssignments"),
                "roleAssignments/read",
            ),
            (
                Method::GET,
                list(rg, "roleDefinitions"),
                "roleDefinitions/read",
            ),
            (
                Method::GET,
                Server::assignment_path(&server.rg_path(rg), name),
                "roleAssignments/read",
            ),
            (
                Method::DELETE,
                Server::assignment_path(&server.rg_path(rg), name),
                "roleAssignments/delete",
            ),
        ] {
            let r = server.armv(method.clone(), &path, AUTHZ_API, None).await?;
            let msg = r.arm_error(403, "AuthorizationFailed");
            assert!(msg.contains(action), "{method} {path}: {msg}");
        }
        let r = server
            .put_assignment(&server.rg_path(rg), name, role_id("Owner"), &oid)
            .await?;
        let msg = r.arm_error(403, "AuthorizationFailed");
        assert!(msg.contains("roleAssignments/write"), "{rg}: {msg}");
    }
    Ok(())
}
