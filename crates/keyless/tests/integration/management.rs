//! The ARM-compatible management API: happy paths of every resource, and the
//! validation errors users see.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{AUTHZ_API, BUILTIN_ROLES, MI_API, RG_API, SUB_API, Server, is_guid, role_id};

const ISSUER: &str = "https://oidc.example.com/cluster-1";
const AUDIENCE: &str = "api://AzureADTokenExchange";

fn names(list: &Value) -> Vec<String> {
    let mut n: Vec<String> = list["value"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn tenants_and_subscriptions() -> Result<()> {
    let server = Server::start(&[]).await?;
    let a = &server.admin;
    let r = server.armv(Method::GET, "/tenants", SUB_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["value"][0]["tenantId"], json!(a.tenant_id));
    assert_eq!(
        r.body["value"][0]["id"],
        json!(format!("/tenants/{}", a.tenant_id))
    );

    let r = server
        .armv(Method::GET, "/subscriptions", SUB_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let subs = r.body["value"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{}", r.body);
    assert_eq!(subs[0]["subscriptionId"], json!(a.subscription_id));

    let r = server
        .armv(Method::GET, &server.sub_path(), SUB_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["id"], json!(server.sub_path()));
    assert_eq!(r.body["subscriptionId"], json!(a.subscription_id));
    assert_eq!(r.body["tenantId"], json!(a.tenant_id));
    assert_eq!(r.body["state"], json!("Enabled"));

    let unknown = uuid::Uuid::new_v4();
    let r = server
        .armv(
            Method::GET,
            &format!("/subscriptions/{unknown}"),
            SUB_API,
            None,
        )
        .await?;
    let msg = r.arm_error(404, "SubscriptionNotFound");
    assert!(msg.contains(&unknown.to_string()), "{msg}");
    Ok(())
}

#[tokio::test]
async fn resource_group_lifecycle() -> Result<()> {
    let server = Server::start(&[]).await?;
    let path = server.rg_path("rg1");

    let r = server
        .armv(
            Method::PUT,
            &path,
            RG_API,
            Some(json!({"location": "westeurope", "tags": {"env": "dev"}})),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    assert_eq!(
        r.body,
        json!({
            "id": path,
            "name": "rg1",
            "type": "Microsoft.Resources/resourceGroups",
            "location": "westeurope",
            "tags": {"env": "dev"},
            "properties": {"provisioningState": "Succeeded"},
        })
    );

    let r = server
        .armv(
            Method::PUT,
            &path,
            RG_API,
            Some(json!({"location": "westeurope", "tags": {"env": "prod", "team": "a"}})),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!({"env": "prod", "team": "a"}));

    let r = server.armv(Method::GET, &path, RG_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!({"env": "prod", "team": "a"}));
    assert_eq!(r.body["location"], json!("westeurope"));
    let at_default_version = r.body.clone();

    // A newer api-version is accepted and answers with the same resource.
    let r = server.armv(Method::GET, &path, "2024-03-01", None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body, at_default_version);

    server.create_rg("rg2").await?;
    let r = server
        .armv(
            Method::GET,
            &format!("{}/resourcegroups", server.sub_path()),
            RG_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(names(&r.body), ["rg1", "rg2"]);

    let r = server.armv(Method::HEAD, &path, RG_API, None).await?;
    assert_eq!(r.code(), 204);
    let r = server
        .armv(Method::HEAD, &server.rg_path("nope"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 404);

    let r = server.armv(Method::DELETE, &path, RG_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server.armv(Method::DELETE, &path, RG_API, None).await?;
    assert_eq!(r.code(), 204, "{}", r.body);
    let r = server.armv(Method::GET, &path, RG_API, None).await?;
    let msg = r.arm_error(404, "ResourceGroupNotFound");
    assert!(msg.contains("rg1"), "{msg}");
    let r = server.armv(Method::HEAD, &path, RG_API, None).await?;
    assert_eq!(r.code(), 404);

    // Location is required.
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("rg3"),
            RG_API,
            Some(json!({"tags": {}})),
        )
        .await?;
    r.arm_error(400, "LocationRequired");
    // Methods the resource does not have.
    let r = server
        .armv(
            Method::POST,
            &server.rg_path("rg2"),
            RG_API,
            Some(json!({})),
        )
        .await?;
    r.arm_error(405, "MethodNotAllowed");
    Ok(())
}

#[tokio::test]
async fn identity_lifecycle() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    server.create_rg("rg2").await?;
    let path = server.identity_path("rg1", "id1");

    let r = server
        .armv(
            Method::PUT,
            &path,
            MI_API,
            Some(json!({"location": "westeurope", "tags": {"app": "web"}})),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let created = r.body.clone();
    assert_eq!(created["name"], json!("id1"));
    assert_eq!(
        created["type"],
        json!("Microsoft.ManagedIdentity/userAssignedIdentities")
    );
    assert_eq!(created["location"], json!("westeurope"));
    assert_eq!(created["tags"], json!({"app": "web"}));
    assert!(
        created["id"].as_str().unwrap().eq_ignore_ascii_case(&path),
        "{}",
        created["id"]
    );
    let props = &created["properties"];
    let client_id = props["clientId"].as_str().unwrap();
    let principal_id = props["principalId"].as_str().unwrap();
    assert!(is_guid(client_id), "{client_id}");
    assert!(is_guid(principal_id), "{principal_id}");
    assert_ne!(client_id, principal_id);
    assert_eq!(props["tenantId"], json!(server.admin.tenant_id));

    // PUT again: 200, same ids, new tags.
    let r = server
        .armv(
            Method::PUT,
            &path,
            MI_API,
            Some(json!({"location": "westeurope", "tags": {"app": "api"}})),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"]["clientId"], json!(client_id));
    assert_eq!(r.body["properties"]["principalId"], json!(principal_id));
    assert_eq!(r.body["tags"], json!({"app": "api"}));

    // PATCH changes tags only; the location cannot move.
    let r = server
        .armv(
            Method::PATCH,
            &path,
            MI_API,
            Some(json!({"tags": {"x": "y"}})),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!({"x": "y"}));
    assert_eq!(r.body["location"], json!("westeurope"));
    assert_eq!(r.body["properties"]["clientId"], json!(client_id));
    let r = server
        .armv(
            Method::PATCH,
            &path,
            MI_API,
            Some(json!({"location": "eastus"})),
        )
        .await?;
    r.arm_error(400, "LocationNotAvailable");

    let r = server.armv(Method::GET, &path, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!({"x": "y"}));
    assert_eq!(r.body["properties"]["principalId"], json!(principal_id));

    // Lists: per group and per subscription.
    server.create_identity("rg1", "id2").await?;
    server.create_identity("rg2", "id3").await?;
    let list_rg = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
        server.rg_path("rg1")
    );
    let r = server.armv(Method::GET, &list_rg, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(names(&r.body), ["id1", "id2"]);
    let list_sub = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
        server.sub_path()
    );
    let r = server.armv(Method::GET, &list_sub, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(names(&r.body), ["id1", "id2", "id3"]);

    // The newer api-version answers with the same resource.
    let at_default_version = server.armv(Method::GET, &path, MI_API, None).await?;
    assert_eq!(
        at_default_version.code(),
        200,
        "{}",
        at_default_version.body
    );
    let r = server.armv(Method::GET, &path, "2024-11-30", None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body, at_default_version.body);
    assert_eq!(r.body["properties"]["clientId"], json!(client_id));

    // Delete: 200, then 204, then 404.
    let r = server.armv(Method::DELETE, &path, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server.armv(Method::DELETE, &path, MI_API, None).await?;
    assert_eq!(r.code(), 204, "{}", r.body);
    let r = server.armv(Method::GET, &path, MI_API, None).await?;
    let msg = r.arm_error(404, "ResourceNotFound");
    assert!(msg.contains("id1") && msg.contains("rg1"), "{msg}");
    let r = server.armv(Method::GET, &list_rg, MI_API, None).await?;
    assert_eq!(names(&r.body), ["id2"]);

    // A recreated identity gets new ids.
    let again = server.create_identity("rg1", "id1").await?;
    assert_ne!(again["properties"]["clientId"], json!(client_id));
    assert_ne!(again["properties"]["principalId"], json!(principal_id));
    Ok(())
}

#[tokio::test]
async fn federated_credential_lifecycle() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    server.create_identity("rg1", "id1").await?;
    let path = server.fic_path("rg1", "id1", "fic1");

    let props = json!({"issuer": ISSUER, "subject": "system:serviceaccount:default:app", "audiences": [AUDIENCE]});
    let r = server.put_fic("rg1", "id1", "fic1", props.clone()).await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    assert_eq!(r.body["name"], json!("fic1"));
    assert_eq!(
        r.body["type"],
        json!("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials")
    );
    assert!(
        r.body["id"].as_str().unwrap().eq_ignore_ascii_case(&path),
        "{}",
        r.body["id"]
    );
    assert_eq!(r.body["properties"], props);

    // Update: 200 with the new subject. Echoing id/name/type back is accepted.
    let mut updated = r.body.clone();
    updated["properties"]["subject"] = json!("system:serviceaccount:default:other");
    let r = server
        .armv(Method::PUT, &path, MI_API, Some(updated.clone()))
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"], updated["properties"]);

    let r = server.armv(Method::GET, &path, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"], updated["properties"]);

    // A second credential with a claims-matching expression.
    let expr = json!({"issuer": "https://token.actions.githubusercontent.com", "audiences": [AUDIENCE],
        "claimsMatchingExpression": {"value": "claims['sub'] matches 'repo:org/*'", "languageVersion": 1}});
    let r = server
        .put_fic("rg1", "id1", "gh-actions", expr.clone())
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    assert_eq!(r.body["properties"], expr);
    assert!(r.body["properties"].get("subject").is_none());

    let list = format!(
        "{}/federatedIdentityCredentials",
        server.identity_path("rg1", "id1")
    );
    let r = server.armv(Method::GET, &list, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(names(&r.body), ["fic1", "gh-actions"]);

    let r = server.armv(Method::DELETE, &path, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server.armv(Method::DELETE, &path, MI_API, None).await?;
    assert_eq!(r.code(), 204, "{}", r.body);
    let r = server.armv(Method::GET, &path, MI_API, None).await?;
    let msg = r.arm_error(404, "NotFound");
    assert!(msg.contains("fic1"), "{msg}");
    let r = server.armv(Method::GET, &list, MI_API, None).await?;
    assert_eq!(names(&r.body), ["gh-actions"]);

    // The freed issuer+subject pair can be used again.
    let r = server
        .put_fic("rg1", "id1", "fic2", updated["properties"].clone())
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    // Deleting the identity removes its credentials.
    let r = server
        .armv(
            Method::DELETE,
            &server.identity_path("rg1", "id1"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200);
    server.create_identity("rg1", "id1").await?;
    let r = server.armv(Method::GET, &list, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(names(&r.body), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn names_compare_case_insensitively_and_keep_their_casing() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("MyGroup").await?;
    let created = server.create_identity("MyGroup", "MyIdentity").await?;
    let r = server
        .put_fic(
            "MyGroup",
            "MyIdentity",
            "MyCred",
            json!({"issuer": ISSUER, "subject": "s", "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    let r = server
        .armv(Method::GET, &server.rg_path("mygroup"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["name"], json!("MyGroup"));

    // Keywords of the path are case-insensitive too.
    let lower = format!(
        "/SUBSCRIPTIONS/{}/resourcegroups/MYGROUP/providers/microsoft.managedidentity/userassignedidentities/myidentity",
        server.admin.subscription_id.to_uppercase()
    );
    let r = server.armv(Method::GET, &lower, MI_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["name"], json!("MyIdentity"));
    assert_eq!(r.body["properties"], created["properties"]);

    let r = server
        .armv(
            Method::GET,
            &format!("{lower}/FederatedIdentityCredentials/MYCRED"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["name"], json!("MyCred"));

    // A PUT with other casing updates the same object (200, ids kept).
    let r = server
        .armv(
            Method::PUT,
            &server.identity_path("mygroup", "MYIDENTITY"),
            MI_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"], created["properties"]);
    let r = server
        .put_fic(
            "MYGROUP",
            "myidentity",
            "mycred",
            json!({"issuer": ISSUER, "subject": "s2", "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/federatedIdentityCredentials",
                server.identity_path("MyGroup", "MyIdentity")
            ),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);

    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("MYGROUP"),
            RG_API,
            Some(json!({"location": "westeurope"})),
        )
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
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["value"][0]["name"], json!("MyGroup"));
    Ok(())
}

#[tokio::test]
async fn role_definitions_are_the_builtins_with_their_real_ids() -> Result<()> {
    let server = Server::start(&[]).await?;
    let defs = format!(
        "{}/providers/Microsoft.Authorization/roleDefinitions",
        server.sub_path()
    );
    let r = server.armv(Method::GET, &defs, AUTHZ_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let list = r.body["value"].as_array().unwrap();
    assert_eq!(list.len(), BUILTIN_ROLES.len(), "{}", r.body);
    for (name, id) in BUILTIN_ROLES {
        let d = list
            .iter()
            .find(|d| d["properties"]["roleName"] == json!(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(d["name"], json!(id), "{name}");
        assert_eq!(d["id"], json!(format!("{defs}/{id}")), "{name}");
        assert_eq!(d["type"], json!("Microsoft.Authorization/roleDefinitions"));
        assert_eq!(d["properties"]["type"], json!("BuiltInRole"));
    }

    let r = server
        .armv(
            Method::GET,
            &format!("{defs}?$filter=roleName%20eq%20'Key%20Vault%20Secrets%20User'"),
            AUTHZ_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let list = r.body["value"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.body);
    let d = &list[0];
    assert_eq!(d["name"], json!(role_id("Key Vault Secrets User")));
    assert_eq!(
        d["properties"]["permissions"][0]["dataActions"],
        json!([
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
        ])
    );

    let r = server
        .armv(
            Method::GET,
            &format!("{defs}?$filter=roleName%20eq%20'No%20Such%20Role'"),
            AUTHZ_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["value"], json!([]));

    // One by id, at subscription and resource group scope.
    let id = role_id("Key Vault Administrator");
    let r = server
        .armv(Method::GET, &format!("{defs}/{id}"), AUTHZ_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(
        r.body["properties"]["roleName"],
        json!("Key Vault Administrator")
    );
    server.create_rg("rg1").await?;
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/providers/Microsoft.Authorization/roleDefinitions/{id}",
                server.rg_path("rg1")
            ),
            AUTHZ_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let unknown = uuid::Uuid::new_v4();
    let r = server
        .armv(Method::GET, &format!("{defs}/{unknown}"), AUTHZ_API, None)
        .await?;
    r.arm_error(404, "RoleDefinitionDoesNotExist");
    Ok(())
}

#[tokio::test]
async fn role_assignment_lifecycle_and_errors() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    let identity = server.create_identity("rg1", "id1").await?;
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    let client_id = identity["properties"]["clientId"].as_str().unwrap();
    let scope = server.rg_path("rg1");
    let name = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let user = role_id("Key Vault Secrets User");
    let path = Server::assignment_path(&scope, name);

    let r = server.put_assignment(&scope, name, user, principal).await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let a = r.body.clone();
    assert_eq!(a["id"], json!(path));
    assert_eq!(a["name"], json!(name));
    assert_eq!(a["type"], json!("Microsoft.Authorization/roleAssignments"));
    assert_eq!(a["properties"]["principalId"], json!(principal));
    assert_eq!(a["properties"]["principalType"], json!("ServicePrincipal"));
    assert_eq!(a["properties"]["scope"], json!(scope));
    assert_eq!(
        a["properties"]["roleDefinitionId"],
        json!(format!(
            "{}/providers/Microsoft.Authorization/roleDefinitions/{user}",
            server.sub_path()
        ))
    );

    // The same PUT again is idempotent.
    let r = server.put_assignment(&scope, name, user, principal).await?;
    assert!(r.code() == 200 || r.code() == 201, "{}", r.body);
    assert_eq!(r.body["name"], json!(name));

    let r = server.armv(Method::GET, &path, AUTHZ_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"], a["properties"]);

    // Listed at its scope, and at the subscription (assignments below are included).
    let list = format!("{scope}/providers/Microsoft.Authorization/roleAssignments");
    let r = server.armv(Method::GET, &list, AUTHZ_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert!(
        r.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == json!(name)),
        "{}",
        r.body
    );
    let mine = server.assignments_of(&server.sub_path(), principal).await?;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["name"], json!(name));
    // The admin's assignments are not this principal's.
    let admin = server.admin_object_id().await?;
    let theirs = server.assignments_of(&server.sub_path(), &admin).await?;
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    assert!(
        theirs
            .iter()
            .all(|x| x["properties"]["principalId"] == json!(admin))
    );

    // The same role for the same principal at the same scope under another name.
    let r = server
        .put_assignment(
            &scope,
            "3f2504e0-4f89-41d3-9a0c-0305e82c3302",
            user,
            principal,
        )
        .await?;
    r.arm_error(409, "RoleAssignmentExists");
    // The same name for something else.
    let r = server
        .put_assignment(&scope, name, role_id("Reader"), principal)
        .await?;
    r.arm_error(409, "RoleAssignmentUpdateNotPermitted");

    // Unknown role, unknown principal, the clientId instead of the principalId, bad ids.
    let other = "3f2504e0-4f89-41d3-9a0c-0305e82c3303";
    let r = server
        .put_assignment(&scope, other, &uuid::Uuid::new_v4().to_string(), principal)
        .await?;
    r.arm_error(400, "RoleDefinitionDoesNotExist");
    let stranger = uuid::Uuid::new_v4().to_string();
    let r = server
        .put_assignment(&scope, other, user, &stranger)
        .await?;
    let msg = r.arm_error(400, "PrincipalNotFound");
    assert!(msg.contains(&stranger), "{msg}");
    let r = server
        .put_assignment(&scope, other, user, client_id)
        .await?;
    let msg = r.arm_error(400, "PrincipalNotFound");
    assert!(msg.contains("principalId"), "{msg}");
    let r = server
        .put_assignment(&scope, other, user, "not-a-guid")
        .await?;
    r.arm_error(400, "InvalidPrincipalId");
    let r = server
        .put_assignment(&scope, "not-a-guid", user, principal)
        .await?;
    r.arm_error(400, "InvalidRoleAssignmentId");
    let r = server
        .armv(
            Method::PUT,
            &Server::assignment_path(&scope, other),
            AUTHZ_API,
            Some(json!({"properties": {"principalId": principal}})),
        )
        .await?;
    r.arm_error(400, "InvalidRoleDefinitionId");
    // A scope whose group does not exist.
    let r = server
        .put_assignment(&server.rg_path("nope"), other, user, principal)
        .await?;
    r.arm_error(404, "ResourceGroupNotFound");

    // Delete: 200 with the assignment, then 204; GET is 404.
    let r = server.armv(Method::DELETE, &path, AUTHZ_API, None).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["name"], json!(name));
    let r = server.armv(Method::DELETE, &path, AUTHZ_API, None).await?;
    assert_eq!(r.code(), 204, "{}", r.body);
    let r = server.armv(Method::GET, &path, AUTHZ_API, None).await?;
    r.arm_error(404, "RoleAssignmentNotFound");
    assert!(
        server
            .assignments_of(&server.sub_path(), principal)
            .await?
            .is_empty()
    );

    // Assignments at subscription scope and on the identity itself work as well.
    let r = server
        .put_assignment(
            &server.sub_path(),
            other,
            role_id("Key Vault Reader"),
            principal,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let id_scope = server.identity_path("rg1", "id1");
    let r = server
        .put_assignment(
            &id_scope,
            "3f2504e0-4f89-41d3-9a0c-0305e82c3304",
            role_id("Reader"),
            principal,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    assert_eq!(r.body["properties"]["scope"], json!(id_scope));
    assert_eq!(
        server
            .assignments_of(&server.sub_path(), principal)
            .await?
            .len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_resource_group_removes_what_is_in_it() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    server.create_rg("keep").await?;
    let identity = server.create_identity("rg1", "id1").await?;
    let principal = identity["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let kept = server.create_identity("keep", "id1").await?;
    let r = server
        .put_fic(
            "rg1",
            "id1",
            "fic1",
            json!({"issuer": ISSUER, "subject": "s", "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 201);
    let r = server
        .put_assignment(
            &server.sub_path(),
            "5b0c8f4e-1111-4222-8333-444455556666",
            role_id("Key Vault Secrets User"),
            &principal,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let r = server
        .put_assignment(
            &server.rg_path("rg1"),
            "5b0c8f4e-1111-4222-8333-444455556667",
            role_id("Reader"),
            kept["properties"]["principalId"].as_str().unwrap(),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    let r = server
        .armv(Method::DELETE, &server.rg_path("rg1"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);

    let r = server
        .armv(
            Method::GET,
            &server.identity_path("rg1", "id1"),
            MI_API,
            None,
        )
        .await?;
    r.arm_error(404, "ResourceGroupNotFound");
    // The identity's role assignments went with it, as did assignments in the group.
    assert!(
        server
            .assignments_of(&server.sub_path(), &principal)
            .await?
            .is_empty()
    );
    let kept_principal = kept["properties"]["principalId"].as_str().unwrap();
    assert!(
        server
            .assignments_of(&server.sub_path(), kept_principal)
            .await?
            .is_empty()
    );
    // The other group is untouched.
    let r = server
        .armv(
            Method::GET,
            &server.identity_path("keep", "id1"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"], kept["properties"]);
    let list_sub = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
        server.sub_path()
    );
    let r = server.armv(Method::GET, &list_sub, MI_API, None).await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);

    // A new group of the same name starts empty.
    server.create_rg("rg1").await?;
    let r = server
        .armv(
            Method::GET,
            &server.identity_path("rg1", "id1"),
            MI_API,
            None,
        )
        .await?;
    r.arm_error(404, "ResourceNotFound");
    let again = server.create_identity("rg1", "id1").await?;
    assert_ne!(again["properties"]["principalId"], json!(principal));
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/federatedIdentityCredentials",
                server.identity_path("rg1", "id1")
            ),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.body["value"], json!([]), "{}", r.body);
    // The old identity's principal is gone from the directory.
    let r = server
        .put_assignment(
            &server.sub_path(),
            "5b0c8f4e-1111-4222-8333-444455556668",
            role_id("Reader"),
            &principal,
        )
        .await?;
    r.arm_error(400, "PrincipalNotFound");
    Ok(())
}

/// A path segment is decoded on its own: `&` and `=` in it are not query syntax, `+`
/// is a plus, escapes decode as UTF-8 and bytes that are not UTF-8 are refused.
#[tokio::test]
async fn path_segments_decode_exactly() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("other").await?;
    let loc = json!({"location": "westeurope"});

    // The whole segment is the name, so these never reach the group 'other'.
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let body = (method == Method::PUT).then(|| loc.clone());
        let r = server
            .armv(method.clone(), &server.rg_path("rg&x=other"), RG_API, body)
            .await?;
        let msg = r.arm_error(400, "InvalidResourceGroupName");
        assert!(msg.contains("'rg&x=other'"), "{method}: {msg}");
    }
    let r = server
        .armv(Method::GET, &server.rg_path("other"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "'other' is untouched: {}", r.body);
    assert_eq!(r.body["name"], "other");

    // Escapes name the same group as the literal characters.
    server.create_rg("a(1)").await?;
    let r = server
        .armv(Method::GET, &server.rg_path("a%281%29"), RG_API, None)
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["name"], "a(1)");

    for (segment, shown) in [("a+b", "'a+b'"), ("100%25", "'100%'"), ("a%2Fb", "'a/b'")] {
        let r = server
            .armv(Method::GET, &server.rg_path(segment), RG_API, None)
            .await?;
        let msg = r.arm_error(400, "InvalidResourceGroupName");
        assert!(msg.contains(shown), "{segment}: {msg}");
    }
    let r = server
        .armv(Method::GET, &server.rg_path("caf%C3%A9"), RG_API, None)
        .await?;
    let msg = r.arm_error(400, "InvalidResourceGroupName");
    assert!(msg.contains("caf\\u{e9}"), "{msg}");

    let r = server
        .armv(Method::GET, &server.rg_path("rg%FF"), RG_API, None)
        .await?;
    let msg = r.arm_error(400, "InvalidRequestUri");
    assert!(msg.contains("rg%FF"), "{msg}");
    Ok(())
}

#[tokio::test]
async fn name_validation() -> Result<()> {
    let server = Server::start(&[]).await?;
    let loc = json!({"location": "westeurope"});

    for bad in [
        "a".repeat(91),
        "ends.".to_string(),
        "has%20space".to_string(),
        "star*".to_string(),
        "caf%C3%A9".to_string(),
        "a%2Fb".to_string(),
    ] {
        let r = server
            .armv(
                Method::PUT,
                &server.rg_path(&bad),
                RG_API,
                Some(loc.clone()),
            )
            .await?;
        let msg = r.arm_error(400, "InvalidResourceGroupName");
        assert!(msg.contains("1-90"), "{bad}: {msg}");
    }
    let ok90 = "a".repeat(90);
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path(&ok90),
            RG_API,
            Some(loc.clone()),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("a-b_c.(d)"),
            RG_API,
            Some(loc.clone()),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    server.create_rg("rg1").await?;
    for bad in [
        "ab".to_string(),
        "-abc".to_string(),
        "_abc".to_string(),
        "a.bc".to_string(),
        "a".repeat(129),
    ] {
        let r = server
            .armv(
                Method::PUT,
                &server.identity_path("rg1", &bad),
                MI_API,
                Some(loc.clone()),
            )
            .await?;
        let msg = r.arm_error(400, "InvalidResourceName");
        assert!(msg.contains("3-128"), "{bad}: {msg}");
    }
    for ok in ["abc".to_string(), "a".repeat(128), "9_a-b".to_string()] {
        let r = server
            .armv(
                Method::PUT,
                &server.identity_path("rg1", &ok),
                MI_API,
                Some(loc.clone()),
            )
            .await?;
        assert_eq!(r.code(), 201, "{ok}: {}", r.body);
    }

    let fic = json!({"issuer": ISSUER, "subject": "s", "audiences": [AUDIENCE]});
    for bad in [
        "ab".to_string(),
        "-abc".to_string(),
        "_abc".to_string(),
        "a.bc".to_string(),
        "a".repeat(121),
    ] {
        let r = server.put_fic("rg1", "abc", &bad, fic.clone()).await?;
        let msg = r.arm_error(400, "BadRequest");
        assert!(
            msg.contains("^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$"),
            "{bad}: {msg}"
        );
    }
    let r = server
        .put_fic("rg1", "abc", &"a".repeat(120), fic.clone())
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    // Nothing invalid was stored.
    let r = server
        .armv(
            Method::GET,
            &format!("{}/resourcegroups", server.sub_path()),
            RG_API,
            None,
        )
        .await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn federated_credential_validation() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    server.create_identity("rg1", "id1").await?;
    let good = json!({"issuer": ISSUER, "subject": "sub-a", "audiences": [AUDIENCE]});
    let r = server.put_fic("rg1", "id1", "first", good.clone()).await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    // The same issuer+subject under another name.
    let r = server.put_fic("rg1", "id1", "second", good.clone()).await?;
    let msg = r.arm_error(400, "BadRequest");
    assert!(
        msg.contains("already exists") && msg.contains("sub-a"),
        "{msg}"
    );
    // Subject comparison is case-sensitive: another casing is another subject.
    let r = server
        .put_fic(
            "rg1",
            "id1",
            "second",
            json!({"issuer": ISSUER, "subject": "SUB-A", "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    // Updating `second` onto `first`'s pair is refused too, and `second` is unchanged.
    let r = server.put_fic("rg1", "id1", "second", good.clone()).await?;
    r.arm_error(400, "BadRequest");
    let r = server
        .armv(
            Method::GET,
            &server.fic_path("rg1", "id1", "second"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.body["properties"]["subject"], json!("SUB-A"));

    let long = "s".repeat(601);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"issuer": ISSUER, "subject": "x", "audiences": ["a", "b"]}),
            "exactly one",
        ),
        (
            json!({"issuer": ISSUER, "subject": "x", "audiences": []}),
            "exactly one",
        ),
        (json!({"issuer": ISSUER, "subject": "x"}), "audiences"),
        (
            json!({"issuer": ISSUER, "subject": "x", "audiences": "a"}),
            "array",
        ),
        (
            json!({"issuer": "http://oidc.example.com", "subject": "x", "audiences": [AUDIENCE]}),
            "https",
        ),
        (
            json!({"issuer": "oidc.example.com", "subject": "x", "audiences": [AUDIENCE]}),
            "https",
        ),
        (
            json!({"issuer": "https://", "subject": "x", "audiences": [AUDIENCE]}),
            "invalid",
        ),
        (json!({"subject": "x", "audiences": [AUDIENCE]}), "issuer"),
        (
            json!({"issuer": ISSUER, "audiences": [AUDIENCE]}),
            "subject",
        ),
        (
            json!({"issuer": ISSUER, "subject": "", "audiences": [AUDIENCE]}),
            "empty",
        ),
        (
            json!({"issuer": ISSUER, "subject": long, "audiences": [AUDIENCE]}),
            "600",
        ),
        (
            json!({"issuer": format!("https://i.example/{}", "p".repeat(600)), "subject": "x", "audiences": [AUDIENCE]}),
            "600",
        ),
        (
            json!({"issuer": ISSUER, "subject": "x", "audiences": ["a".repeat(601)]}),
            "600",
        ),
        (
            json!({"issuer": ISSUER, "subject": 5, "audiences": [AUDIENCE]}),
            "string",
        ),
        (
            json!({"issuer": ISSUER, "subject": "x", "audiences": [AUDIENCE],
            "claimsMatchingExpression": {"value": "claims['sub'] eq 'x'", "languageVersion": 1}}),
            "not both",
        ),
        (
            json!({"issuer": ISSUER, "audiences": [AUDIENCE],
            "claimsMatchingExpression": {"value": "claims['sub'] like 'x'", "languageVersion": 1}}),
            "position",
        ),
        (
            json!({"issuer": ISSUER, "audiences": [AUDIENCE],
            "claimsMatchingExpression": {"value": "claims['sub'] eq 'x'", "languageVersion": 2}}),
            "languageVersion",
        ),
    ];
    for (props, needle) in cases {
        let r = server.put_fic("rg1", "id1", "third", props.clone()).await?;
        let msg = r.arm_error(400, "BadRequest");
        assert!(msg.contains(needle), "{props}: {msg}");
    }
    // No properties at all.
    let r = server
        .armv(
            Method::PUT,
            &server.fic_path("rg1", "id1", "third"),
            MI_API,
            Some(json!({})),
        )
        .await?;
    r.arm_error(400, "BadRequest");
    // 600 characters is allowed.
    let r = server
        .put_fic(
            "rg1",
            "id1",
            "third",
            json!({"issuer": ISSUER, "subject": "s".repeat(600), "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    // Nothing invalid was stored.
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/federatedIdentityCredentials",
                server.identity_path("rg1", "id1")
            ),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(names(&r.body), ["first", "second", "third"]);

    // Missing parents.
    let r = server.put_fic("nope", "id1", "cred", good.clone()).await?;
    r.arm_error(404, "ResourceGroupNotFound");
    let r = server.put_fic("rg1", "nope", "cred", good.clone()).await?;
    let msg = r.arm_error(404, "ResourceNotFound");
    assert!(msg.contains("nope"), "{msg}");
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/federatedIdentityCredentials",
                server.identity_path("rg1", "nope")
            ),
            MI_API,
            None,
        )
        .await?;
    r.arm_error(404, "ResourceNotFound");
    let r = server
        .armv(
            Method::PUT,
            &server.identity_path("nope", "id1"),
            MI_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    r.arm_error(404, "ResourceGroupNotFound");
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                server.rg_path("nope")
            ),
            MI_API,
            None,
        )
        .await?;
    r.arm_error(404, "ResourceGroupNotFound");
    Ok(())
}

#[tokio::test]
async fn federated_credential_limit() -> Result<()> {
    let server = Server::start(&["--max-federated-credentials", "20"]).await?;
    server.create_rg("rg1").await?;
    server.create_identity("rg1", "id1").await?;
    server.create_identity("rg1", "id2").await?;
    for i in 1..=20 {
        let r = server
            .put_fic(
                "rg1",
                "id1",
                &format!("cred-{i:02}"),
                json!({"issuer": ISSUER, "subject": format!("s{i}"), "audiences": [AUDIENCE]}),
            )
            .await?;
        assert_eq!(r.code(), 201, "credential {i}: {}", r.body);
    }
    let r = server
        .put_fic(
            "rg1",
            "id1",
            "cred-21",
            json!({"issuer": ISSUER, "subject": "s21", "audiences": [AUDIENCE]}),
        )
        .await?;
    let msg = r.arm_error(400, "BadRequest");
    assert!(msg.contains("20"), "{msg}");
    // Updating one of the 20 is still allowed; another identity has its own budget.
    let r = server
        .put_fic(
            "rg1",
            "id1",
            "cred-01",
            json!({"issuer": ISSUER, "subject": "s1-new", "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server
        .put_fic(
            "rg1",
            "id2",
            "cred-21",
            json!({"issuer": ISSUER, "subject": "s21", "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/federatedIdentityCredentials",
                server.identity_path("rg1", "id1")
            ),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 20);
    // Freeing a slot makes room.
    let r = server
        .armv(
            Method::DELETE,
            &server.fic_path("rg1", "id1", "cred-05"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200);
    let r = server
        .put_fic(
            "rg1",
            "id1",
            "cred-21",
            json!({"issuer": ISSUER, "subject": "s21", "audiences": [AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn concurrent_credential_writes_lose_nothing() -> Result<()> {
    let server = std::sync::Arc::new(Server::start(&["--max-federated-credentials", "20"]).await?);
    server.create_rg("rg1").await?;
    server.create_identity("rg1", "id1").await?;
    server.admin_token().await?;
    // 30 writers race for 20 slots: exactly 20 win, the rest get the limit error.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let s = server.clone();
        tasks.push(tokio::spawn(async move {
            s.put_fic(
                "rg1",
                "id1",
                &format!("race-{i:02}"),
                json!({"issuer": ISSUER, "subject": format!("r{i}"), "audiences": [AUDIENCE]}),
            )
            .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await??;
        match r.code() {
            201 => created += 1,
            400 => {
                r.arm_error(400, "BadRequest");
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(created, 20);
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/federatedIdentityCredentials",
                server.identity_path("rg1", "id1")
            ),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 20);
    Ok(())
}

#[tokio::test]
async fn api_version_rules() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    for path in [
        server.rg_path("rg1"),
        server.identity_path("rg1", "id1"),
        format!(
            "{}/providers/Microsoft.Authorization/roleDefinitions",
            server.sub_path()
        ),
        "/subscriptions".to_string(),
    ] {
        let r = server.arm(Method::GET, &path, None).await?;
        let msg = r.arm_error(400, "MissingApiVersionParameter");
        assert!(msg.contains("api-version"), "{msg}");
    }
    let cases = [
        (server.rg_path("rg1"), "2019-01-01", "2021-04-01"),
        (server.rg_path("rg1"), "latest", "2021-04-01"),
        (
            server.identity_path("rg1", "id1"),
            "2021-04-01",
            "2023-01-31",
        ),
        (
            format!(
                "{}/providers/Microsoft.Authorization/roleDefinitions",
                server.sub_path()
            ),
            "2023-01-31",
            "2022-04-01",
        ),
    ];
    for (path, version, listed) in cases {
        let r = server
            .arm(Method::GET, &format!("{path}?api-version={version}"), None)
            .await?;
        let msg = r.arm_error(400, "InvalidApiVersionParameter");
        assert!(msg.contains(version) && msg.contains(listed), "{msg}");
    }
    // The key of the parameter may be percent-encoded (the JS SDK does it).
    let r = server
        .arm(
            Method::GET,
            &format!("{}?api%2Dversion={RG_API}", server.rg_path("rg1")),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);

    // Unknown paths are ARM 404s.
    let r = server
        .armv(
            Method::GET,
            &format!("{}/providers/Microsoft.Nope/things", server.rg_path("rg1")),
            RG_API,
            None,
        )
        .await?;
    r.arm_error(404, "NotFound");
    let r = server
        .armv(Method::GET, "/nothing/here", RG_API, None)
        .await?;
    r.arm_error(404, "NotFound");
    Ok(())
}
