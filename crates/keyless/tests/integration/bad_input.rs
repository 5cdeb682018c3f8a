//! Hostile and malformed input: every answer is a clear 4xx in the documented shape,
//! nothing crashes, nothing is half-written.

use anyhow::Result;
use reqwest::Method;
use serde_json::json;

use crate::testkit::{AUTHZ_API, MI_API, RG_API, Server, role_id};

#[tokio::test]
async fn malformed_and_unexpected_json_is_invalid_request_content() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    let identity = server.create_identity("rg1", "id1").await?;
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    let token = server.admin_token().await?;
    let auth = format!("Bearer {token}");
    let targets = [
        format!("{}?api-version={RG_API}", server.rg_path("rg2")),
        format!(
            "{}?api-version={MI_API}",
            server.identity_path("rg1", "id2")
        ),
        format!(
            "{}?api-version={MI_API}",
            server.fic_path("rg1", "id1", "cred")
        ),
        format!(
            "{}?api-version={AUTHZ_API}",
            Server::assignment_path(&server.sub_path(), "0b7a3f55-0000-4000-8000-000000000001")
        ),
    ];
    let bodies: [&[u8]; 7] = [
        b"",
        b"{\"location\":",
        b"not json at all",
        b"[1,2,3]",
        b"\"a string\"",
        b"{\"location\": \"westeurope\"} trailing",
        b"\xff\xfe{\"location\": 1}",
    ];
    for path in &targets {
        for body in bodies {
            let r = server
                .arm_raw(Method::PUT, path, Some(&auth), Some(body.to_vec()))
                .await?;
            let msg = r.arm_error(400, "InvalidRequestContent");
            assert!(!msg.is_empty(), "{path}");
        }
    }

    // Unknown top-level fields are refused, naming the field.
    for path in &targets[..3] {
        let r = server
            .arm_raw(
                Method::PUT,
                path,
                Some(&auth),
                Some(br#"{"bogusField":1,"location":"westeurope","properties":{"issuer":"https://i.example","subject":"s","audiences":["a"]}}"#.to_vec()),
            )
            .await?;
        let msg = r.arm_error(400, "InvalidRequestContent");
        assert!(msg.contains("bogusField"), "{path}: {msg}");
    }
    // Wrong JSON types.
    for body in [
        json!({"location": 5}),
        json!({"location": "westeurope", "tags": "env=dev"}),
        json!({"location": ["westeurope"]}),
    ] {
        let r = server
            .arm_raw(
                Method::PUT,
                &targets[0],
                Some(&auth),
                Some(body.to_string().into_bytes()),
            )
            .await?;
        r.arm_error(400, "InvalidRequestContent");
    }
    // Tags that break the rules.
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("rg2"),
            RG_API,
            Some(json!({"location": "westeurope", "tags": {"k": 5}})),
        )
        .await?;
    r.arm_error(400, "InvalidTag");
    let many: serde_json::Map<String, serde_json::Value> =
        (0..51).map(|i| (format!("t{i}"), json!("v"))).collect();
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("rg2"),
            RG_API,
            Some(json!({"location": "westeurope", "tags": many})),
        )
        .await?;
    r.arm_error(400, "InvalidTag");
    let r = server
        .armv(
            Method::PUT,
            &server.rg_path("rg2"),
            RG_API,
            Some(json!({"location": "west<europe>"})),
        )
        .await?;
    r.arm_error(400, "LocationNotAvailableForResourceGroup");

    // Deeply nested JSON is refused, not a stack overflow.
    let deep = format!(
        "{{\"location\":\"x\",\"tags\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = server
        .arm_raw(
            Method::PUT,
            &targets[0],
            Some(&auth),
            Some(deep.into_bytes()),
        )
        .await?;
    r.arm_error(400, "InvalidRequestContent");

    // None of it was stored.
    let r = server
        .armv(
            Method::GET,
            &format!("{}/resourcegroups", server.sub_path()),
            RG_API,
            None,
        )
        .await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);
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
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(
        server
            .assignments_of(&server.sub_path(), principal)
            .await?
            .len(),
        0
    );
    server.assert_healthy().await?;
    Ok(())
}

#[tokio::test]
async fn huge_bodies_are_refused_and_the_server_survives() -> Result<()> {
    let server = Server::start(&[]).await?;
    let token = server.admin_token().await?;
    let auth = format!("Bearer {token}");

    // Over 1 MiB on the management API.
    let mut big = b"{\"location\":\"westeurope\",\"tags\":{\"k\":\"".to_vec();
    big.resize(big.len() + 1024 * 1024 + 10, b'a');
    big.extend_from_slice(b"\"}}");
    let r = server
        .arm_raw(
            Method::PUT,
            &format!("{}?api-version={RG_API}", server.rg_path("big")),
            Some(&auth),
            Some(big),
        )
        .await?;
    assert!(
        r.code() == 413 || r.code() == 400,
        "1 MiB body: {} {}",
        r.code(),
        r.body
    );
    server.assert_healthy().await?;

    // Over 64 KiB on the token endpoint: 100 KiB.
    let mut form = format!(
        "grant_type=client_credentials&client_id={}&scope={}&client_secret=",
        server.admin.client_id,
        server.arm_scope()
    )
    .into_bytes();
    form.resize(100 * 1024, b'x');
    let r = server
        .post_raw(
            &server.token_path_v2(),
            "application/x-www-form-urlencoded",
            form,
        )
        .await?;
    assert_eq!(r.code(), 413, "{}", r.body);
    server.assert_healthy().await?;

    // Nothing was stored and the admin can still work.
    let r = server
        .armv(Method::GET, &server.rg_path("big"), RG_API, None)
        .await?;
    r.arm_error(404, "ResourceGroupNotFound");
    server.create_rg("after").await?;
    Ok(())
}

#[tokio::test]
async fn role_assignment_body_with_unknown_field_is_refused() -> Result<()> {
    let server = Server::start(&[]).await?;
    let oid = server.admin_object_id().await?;
    let path = format!(
        "{}?api-version={AUTHZ_API}",
        Server::assignment_path(&server.sub_path(), "0b7a3f55-0000-4000-8000-000000000001")
    );
    let body = json!({"bogusField": 1, "properties": {"roleDefinitionId": role_id("Reader"), "principalId": oid}});
    let r = server.arm(Method::PUT, &path, Some(body)).await?;
    let msg = r.arm_error(400, "InvalidRequestContent");
    assert!(msg.contains("bogusField"), "{msg}");
    // Nothing was stored.
    let r = server.arm(Method::GET, &path, None).await?;
    r.arm_error(404, "RoleAssignmentNotFound");
    Ok(())
}

#[tokio::test]
async fn huge_bodies_get_the_documented_error_shape() -> Result<()> {
    let server = Server::start(&[]).await?;
    let token = server.admin_token().await?;
    let mut big = b"{\"location\":\"westeurope\",\"tags\":{\"k\":\"".to_vec();
    big.resize(big.len() + 1024 * 1024 + 10, b'a');
    big.extend_from_slice(b"\"}}");
    let r = server
        .arm_raw(
            Method::PUT,
            &format!("{}?api-version={RG_API}", server.rg_path("big")),
            Some(&format!("Bearer {token}")),
            Some(big),
        )
        .await?;
    let code = r.code();
    assert!(code == 413 || code == 400, "{code}");
    assert!(
        r.body.get("error").and_then(|e| e.get("code")).is_some(),
        "a 1 MiB management body should be refused in ARM's error shape, got {code} {}",
        r.body
    );

    let mut form = b"grant_type=client_credentials&client_secret=".to_vec();
    form.resize(100 * 1024, b'x');
    let r = server
        .post_raw(
            &server.token_path_v2(),
            "application/x-www-form-urlencoded",
            form,
        )
        .await?;
    assert!(
        r.body.get("error_codes").is_some(),
        "a 100 KiB token request should be refused in Entra's error shape, got {} {}",
        r.code(),
        r.body
    );
    Ok(())
}

#[tokio::test]
async fn bad_guids_and_path_traversal_are_4xx() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    server.create_identity("rg1", "id1").await?;
    let loc = json!({"location": "westeurope"});

    for sub in [
        "not-a-guid",
        "12345678-1234-1234-1234-12345678901",
        "12345678-1234-1234-1234-12345678901g",
        "%7B12345678-1234-1234-1234-123456789012%7D",
    ] {
        let r = server
            .armv(
                Method::PUT,
                &format!("/subscriptions/{sub}/resourcegroups/rg1"),
                RG_API,
                Some(loc.clone()),
            )
            .await?;
        r.arm_error(400, "InvalidSubscriptionId");
    }

    let sub = server.sub_path();
    let rg = server.rg_path("rg1");
    let id = server.identity_path("rg1", "id1");
    let paths = [
        format!("{sub}/resourcegroups/..%2F..%2Fetc?api-version={RG_API}"),
        format!("{sub}/resourcegroups/%2e%2e?api-version={RG_API}"),
        format!("{sub}/resourcegroups/rg1%00?api-version={RG_API}"),
        format!("{sub}/resourcegroups/%ff%fe?api-version={RG_API}"),
        format!(
            "{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a%2Fb?api-version={MI_API}"
        ),
        format!(
            "{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/..%2F..%2F..%2Fetc%2Fpasswd?api-version={MI_API}"
        ),
        format!(
            "{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/%2e%2e%5c%2e%2e?api-version={MI_API}"
        ),
        format!("{id}/federatedIdentityCredentials/..%2F..?api-version={MI_API}"),
        format!("{id}/federatedIdentityCredentials/a%2Fbcd?api-version={MI_API}"),
        format!("{id}/federatedIdentityCredentials/%2e%2e%2e?api-version={MI_API}"),
        format!(
            "{rg}/providers/Microsoft.Authorization/roleAssignments/..%2F..?api-version={AUTHZ_API}"
        ),
    ];
    let props = json!({"location": "westeurope", "properties": {"issuer": "https://i.example", "subject": "s", "audiences": ["a"]}});
    for path in &paths {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let body = (method == Method::PUT).then(|| props.clone());
            let r = server.arm(method.clone(), path, body).await?;
            // Deleting something that cannot exist may be a no-op (204); everything
            // else is a client error.
            if method == Method::DELETE && r.code() == 204 {
                continue;
            }
            assert!(
                (400..500).contains(&r.code()),
                "{method} {path}: {} {}",
                r.code(),
                r.body
            );
            assert!(
                r.body["error"]["code"].is_string(),
                "{method} {path}: not ARM's error shape: {}",
                r.body
            );
        }
    }

    // A control character in a name is escaped in the message, and a huge name is cut.
    let r = server
        .armv(
            Method::PUT,
            &format!("{sub}/resourcegroups/a%0Ab"),
            RG_API,
            Some(loc.clone()),
        )
        .await?;
    let msg = r.arm_error(400, "InvalidResourceGroupName");
    assert!(!msg.contains('\n'), "raw newline in message: {msg:?}");
    let long = "x".repeat(8000);
    let r = server
        .armv(
            Method::PUT,
            &server.identity_path("rg1", &long),
            MI_API,
            Some(loc.clone()),
        )
        .await?;
    let msg = r.arm_error(400, "InvalidResourceName");
    assert!(
        msg.len() < 1000,
        "message echoes the whole name ({} bytes)",
        msg.len()
    );

    // Still serving, and nothing stray was created.
    server.assert_healthy().await?;
    let r = server
        .armv(Method::GET, &format!("{sub}/resourcegroups"), RG_API, None)
        .await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = server
        .armv(
            Method::GET,
            &format!("{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn garbage_token_requests_are_invalid_request() -> Result<()> {
    let server = Server::start(&[]).await?;
    let path = server.token_path_v2();
    let form = "application/x-www-form-urlencoded";

    for body in [
        b"\xff\xfe\xfd\x00\x01".to_vec(),
        b"%%%%&&&===".to_vec(),
        b"grant_type=client_credentials&client_id=%ff%fe".to_vec(),
        b"\x00\x00\x00".to_vec(),
        Vec::new(),
    ] {
        let r = server.post_raw(&path, form, body.clone()).await?;
        let b = &r.body;
        assert_eq!(r.code(), 400, "{:?}: {b}", String::from_utf8_lossy(&body));
        assert_eq!(b["error"], json!("invalid_request"), "{b}");
        assert!(
            b["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS"),
            "{b}"
        );
    }
    // A 60 KiB client_id (under the form limit) is refused quickly and not echoed whole.
    let huge_id = "c".repeat(60 * 1024);
    let r = server
        .post_form(
            &path,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &huge_id),
                ("client_secret", "x"),
                ("scope", &server.arm_scope()),
            ],
            &[],
        )
        .await?;
    let b = r.oauth_error(400, "unauthorized_client", 700016);
    assert!(
        b["error_description"].as_str().unwrap().len() < 2000,
        "{}",
        b["error_description"].as_str().unwrap().len()
    );

    // Bad bearer tokens on the management API: huge, many dots, not base64.
    let sub_path = format!("{}?api-version=2022-12-01", server.sub_path());
    for token in [
        "a".repeat(15_000),
        ".".repeat(5_000),
        "eyJ.eyJ.sig".to_string(),
        "!!!.###.$$$".to_string(),
    ] {
        let r = server
            .arm_raw(
                Method::GET,
                &sub_path,
                Some(&format!("Bearer {token}")),
                None,
            )
            .await?;
        r.arm_error(401, "InvalidAuthenticationToken");
    }
    server.assert_healthy().await?;
    server.admin_token().await?;
    Ok(())
}
