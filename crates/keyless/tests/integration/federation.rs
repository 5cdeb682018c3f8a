//! The federated `client_assertion` grant end to end: a dev cluster's projected token
//! (or a static-JWKS issuer's) exchanged for a Keyless access token, claims-matching
//! expressions, the sign-in log and `keyless explain`.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{
    DevCluster, EXCHANGE_AUDIENCE, Identity, KEYLESS_API, Reply, Server, TestIssuer,
    assert_refused, credential, is_guid, jwt_claims, jwt_header, now, poll,
};

/// Asserts the v1-shaped access token Keyless mints for a managed identity.
async fn assert_identity_token(server: &Server, token: &str, identity: &Identity) -> Result<()> {
    let header = jwt_header(token);
    assert_eq!(header["typ"], json!("JWT"), "{header}");
    assert_eq!(header["alg"], json!("ES256"), "{header}");
    let kid = header["kid"].as_str().unwrap_or_default().to_string();
    assert!(
        server.jwks_kids().await?.contains(&kid),
        "kid {kid} is not in the tenant's JWKS"
    );
    let c = jwt_claims(token);
    let tenant = &server.admin.tenant_id;
    assert_eq!(c["aud"], json!(server.admin.resource_manager_url), "{c}");
    assert_eq!(c["iss"], json!(format!("{}/{tenant}/", server.url)), "{c}");
    assert_eq!(c["tid"], json!(tenant), "{c}");
    assert_eq!(c["appid"], json!(identity.client_id), "{c}");
    assert_eq!(c["appidacr"], json!("2"), "{c}");
    assert_eq!(c["idtyp"], json!("app"), "{c}");
    assert_eq!(c["oid"], json!(identity.principal_id), "{c}");
    assert_eq!(c["sub"], json!(identity.principal_id), "{c}");
    assert_eq!(c["ver"], json!("1.0"), "{c}");
    // Azure spells the segment `resourcegroups` in xms_mirid; ids compare
    // case-insensitively.
    let mirid = c["xms_mirid"].as_str().unwrap_or_default();
    assert!(
        mirid.eq_ignore_ascii_case(&identity.id),
        "xms_mirid {mirid:?} is not the identity's id {:?}",
        identity.id
    );
    let (iat, nbf, exp) = (
        c["iat"].as_i64().unwrap(),
        c["nbf"].as_i64().unwrap(),
        c["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "{c}");
    assert!(nbf <= iat && (iat - now()).abs() < 60, "{c}");
    assert!(c["uti"].as_str().is_some_and(|u| !u.is_empty()), "{c}");
    assert!(is_guid(&identity.principal_id) && is_guid(&identity.client_id));
    Ok(())
}

fn access_token(r: &Reply) -> String {
    assert_eq!(r.code(), 200, "exchange failed: {}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn projected_token_file_is_exchanged_on_v2_and_v1() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    // An issuer with a path, like AKS' (several clusters on one host).
    let cluster = DevCluster::start(&[
        "--issuer-path",
        "/cluster-1",
        "--token-file",
        token_file.to_str().unwrap(),
        "--namespace",
        "team-a",
        "--service-account",
        "app",
    ])
    .await?;
    assert!(cluster.issuer.ends_with("/cluster-1"), "{}", cluster.issuer);
    let server = Server::start_trusting(&cluster).await?;
    let identity = server
        .identity_with_credential(
            "rg-fed",
            "workload",
            credential(&cluster.issuer, "system:serviceaccount:team-a:app"),
        )
        .await?;

    // The file's content verbatim, plus the newline many writers add.
    let mut assertion = std::fs::read_to_string(&token_file)?;
    assert_eq!(
        jwt_claims(&assertion)["sub"],
        json!("system:serviceaccount:team-a:app")
    );
    assertion.push('\n');
    let ex = server.exchanger();

    let r = ex
        .exchange_with(
            &identity.client_id,
            &assertion,
            &[("client-request-id", "7d0bd8a2-0000-4000-8000-00000000c0de")],
        )
        .await?;
    let token = access_token(&r);
    let body = r.body.as_object().unwrap();
    let mut fields: Vec<&str> = body.keys().map(String::as_str).collect();
    fields.sort_unstable();
    fields.retain(|f| *f != "refresh_in");
    assert_eq!(
        fields,
        ["access_token", "expires_in", "ext_expires_in", "token_type"],
        "{}",
        r.body
    );
    assert_eq!(r.body["token_type"], json!("Bearer"));
    let expires_in = r.body["expires_in"].as_i64().expect("integer expires_in");
    assert!((3500..=3600).contains(&expires_in), "{}", r.body);
    assert!(r.body["ext_expires_in"].is_i64(), "{}", r.body);
    if let Some(refresh_in) = body.get("refresh_in") {
        assert!(
            refresh_in.is_i64(),
            "refresh_in must be an integer: {refresh_in}"
        );
    }
    assert!(
        r.header("cache-control")
            .unwrap_or_default()
            .contains("no-store"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("client-request-id"),
        Some("7d0bd8a2-0000-4000-8000-00000000c0de")
    );
    assert_identity_token(&server, &token, &identity).await?;

    // v1: resource=, numbers as strings, expires_on / not_before / resource.
    let r = ex.exchange_v1(&identity.client_id, &assertion).await?;
    let token = access_token(&r);
    assert_eq!(r.body["token_type"], json!("Bearer"));
    assert_eq!(r.body["resource"], json!(server.admin.resource_manager_url));
    for f in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        let v = r.body[f]
            .as_str()
            .unwrap_or_else(|| panic!("{f}: {}", r.body));
        v.parse::<i64>()
            .unwrap_or_else(|_| panic!("{f} is not a number: {v}"));
    }
    assert_identity_token(&server, &token, &identity).await?;
    Ok(())
}

#[tokio::test]
async fn claims_matching_expression_accepts_a_match_and_explains_a_miss() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server = Server::start_trusting(&cluster).await?;
    let expression = "claims['sub'] matches 'system:serviceaccount:team-*:*'";
    let identity = server
        .identity_with_credential(
            "rg-expr",
            "teams",
            json!({
                "issuer": cluster.issuer,
                "audiences": [EXCHANGE_AUDIENCE],
                "claimsMatchingExpression": {"value": expression, "languageVersion": 1},
            }),
        )
        .await?;
    let ex = server.exchanger();

    for (ns, sa) in [("team-a", "app"), ("team-blue", "batch-job")] {
        let t = cluster.mint(ns, sa).await?;
        let r = ex.exchange(&identity.client_id, &t).await?;
        let token = access_token(&r);
        assert_identity_token(&server, &token, &identity).await?;
    }

    let t = cluster.mint("prod", "app").await?;
    let r = ex.exchange(&identity.client_id, &t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        7002131,
        &[expression, "system:serviceaccount:prod:app", "fic1"],
    );

    // The audience is still matched exactly before the expression.
    let t = cluster
        .mint_with(
            json!({"namespace": "team-a", "serviceAccount": "app", "audiences": ["api://other"]}),
        )
        .await?;
    let r = ex.exchange(&identity.client_id, &t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        700212,
        &["api://other", EXCHANGE_AUDIENCE],
    );
    Ok(())
}

#[tokio::test]
async fn static_jwks_issuer_registered_with_the_cli_needs_no_fetch() -> Result<()> {
    let server = Server::start(&[]).await?;
    // Not resolvable: any attempt to fetch its metadata would fail.
    let issuer = TestIssuer::new("https://oidc.air-gapped.invalid/cluster-1")?;
    let jwks_file = server.data_dir().join("jwks.json");
    std::fs::write(&jwks_file, issuer.jwks().to_string())?;
    let out = server
        .cli(&[
            "issuer",
            "register",
            "--name",
            "air-gapped",
            "--issuer",
            &issuer.issuer,
            "--jwks-file",
            jwks_file.to_str().unwrap(),
        ])
        .await?;
    assert!(
        out.status.success(),
        "issuer register failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        shown["properties"]["issuer"],
        json!(issuer.issuer),
        "{shown}"
    );

    let subject = "system:serviceaccount:ns1:app";
    let identity = server
        .identity_with_credential(
            "rg-static",
            "static-id",
            credential(&issuer.issuer, subject),
        )
        .await?;
    let ex = server.exchanger();
    // RS256 and ES256 assertions.
    let rs = issuer.sign(&issuer.claims(subject));
    let es = issuer.ec.sign_jwt("JWT", &issuer.claims(subject))?;
    for t in [rs, es] {
        let r = ex.exchange(&identity.client_id, &t).await?;
        let token = access_token(&r);
        assert_identity_token(&server, &token, &identity).await?;
    }
    assert_eq!(
        server.issuer_fetches().await?,
        0,
        "a static issuer is never fetched"
    );
    Ok(())
}

/// The sign-in log entries with this correlation id.
async fn logged(server: &Server, query: &str, correlation: &str) -> Result<Vec<Value>> {
    let r = server
        .arm(
            Method::GET,
            &format!("/providers/Keyless/signInLogs?api-version={KEYLESS_API}{query}"),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["correlationId"] == json!(correlation))
        .cloned()
        .collect())
}

#[tokio::test]
async fn sign_in_log_records_successes_and_failures() -> Result<()> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new("https://issuer.signin-log.test/c1")?;
    server
        .register_issuer("signin-log", &issuer.issuer, issuer.jwks())
        .await?;
    let subject = "system:serviceaccount:ns1:app";
    let identity = server
        .identity_with_credential("rg-log", "logged", credential(&issuer.issuer, subject))
        .await?;
    let ex = server.exchanger();
    let (ok_id, bad_id) = (
        "a1a1a1a1-0000-4000-8000-000000000001",
        "b2b2b2b2-0000-4000-8000-000000000002",
    );
    let r = ex
        .exchange_with(
            &identity.client_id,
            &issuer.sign(&issuer.claims(subject)),
            &[("client-request-id", ok_id)],
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let wrong = "system:serviceaccount:ns1:intruder";
    let r = ex
        .exchange_with(
            &identity.client_id,
            &issuer.sign(&issuer.claims(wrong)),
            &[("x-ms-client-request-id", bad_id)],
        )
        .await?;
    assert_refused(&r, 401, "invalid_client", 700213, &[wrong]);
    assert_eq!(r.body["correlation_id"], json!(bad_id), "{}", r.body);

    // The writer is asynchronous: poll briefly.
    let both = poll(10, || async {
        let ok = logged(&server, "", ok_id).await?;
        let bad = logged(&server, "", bad_id).await?;
        Ok((ok.len() == 1 && bad.len() == 1).then(|| (ok[0].clone(), bad[0].clone())))
    })
    .await?;
    let (ok, bad) = both.expect("both requests appear in the sign-in log within 10 s");

    assert_eq!(ok["status"], json!("success"), "{ok}");
    assert_eq!(ok["clientId"], json!(identity.client_id), "{ok}");
    assert_eq!(ok["principalId"], json!(identity.principal_id), "{ok}");
    assert_eq!(ok["issuer"], json!(issuer.issuer), "{ok}");
    assert_eq!(ok["subject"], json!(subject), "{ok}");
    assert_eq!(
        ok["resource"],
        json!(server.admin.resource_manager_url),
        "{ok}"
    );
    assert_eq!(ok["errorCode"], Value::Null, "{ok}");
    assert!(
        ok["ipAddress"].as_str().is_some_and(|ip| ip == "127.0.0.1"),
        "{ok}"
    );
    assert!(ok["latencyMicroseconds"].as_i64().is_some(), "{ok}");

    assert_eq!(bad["status"], json!("failure"), "{bad}");
    assert_eq!(bad["clientId"], json!(identity.client_id), "{bad}");
    assert_eq!(bad["issuer"], json!(issuer.issuer), "{bad}");
    assert_eq!(bad["subject"], json!(wrong), "{bad}");
    assert_eq!(bad["errorCode"], json!(700213), "{bad}");
    assert_eq!(bad["principalId"], json!(identity.principal_id), "{bad}");
    assert_eq!(
        bad["resource"],
        json!(server.admin.resource_manager_url),
        "{bad}"
    );
    assert!(
        bad["failureReason"]
            .as_str()
            .is_some_and(|f| f.contains(wrong)),
        "{bad}"
    );

    // Filters: failed only; by client id.
    assert!(logged(&server, "&failed=true", ok_id).await?.is_empty());
    assert_eq!(logged(&server, "&failed=true", bad_id).await?.len(), 1);
    let q = format!("&clientId={}", identity.client_id);
    assert_eq!(logged(&server, &q, ok_id).await?.len(), 1);
    let other = format!("&clientId={}", uuid::Uuid::new_v4());
    assert!(logged(&server, &other, ok_id).await?.is_empty());
    let since = format!("&since={}", now() + 3600);
    assert!(logged(&server, &since, ok_id).await?.is_empty());

    // The CLI shows the same.
    let out = server
        .cli(&[
            "signin-log",
            "list",
            "--failed",
            "--identity",
            &identity.client_id,
        ])
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout)?;
    let rows = rows.as_array().unwrap();
    assert!(
        rows.iter().any(|e| e["correlationId"] == json!(bad_id)),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|e| e["status"] == json!("failure")),
        "{rows:?}"
    );
    Ok(())
}

/// Client ids are GUIDs and compare case-insensitively: a workload configured with
/// an upper-case `AZURE_CLIENT_ID` gets its token, and its sign-in entries must be
/// found when an operator filters by the identity's client id.
#[tokio::test]
async fn sign_in_log_filter_finds_a_client_id_sent_in_upper_case() -> Result<()> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new("https://issuer.signin-case.test")?;
    server
        .register_issuer("signin-case", &issuer.issuer, issuer.jwks())
        .await?;
    let subject = "system:serviceaccount:ns1:app";
    let identity = server
        .identity_with_credential("rg-case", "cased", credential(&issuer.issuer, subject))
        .await?;
    let correlation = "c3c3c3c3-0000-4000-8000-000000000003";
    let upper = identity.client_id.to_uppercase();
    let r = server
        .exchanger()
        .exchange_with(
            &upper,
            &issuer.sign(&issuer.claims(subject)),
            &[("client-request-id", correlation)],
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    // Logged at all (unfiltered)...
    let found = poll(10, || async {
        Ok((!logged(&server, "", correlation).await?.is_empty()).then_some(()))
    })
    .await?;
    assert!(found.is_some(), "the request is in the sign-in log");
    // ...and found by the identity's client id, as `signin-log list --identity` asks.
    let q = format!("&clientId={}", identity.client_id);
    assert_eq!(
        logged(&server, &q, correlation).await?.len(),
        1,
        "filtering by the identity's client id finds its upper-case request"
    );
    Ok(())
}

#[tokio::test]
async fn explain_passes_a_good_token_and_names_the_subject_of_a_bad_one() -> Result<()> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new("https://issuer.explain.test")?;
    server
        .register_issuer("explain", &issuer.issuer, issuer.jwks())
        .await?;
    let subject = "system:serviceaccount:ns1:app";
    let identity = server
        .identity_with_credential(
            "rg-explain",
            "explained",
            credential(&issuer.issuer, subject),
        )
        .await?;
    let dir = tempfile::tempdir()?;

    let good = dir.path().join("good.jwt");
    std::fs::write(&good, format!("{}\n", issuer.sign(&issuer.claims(subject))))?;
    let out = server
        .cli(&[
            "explain",
            "--client-id",
            &identity.client_id,
            "--token",
            good.to_str().unwrap(),
        ])
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "explain of a good token failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["signature", "validity period", "federated credential"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("PASS") && l.contains(check)),
            "no PASS line for {check}: {text}"
        );
    }
    assert!(!text.contains("FAIL"), "{text}");

    let wrong = "system:serviceaccount:ns1:other";
    let bad = dir.path().join("bad.jwt");
    std::fs::write(&bad, issuer.sign(&issuer.claims(wrong)))?;
    let out = server
        .cli(&[
            "explain",
            "--client-id",
            &identity.client_id,
            "--token",
            bad.to_str().unwrap(),
        ])
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "explain of a bad token succeeded: {text}"
    );
    let fail = text
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line: {text}"));
    assert!(
        fail.contains("federated credential") && fail.contains(wrong) && fail.contains(subject),
        "the FAIL line should name the presented and the expected subject: {fail}"
    );
    // The checks before it passed.
    assert!(
        text.lines()
            .any(|l| l.starts_with("PASS") && l.contains("signature")),
        "{text}"
    );

    // The same through the API.
    let r = server
        .armv(
            Method::POST,
            "/providers/Keyless/explain",
            KEYLESS_API,
            Some(json!({"clientId": identity.client_id, "assertion": std::fs::read_to_string(&bad)?})),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["wouldSucceed"], json!(false), "{}", r.body);
    Ok(())
}
