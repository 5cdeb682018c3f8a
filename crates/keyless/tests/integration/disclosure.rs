//! Nothing is disclosed before a signature verifies (issue 11, §3): an anonymous caller
//! who knows a client id learns only what it sent itself, while the operator still gets
//! the whole explanation from `explain` and the sign-in log. Also: issuers with a query
//! or fragment are refused when written, and authorization is checked before existence.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{
    EXCHANGE_AUDIENCE, KEYLESS_API, MI_API, Server, TestIssuer, assert_refused, b64url, now, poll,
};

const SUBJECT: &str = "system:serviceaccount:payments:api";
const CREDENTIAL: &str = "prod-cluster-trust";

/// An identity whose one credential, `CREDENTIAL`, trusts `issuer` for `SUBJECT`.
async fn identity_trusting(server: &Server, issuer: &str) -> Result<String> {
    server.create_rg("rg-disc").await?;
    let body = server.create_identity("rg-disc", "payments").await?;
    let r = server
        .put_fic(
            "rg-disc",
            "payments",
            CREDENTIAL,
            json!({"issuer": issuer, "subject": SUBJECT, "audiences": [EXCHANGE_AUDIENCE]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    Ok(body["properties"]["clientId"].as_str().unwrap().to_string())
}

/// An unsigned token an attacker can write without any key: RS256 header, claims of
/// its choosing, a signature of zeros.
fn forged(iss: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "attacker-kid"});
    let t = now();
    let claims = json!({"iss": iss, "sub": "whoever", "aud": [EXCHANGE_AUDIENCE], "iat": t, "nbf": t, "exp": t + 600});
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(&[0u8; 256])
    )
}

/// `explain` through the API, as an operator: the failing step's detail.
async fn explain_failure(server: &Server, client_id: &str, assertion: &str) -> Result<String> {
    let r = server
        .armv(
            Method::POST,
            "/providers/Keyless/explain",
            KEYLESS_API,
            Some(json!({"clientId": client_id, "assertion": assertion})),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let steps = r.body["steps"].as_array().cloned().unwrap_or_default();
    let failed: Vec<String> = steps
        .iter()
        .filter(|s| s["ok"] == json!(false))
        .map(|s| s["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !failed.is_empty(),
        "explain found no failing step: {}",
        r.body
    );
    Ok(failed.join("\n"))
}

/// The sign-in log's failure reason for this correlation id (the writer is
/// asynchronous: polled).
async fn logged_reason(server: &Server, correlation: &str) -> Result<String> {
    let found = poll(10, || async {
        let r = server
            .armv(
                Method::GET,
                "/providers/Keyless/signInLogs",
                KEYLESS_API,
                None,
            )
            .await?;
        assert_eq!(r.code(), 200, "{}", r.body);
        Ok(r.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["correlationId"] == json!(correlation))
            .map(|e: &Value| e["failureReason"].as_str().unwrap_or_default().to_string()))
    })
    .await?;
    Ok(found.expect("the request is in the sign-in log within 10 s"))
}

fn assert_silent_about_configuration(desc: &str, trusted_issuer: &str) {
    for secret in [trusted_issuer, CREDENTIAL, SUBJECT, "payments"] {
        assert!(
            !desc.contains(secret),
            "an unauthenticated caller was told {secret:?}: {desc}"
        );
    }
}

#[tokio::test]
async fn a_forged_unsigned_token_learns_nothing_of_the_identity() -> Result<()> {
    let server = Server::start(&[]).await?;
    let trusted = "https://oidc.internal-cluster.test/c1";
    let client_id = identity_trusting(&server, trusted).await?;
    let token = forged("https://nope");
    let correlation = "d1d1d1d1-0000-4000-8000-000000000001";
    let r = server
        .exchanger()
        .exchange_with(&client_id, &token, &[("client-request-id", correlation)])
        .await?;
    // What the caller sent may be named; nothing the identity trusts may be.
    let desc = assert_refused(&r, 401, "invalid_client", 700211, &["https://nope"]);
    assert_silent_about_configuration(&desc, trusted);

    // The operator still sees what the identity trusts.
    let detail = explain_failure(&server, &client_id, &token).await?;
    assert!(
        detail.contains(trusted) && detail.contains(CREDENTIAL),
        "{detail}"
    );
    let reason = logged_reason(&server, correlation).await?;
    assert!(
        reason.contains(trusted) && reason.contains(CREDENTIAL),
        "{reason}"
    );
    Ok(())
}

#[tokio::test]
async fn a_near_miss_issuer_gets_no_hint_before_its_signature_verifies() -> Result<()> {
    let server = Server::start(&[]).await?;
    let trusted = "https://oidc.near-miss-disclosure.test/c1";
    let client_id = identity_trusting(&server, trusted).await?;
    // One letter of case off: today's hint would name the credential and the issuer.
    let presented = trusted.to_uppercase();
    let r = server.exchange(&client_id, &forged(&presented)).await?;
    let desc = assert_refused(&r, 401, "invalid_client", 700211, &[&presented]);
    assert_silent_about_configuration(&desc, trusted);
    let detail = explain_failure(&server, &client_id, &forged(&presented)).await?;
    assert!(detail.contains("letter case"), "{detail}");
    Ok(())
}

#[tokio::test]
async fn a_verified_token_still_gets_the_helpful_detail() -> Result<()> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new("https://issuer.after-signature.test/c1")?;
    server
        .register_issuer("after-signature", &issuer.issuer, issuer.jwks())
        .await?;
    let client_id = identity_trusting(&server, &issuer.issuer).await?;
    // Signed by the trusted issuer, for another service account: the caller holds a
    // token from a trusted issuer, so the closest credential and its subject are named.
    let other = "system:serviceaccount:payments:worker";
    let r = server
        .exchange(&client_id, &issuer.sign(&issuer.claims(other)))
        .await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        700213,
        &[other, SUBJECT, CREDENTIAL],
    );
    Ok(())
}

#[tokio::test]
async fn issuer_fetch_failures_do_not_say_why_to_the_caller() -> Result<()> {
    // Without --allow-private-issuers a loopback issuer is refused before any
    // connection; with it, a name that does not resolve fails in DNS. Either reason
    // (a network map for an attacker) goes to the operator only.
    for (args, issuer, reason_words) in [
        (
            &[][..],
            "https://127.0.0.1:9/private-issuer",
            &["--allow-private-issuers"][..],
        ),
        (
            &["--allow-private-issuers"][..],
            "https://no-such-host.keyless-test.invalid/issuer",
            &["no-such-host.keyless-test.invalid/issuer/.well-known/openid-configuration"][..],
        ),
    ] {
        let server = Server::start(args).await?;
        let client_id = identity_trusting(&server, issuer).await?;
        let token = forged(issuer);
        let correlation = "e2e2e2e2-0000-4000-8000-000000000002";
        let r = server
            .exchanger()
            .exchange_with(&client_id, &token, &[("client-request-id", correlation)])
            .await?;
        let desc = assert_refused(
            &r,
            400,
            "invalid_request",
            50166,
            &["could not fetch the issuer's metadata or keys", issuer],
        );
        let lower = desc.to_lowercase();
        for leak in [
            "allow-private",
            "private address",
            "loopback",
            "dns",
            "resolve",
            "lookup",
            "connect",
            "certificate",
            "status",
            ".well-known",
        ] {
            assert!(
                !lower.contains(leak),
                "the caller was told {leak:?}: {desc}"
            );
        }
        assert!(
            r.body["trace_id"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            r.body
        );
        let detail = explain_failure(&server, &client_id, &token).await?;
        let reason = logged_reason(&server, correlation).await?;
        for word in reason_words {
            assert!(
                detail.contains(word),
                "explain should say {word:?}: {detail}"
            );
            assert!(
                reason.contains(word),
                "the sign-in log should say {word:?}: {reason}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn issuers_with_a_query_or_fragment_are_refused_when_written() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg-q").await?;
    server.create_identity("rg-q", "id-q").await?;
    for (issuer, why) in [
        ("https://oidc.example/c1?x=1", "query"),
        ("https://oidc.example/c1?", "query"),
        ("https://oidc.example/c1#frag", "fragment"),
    ] {
        let r = server
            .put_fic(
                "rg-q",
                "id-q",
                "fic-q",
                json!({"issuer": issuer, "subject": SUBJECT, "audiences": [EXCHANGE_AUDIENCE]}),
            )
            .await?;
        let msg = r.arm_error(400, "BadRequest");
        assert!(msg.contains(why), "{issuer}: {msg}");
        let r = server
            .armv(
                Method::PUT,
                "/providers/Keyless/trustedIssuers/query-issuer",
                KEYLESS_API,
                Some(json!({"properties": {"issuer": issuer, "jwks": {"keys": []}}})),
            )
            .await?;
        let msg = r.arm_error(400, "BadRequest");
        assert!(msg.contains(why), "{issuer}: {msg}");
    }
    // Nothing was written.
    let r = server
        .armv(
            Method::GET,
            &format!(
                "{}/federatedIdentityCredentials",
                server.identity_path("rg-q", "id-q")
            ),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["value"], json!([]), "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn a_caller_without_rights_learns_nothing_about_which_groups_exist() -> Result<()> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new("https://issuer.authz-first.test/c1")?;
    server
        .register_issuer("authz-first", &issuer.issuer, issuer.jwks())
        .await?;
    // A workload identity with no role at all.
    let client_id = identity_trusting(&server, &issuer.issuer).await?;
    let r = server
        .exchange(&client_id, &issuer.sign(&issuer.claims(SUBJECT)))
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let token = r.body["access_token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");

    server.create_rg("rg-exists").await?;
    for provider in [
        "Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31",
        "Microsoft.KeyVault/vaults?api-version=2023-07-01",
    ] {
        let mut replies = Vec::new();
        for rg in ["rg-exists", "rg-does-not-exist"] {
            let path = format!("{}/providers/{provider}", server.rg_path(rg));
            let r = server
                .arm_raw(Method::GET, &path, Some(&bearer), None)
                .await?;
            replies.push((rg, r.code(), r.body.clone()));
            // The admin, who may read, is told the truth.
            let admin = server.arm(Method::GET, &path, None).await?;
            let want = if rg == "rg-exists" { 200 } else { 404 };
            assert_eq!(admin.code(), want, "{rg}: {}", admin.body);
        }
        // The group that exists and the one that does not look the same.
        for (rg, code, body) in &replies {
            assert_eq!(*code, 403, "{provider} in {rg}: {body}");
            assert_eq!(
                body["error"]["code"],
                json!("AuthorizationFailed"),
                "{body}"
            );
            assert!(!body.to_string().contains("not found"), "{body}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn issuers_at_addresses_that_translate_to_private_ones_are_never_fetched() -> Result<()> {
    // IPv6 forms that embed or translate IPv4 (mapped, compatible, NAT64, 6to4, Teredo),
    // site-local, CGNAT and 0.0.0.0/8: each would reach an internal address.
    let server = Server::start(&[]).await?;
    server.create_rg("rg-disc").await?;
    let body = server.create_identity("rg-disc", "payments").await?;
    let client_id = body["properties"]["clientId"].as_str().unwrap().to_string();
    for (i, issuer) in [
        "https://[::ffff:7f00:1]:9/i",
        "https://[::7f00:1]:9/i",
        "https://[64:ff9b::7f00:1]:9/i",
        "https://[2002:7f00:1::1]:9/i",
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]:9/i",
        "https://[fec0::1]:9/i",
        "https://100.64.0.1:9/i",
        "https://0.0.0.1:9/i",
    ]
    .iter()
    .enumerate()
    {
        let r = server
            .put_fic(
                "rg-disc",
                "payments",
                &format!("fic-{i}"),
                json!({"issuer": issuer, "subject": SUBJECT, "audiences": [EXCHANGE_AUDIENCE]}),
            )
            .await?;
        assert_eq!(r.code(), 201, "{issuer}: {}", r.body);
        let token = forged(issuer);
        let r = server.exchange(&client_id, &token).await?;
        assert_refused(&r, 400, "invalid_request", 50166, &[]);
        let detail = explain_failure(&server, &client_id, &token).await?;
        assert!(
            detail.contains("--allow-private-issuers"),
            "{issuer} was not refused as private: {detail}"
        );
    }
    assert_eq!(
        server.issuer_fetches().await?,
        8,
        "one refused attempt per issuer, none of them a connection"
    );
    Ok(())
}
