//! Request rate limits (issue 12): per client, failures per address (through trusted
//! proxies too), per principal; 429 with `Retry-After` in each protocol's shape; a
//! throttled request costs nothing; the defaults never touch normal use.

use std::time::Duration;

use anyhow::Result;
use reqwest::Method;
use serde_json::Value;

use crate::testkit::{Identity, KEYLESS_API, Reply, Server, TestIssuer, credential, poll};

const SUBJECT: &str = "system:serviceaccount:ns1:app";

/// A server with `args`, a static-JWKS issuer and one identity trusting it.
async fn setup(args: &[&str]) -> Result<(Server, TestIssuer, Identity)> {
    let server = Server::start(args).await?;
    let issuer = TestIssuer::new("https://oidc.rate-limits.invalid/c1")?;
    server
        .register_issuer("rate-limits", &issuer.issuer, issuer.jwks())
        .await?;
    let identity = server
        .identity_with_credential("rg-rl", "rl-id", credential(&issuer.issuer, SUBJECT))
        .await?;
    Ok((server, issuer, identity))
}

fn assertion(issuer: &TestIssuer) -> String {
    issuer.sign(&issuer.claims(SUBJECT))
}

/// Asserts a 429 in Entra's shape with a `Retry-After` of a few seconds.
fn assert_throttled_oauth(r: &Reply) {
    r.oauth_error(429, "temporarily_unavailable", 90055);
    assert_retry_after(r);
}

fn assert_retry_after(r: &Reply) {
    let after: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "429 without a numeric Retry-After: {:?}",
                r.header("retry-after")
            )
        });
    assert!((1..=10).contains(&after), "Retry-After {after}");
}

/// Sign-in rows of `client_id` (waits for the writer to settle).
async fn signin_count(server: &Server, client_id: &str) -> Result<i64> {
    // The writer batches: give it time, then read.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = server
        .arm(
            Method::GET,
            &format!("/providers/Keyless/signInLogs?api-version={KEYLESS_API}&top=1000"),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(r.body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["clientId"] == client_id)
        .map(|row| row["count"].as_i64().unwrap_or(1))
        .sum())
}

#[tokio::test]
async fn the_per_client_limit_answers_429_before_any_work() -> Result<()> {
    let (server, issuer, id) = setup(&[
        "--rate-limit-per-client",
        "1",
        "--rate-limit-failures-per-address",
        "0",
    ])
    .await?;
    // Burst: five seconds' worth.
    for _ in 0..5 {
        let r = server.exchange(&id.client_id, &assertion(&issuer)).await?;
        assert_eq!(r.code(), 200, "{}", r.body);
    }
    // Case variants of the client id are the same client.
    let r = server
        .exchange(&id.client_id.to_uppercase(), &assertion(&issuer))
        .await?;
    assert_throttled_oauth(&r);
    let desc = r.body["error_description"].as_str().unwrap_or_default();
    assert!(
        desc.starts_with("AADSTS90055: Too many token requests"),
        "{desc}"
    );
    for _ in 0..20 {
        let r = server.exchange(&id.client_id, "x.y.z").await?;
        assert_throttled_oauth(&r);
    }
    // The throttled requests wrote no sign-in row: only the five exchanges are there.
    assert_eq!(signin_count(&server, &id.client_id).await?, 5);
    assert_eq!(
        server
            .metric("keyless_requests_throttled_total{limit=\"per_client\"}")
            .await?,
        21
    );
    // Another client of the tenant has its own bucket.
    let other = server
        .exchange("0ddba11-0000-4000-8000-000000000000", "x.y.z")
        .await?;
    assert_ne!(other.code(), 429, "{}", other.body);
    // After Retry-After, the client is served again.
    let wait = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let r = server.exchange(&id.client_id, &assertion(&issuer)).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    server.assert_healthy().await
}

#[tokio::test]
async fn failures_block_their_address_but_successes_never_count() -> Result<()> {
    let (server, issuer, id) = setup(&[
        "--rate-limit-failures-per-address",
        "1",
        "--rate-limit-per-client",
        "0",
    ])
    .await?;
    // Successes, far past the failure burst of five: never counted.
    for _ in 0..30 {
        let r = server.exchange(&id.client_id, &assertion(&issuer)).await?;
        assert_eq!(r.code(), 200, "{}", r.body);
    }
    // A management call with a forged token is a failure too (it cost a verify); a
    // call without credentials is the normal challenge and is not.
    for _ in 0..20 {
        let r = server
            .arm_raw(
                Method::GET,
                &format!("{}?api-version=2022-12-01", server.sub_path()),
                None,
                None,
            )
            .await?;
        assert_eq!(r.code(), 401, "{}", r.body);
    }
    let admin = server.admin_token().await?;
    let (head, _) = admin.rsplit_once('.').unwrap();
    let forged = format!("Bearer {head}.AAAA");
    let r = server
        .arm_raw(
            Method::GET,
            &format!("{}?api-version=2022-12-01", server.sub_path()),
            Some(&forged),
            None,
        )
        .await?;
    assert_eq!(r.code(), 401, "{}", r.body);
    for _ in 0..4 {
        let r = server.exchange(&id.client_id, "x.y.z").await?;
        assert!(r.code() == 400 || r.code() == 401, "{}", r.body);
    }
    // Five failures: the address is over its limit. Even a valid request is refused,
    // before its assertion is looked at.
    let r = server.exchange(&id.client_id, &assertion(&issuer)).await?;
    assert_throttled_oauth(&r);
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("Too many failed requests from this address"),
        "{}",
        r.body
    );
    // ... on the management API too, in ARM's shape.
    let r = server
        .arm(
            Method::GET,
            &format!("{}?api-version=2022-12-01", server.sub_path()),
            None,
        )
        .await?;
    r.arm_error(429, "TooManyRequests");
    assert_retry_after(&r);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = server.exchange(&id.client_id, &assertion(&issuer)).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    server.assert_healthy().await
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_spoofing_escapes_nothing() -> Result<()> {
    let (server, issuer, id) = setup(&[
        "--rate-limit-failures-per-address",
        "1",
        "--trusted-proxies",
        "127.0.0.0/8,::1",
    ])
    .await?;
    let ex = server.exchanger();
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..5 {
        let r = ex
            .exchange_with(&id.client_id, "x.y.z", &from("203.0.113.1"))
            .await?;
        assert!(r.code() == 400 || r.code() == 401, "{}", r.body);
    }
    let r = ex
        .exchange_with(&id.client_id, &assertion(&issuer), &from("203.0.113.1"))
        .await?;
    assert_throttled_oauth(&r);
    // Another client behind the same proxy is not affected, and the sign-in log
    // records the client's address, not the proxy's.
    let r = ex
        .exchange_with(&id.client_id, &assertion(&issuer), &from("203.0.113.2"))
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let seen = poll(10, || async {
        let r = server
            .arm(
                Method::GET,
                &format!("/providers/Keyless/signInLogs?api-version={KEYLESS_API}&top=1000"),
                None,
            )
            .await?;
        let rows: Vec<Value> = r.body["value"].as_array().cloned().unwrap_or_default();
        Ok(rows
            .into_iter()
            .find(|row| row["ipAddress"] == "203.0.113.2" && row["status"] == "success"))
    })
    .await?;
    assert!(
        seen.is_some(),
        "the success from 203.0.113.2 is logged with its address"
    );

    // Without trusted proxies the header is the client's own word: changing it on
    // every request does not escape the limit.
    let (plain, _, id) = setup(&["--rate-limit-failures-per-address", "1"]).await?;
    let ex = plain.exchanger();
    let mut codes = Vec::new();
    for i in 0..8 {
        let spoof = format!("198.51.100.{i}");
        let r = ex
            .exchange_with(
                &id.client_id,
                "x.y.z",
                &[("x-forwarded-for", spoof.as_str())],
            )
            .await?;
        codes.push(r.code());
    }
    assert_eq!(&codes[5..], &[429, 429, 429], "{codes:?}");
    Ok(())
}

#[tokio::test]
async fn the_per_principal_limit_covers_management_and_vault_calls() -> Result<()> {
    let server = Server::start(&["--rate-limit-per-principal", "2"]).await?;
    server.create_rg("rg-pp").await?;
    let vault = format!(
        "{}/resourceGroups/rg-pp/providers/Microsoft.KeyVault/vaults/pp-vault?api-version=2023-07-01",
        server.sub_path()
    );
    let r = server
        .arm(
            Method::PUT,
            &vault,
            Some(serde_json::json!({"location": "westeurope"})),
        )
        .await?;
    assert!(r.code() == 200 || r.code() == 201, "{}", r.body);
    // Let the bucket refill (burst 10 at 2/s).
    tokio::time::sleep(Duration::from_secs(5)).await;

    let host = "pp-vault.vault.localhost";
    let pem = std::fs::read(server.data_dir().join("ca.pem"))?;
    let http = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem)?)
        .resolve(
            host,
            std::net::SocketAddr::from(([127, 0, 0, 1], server.port)),
        )
        .build()?;
    let token = server
        .token_for(&format!("https://vault.localhost:{}/.default", server.port))
        .await?;
    let url = format!("https://{host}:{}/secrets?api-version=7.6", server.port);
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..20 {
        let resp = http.get(&url).bearer_auth(&token).send().await?;
        let status = resp.status().as_u16();
        statuses.push(status);
        if status == 429 {
            let after = resp.headers().get("retry-after").cloned();
            throttled = Some((after, resp.json::<Value>().await?));
            break;
        }
    }
    let (after, body) = throttled.unwrap_or_else(|| panic!("never throttled: {statuses:?}"));
    assert!(
        statuses.len() >= 10,
        "the burst of ten was served: {statuses:?}"
    );
    assert!(after.is_some(), "429 without Retry-After");
    assert_eq!(body["error"]["code"], "Throttled", "{body}");
    // The same principal on the management API: same bucket, ARM's shape.
    let r = server.arm(Method::GET, &vault, None).await?;
    r.arm_error(429, "TooManyRequests");
    assert_retry_after(&r);
    // Token requests are not principal calls.
    let r = server.request_token(&server.arm_scope()).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn the_defaults_never_touch_a_thousand_pods_behind_one_address() -> Result<()> {
    let (server, issuer, id) = setup(&[]).await?;
    let ex = server.exchanger();
    // A thousand pods of one deployment renewing at once, through one address.
    let assertions: Vec<String> = (0..1000).map(|_| assertion(&issuer)).collect();
    let tasks: Vec<_> = assertions
        .into_iter()
        .map(|a| {
            let ex = ex.clone();
            let client = id.client_id.clone();
            tokio::spawn(async move { ex.exchange(&client, &a).await.map(|r| r.code()) })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let code = t.await??;
        assert_eq!(code, 200);
        ok += 1;
    }
    assert_eq!(ok, 1000);
    // Their Key Vault clients' first, unauthenticated probes: challenges, not failures.
    for _ in 0..300 {
        let r = server
            .arm_raw(
                Method::GET,
                &format!("{}?api-version=2022-12-01", server.sub_path()),
                None,
                None,
            )
            .await?;
        assert_eq!(r.code(), 401, "{}", r.body);
    }
    let r = server.exchange(&id.client_id, &assertion(&issuer)).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn three_zeros_turn_every_limit_off() -> Result<()> {
    let server = Server::start(&[
        "--rate-limit-per-client",
        "0",
        "--rate-limit-failures-per-address",
        "0",
        "--rate-limit-per-principal",
        "0",
    ])
    .await?;
    let ex = server.exchanger();
    for _ in 0..400 {
        let r = ex
            .exchange("f100f100-0000-4000-8000-000000000009", "x.y.z")
            .await?;
        assert_ne!(r.code(), 429, "{}", r.body);
    }
    for _ in 0..1200 {
        let r = server
            .arm(
                Method::GET,
                &format!("{}?api-version=2022-12-01", server.sub_path()),
                None,
            )
            .await?;
        assert_eq!(r.code(), 200, "{}", r.body);
    }
    Ok(())
}
