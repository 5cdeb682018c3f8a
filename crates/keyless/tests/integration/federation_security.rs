//! Assertions that must be refused, each with its AADSTS code and a description that
//! names what did not match: mismatched credentials, times, forged and malformed
//! tokens, Keyless' own tokens, private issuers.

use std::time::{Duration, Instant};

use anyhow::Result;
use keyless_jose::{Alg, SigningKey};
use serde_json::{Value, json};

use crate::testkit::{
    DevCluster, EXCHANGE_AUDIENCE, Identity, JWT_BEARER, Server, TestIssuer, assert_refused,
    b64url, credential, hmac_sha256, jwt_claims, jwt_header, now, with_header,
};

const SUBJECT: &str = "system:serviceaccount:ns1:app";

/// A server with a static-JWKS issuer and an identity trusting `SUBJECT` from it.
struct Fixture {
    server: Server,
    issuer: TestIssuer,
    identity: Identity,
}

async fn fixture(issuer: &str) -> Result<Fixture> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new(issuer)?;
    server
        .register_issuer("test-issuer", &issuer.issuer, issuer.jwks())
        .await?;
    let identity = server
        .identity_with_credential("rg-sec", "target", credential(&issuer.issuer, SUBJECT))
        .await?;
    Ok(Fixture {
        server,
        issuer,
        identity,
    })
}

impl Fixture {
    async fn exchange(&self, assertion: &str) -> Result<crate::testkit::Reply> {
        self.server
            .exchange(&self.identity.client_id, assertion)
            .await
    }

    /// Valid claims with some members replaced (`null` removes one).
    fn claims_with(&self, changes: Value) -> Value {
        let mut c = self.issuer.claims(SUBJECT);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }
}

#[tokio::test]
async fn credential_mismatches_name_the_expected_and_presented_values() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let server = Server::start_trusting(&cluster).await?;
    let expected = "system:serviceaccount:prod:api";
    let identity = server
        .identity_with_credential("rg-mis", "api", credential(&cluster.issuer, expected))
        .await?;
    // A second, less similar credential: the closest one must be named.
    let r = server
        .put_fic(
            "rg-mis",
            "api",
            "zz-unrelated",
            credential(&cluster.issuer, "system:serviceaccount:kube-system:other"),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let ex = server.exchanger();

    // The happy path first, so every failure below is about the one field.
    let good = cluster.mint("prod", "api").await?;
    assert_eq!(ex.exchange(&identity.client_id, &good).await?.code(), 200);

    // Wrong subject: 700213 naming presented, expected and the closest credential.
    let t = cluster.mint("prod", "apx").await?;
    let r = ex.exchange(&identity.client_id, &t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        700213,
        &[
            "system:serviceaccount:prod:apx",
            expected,
            "'fic1'",
            &cluster.issuer,
        ],
    );

    // Wrong audience: 700212 naming both audiences.
    let t = cluster
        .mint_with(json!({"namespace": "prod", "serviceAccount": "api", "audiences": ["api://wrong-audience"]}))
        .await?;
    let r = ex.exchange(&identity.client_id, &t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        700212,
        &["api://wrong-audience", EXCHANGE_AUDIENCE],
    );

    // Unknown client id: 700016 naming it.
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = ex.exchange(&unknown, &good).await?;
    assert_refused(&r, 400, "unauthorized_client", 700016, &[&unknown]);

    // Unknown kid (the signature no longer matters: the key lookup comes first).
    let t = with_header(&good, &json!({"alg": "RS256", "kid": "no-such-kid-1234"}));
    let r = ex.exchange(&identity.client_id, &t).await?;
    assert_refused(&r, 401, "invalid_client", 7000272, &["no-such-kid-1234"]);
    Ok(())
}

#[tokio::test]
async fn unknown_issuer_names_the_presented_issuer_only() -> Result<()> {
    let f = fixture("https://issuer.unknown-issuer.test/c1").await?;
    let other = TestIssuer::new("https://elsewhere.example/cluster")?;
    let r = f.exchange(&other.sign(&other.claims(SUBJECT))).await?;
    let desc = assert_refused(
        &r,
        401,
        "invalid_client",
        700211,
        &["https://elsewhere.example/cluster"],
    );
    // The signature could not be checked (no key of a trusted issuer): what the
    // identity trusts stays with the operator (`explain`, the sign-in log).
    assert!(
        !desc.contains(&f.issuer.issuer) && !desc.contains("fic1"),
        "700211 must not name what the identity trusts before a signature verified: {desc}"
    );
    Ok(())
}

#[tokio::test]
async fn near_miss_issuers_and_subjects_get_a_hint() -> Result<()> {
    let f = fixture("https://issuer.near-miss.test/c1").await?;
    let iss = f.issuer.issuer.clone();
    for presented in [
        format!(" {iss}"),
        format!("{iss} "),
        format!("{iss}\n"),
        format!("{iss}/"),
        iss.to_uppercase(),
    ] {
        let t = f.issuer.sign(&f.claims_with(json!({ "iss": presented })));
        let r = f.exchange(&t).await?;
        // Before the signature verifies, the hint (which credential nearly matched) is
        // the operator's: the caller is told the rule only.
        let desc = assert_refused(&r, 401, "invalid_client", 700211, &["must match exactly"]);
        assert!(
            !desc.contains("fic1") && !desc.contains("surrounding spaces"),
            "{presented:?}: {desc}"
        );
    }
    let t = f
        .issuer
        .sign(&f.claims_with(json!({"sub": "system:serviceaccount:ns1:App"})));
    let r = f.exchange(&t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        700213,
        &["system:serviceaccount:ns1:App", SUBJECT, "letter case"],
    );
    Ok(())
}

#[tokio::test]
async fn validity_period_and_lifetime_are_enforced() -> Result<()> {
    let f = fixture("https://issuer.times.test").await?;
    let now = now();

    let expired = now - 3600;
    let t = f
        .issuer
        .sign(&f.claims_with(json!({"iat": now - 7200, "nbf": now - 7200, "exp": expired})));
    let r = f.exchange(&t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        700024,
        &["expired", &expired.to_string()],
    );

    let nbf = now + 3600;
    let t = f
        .issuer
        .sign(&f.claims_with(json!({"iat": now, "nbf": nbf, "exp": now + 7200})));
    let r = f.exchange(&t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        700024,
        &["not valid before", &nbf.to_string()],
    );

    let iat = now + 3600;
    let t = f
        .issuer
        .sign(&f.claims_with(json!({"iat": iat, "nbf": null, "exp": now + 7200})));
    let r = f.exchange(&t).await?;
    assert_refused(&r, 401, "invalid_client", 700024, &[&iat.to_string()]);

    // Lifetime over 25 h.
    let lifetime = 25 * 3600 + 60;
    let t = f
        .issuer
        .sign(&f.claims_with(json!({"iat": now, "nbf": now, "exp": now + lifetime})));
    let r = f.exchange(&t).await?;
    assert_refused(
        &r,
        401,
        "invalid_client",
        70023,
        &[&lifetime.to_string(), "90000"],
    );

    // Within the limits: 24 h lifetime; expired 30 s ago (inside the clock leeway).
    for claims in [
        json!({"iat": now, "nbf": now, "exp": now + 24 * 3600}),
        json!({"iat": now - 600, "nbf": now - 600, "exp": now - 30}),
    ] {
        let t = f.issuer.sign(&f.claims_with(claims.clone()));
        let r = f.exchange(&t).await?;
        assert_eq!(r.code(), 200, "{claims}: {}", r.body);
    }
    Ok(())
}

/// `alg` values that must never verify: the header alone decides.
#[tokio::test]
async fn forged_signatures_and_algorithms_are_refused() -> Result<()> {
    let f = fixture("https://issuer.forgery.test").await?;
    let claims = f.issuer.claims(SUBJECT);
    let good = f.issuer.sign(&claims);
    assert_eq!(f.exchange(&good).await?.code(), 200);
    let payload = b64url(claims.to_string().as_bytes());

    // Bad signature: one signature character changed.
    let (input, sig) = good.rsplit_once('.').unwrap();
    let mut chars: Vec<char> = sig.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{input}.{}", chars.into_iter().collect::<String>());
    let r = f.exchange(&tampered).await?;
    assert_refused(&r, 401, "invalid_client", 700027, &["signature"]);

    // Claims changed after signing.
    let mut elevated = claims.clone();
    elevated["sub"] = json!("system:serviceaccount:kube-system:admin");
    let (header_b64, _) = good.split_once('.').unwrap();
    let swapped = format!(
        "{header_b64}.{}.{}",
        b64url(elevated.to_string().as_bytes()),
        good.rsplit_once('.').unwrap().1
    );
    let r = f.exchange(&swapped).await?;
    assert_refused(&r, 401, "invalid_client", 700027, &["signature"]);

    // alg none, with and without a signature part.
    for alg in ["none", "None"] {
        let h = b64url(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        for t in [format!("{h}.{payload}."), format!("{h}.{payload}.AQID")] {
            let r = f.exchange(&t).await?;
            assert_refused(&r, 400, "invalid_request", 50027, &["none"]);
        }
    }

    // HS256 keyed with the issuer's public key (DER, PEM-ish base64, JWK JSON).
    let public_der = f.issuer.rsa.public_spki_der().to_vec();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &public_der)
    );
    let jwk = serde_json::to_vec(&f.issuer.rsa.public_jwk())?;
    for secret in [public_der.clone(), pem.into_bytes(), jwk] {
        let h = b64url(
            json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
                .to_string()
                .as_bytes(),
        );
        let input = format!("{h}.{payload}");
        let mac = hmac_sha256(&secret, input.as_bytes());
        let r = f.exchange(&format!("{input}.{}", b64url(&mac))).await?;
        assert_refused(&r, 400, "invalid_request", 50027, &["HS256"]);
    }

    // An EC signature presented under the RSA key's kid (ES256 with an RSA key), and
    // the reverse: refused, whatever the attacker's key.
    let ec_as_rsa = SigningKey::generate(Alg::ES256, "rsa-1".into())?;
    let r = f.exchange(&ec_as_rsa.sign_jwt("JWT", &claims)?).await?;
    let desc = assert_refused(&r, 401, "invalid_client", 700027, &["ES256"]);
    assert!(desc.contains("RSA") || desc.contains("Rsa"), "{desc}");
    let rsa_as_ec = TestIssuer::sign_raw(
        &f.issuer.rsa,
        &json!({"alg": "RS256", "typ": "JWT", "kid": "ec-1"}),
        &claims,
    );
    let r = f.exchange(&rsa_as_ec).await?;
    assert_refused(&r, 401, "invalid_client", 700027, &["RS256"]);
    Ok(())
}

#[tokio::test]
async fn key_pointing_headers_are_ignored() -> Result<()> {
    let f = fixture("https://issuer.headers.test").await?;
    let claims = f.issuer.claims(SUBJECT);
    let attacker = SigningKey::generate(Alg::RS256, "attacker".into())?;
    let elsewhere = json!({
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "jwk": attacker.public_jwk(),
        "x5c": [base64::Engine::encode(&base64::engine::general_purpose::STANDARD, attacker.public_spki_der())],
    });

    // Signed by the issuer's key: the extra headers change nothing.
    let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"});
    for (k, v) in elsewhere.as_object().unwrap() {
        header[k] = v.clone();
    }
    let t = TestIssuer::sign_raw(&f.issuer.rsa, &header, &claims);
    let r = f.exchange(&t).await?;
    assert_eq!(
        r.code(),
        200,
        "issuer-signed token with jku/x5u/jwk/x5c: {}",
        r.body
    );

    // Signed by the attacker's key, which the header carries / points at.
    let mut attack = header.clone();
    attack["kid"] = json!("attacker");
    let t = TestIssuer::sign_raw(&attacker, &attack, &claims);
    let r = f.exchange(&t).await?;
    assert_refused(&r, 401, "invalid_client", 7000272, &["attacker"]);
    // The same under the issuer's kid: the issuer's key does not verify it.
    let t = TestIssuer::sign_raw(&attacker, &header, &claims);
    let r = f.exchange(&t).await?;
    assert_refused(&r, 401, "invalid_client", 700027, &["signature"]);
    // And with no kid at all: the embedded key is still not used.
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    let t = TestIssuer::sign_raw(&attacker, &no_kid, &claims);
    let r = f.exchange(&t).await?;
    assert_refused(&r, 401, "invalid_client", 700027, &["signature"]);
    Ok(())
}

#[tokio::test]
async fn malformed_and_oversized_tokens_fail_fast() -> Result<()> {
    let f = fixture("https://issuer.malformed.test").await?;
    let claims = f.issuer.claims(SUBJECT);

    // Over 16 KiB (a padded but otherwise valid token).
    let mut big = claims.clone();
    big["padding"] = json!("x".repeat(17 * 1024));
    let t = f.issuer.sign(&big);
    assert!(t.len() > 16 * 1024);
    let started = Instant::now();
    let r = f.exchange(&t).await?;
    let took = started.elapsed();
    assert_refused(&r, 400, "invalid_request", 50027, &["16384"]);
    assert!(
        took < Duration::from_secs(2),
        "oversized token took {took:?}"
    );

    // Ten thousand dots, and dots around base64.
    for t in [
        ".".repeat(10_000),
        format!("{}.{}", "a".repeat(100), ".".repeat(10_000)),
    ] {
        let started = Instant::now();
        let r = f.exchange(&t).await?;
        let took = started.elapsed();
        assert_refused(
            &r,
            400,
            "invalid_request",
            50027,
            &["three dot-separated parts"],
        );
        assert!(took < Duration::from_secs(2), "dotted token took {took:?}");
    }

    // A JWE (five parts), garbage, a non-JSON payload.
    let h = b64url(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    let r = f.exchange(&format!("{h}.a.b.c.d")).await?;
    assert_refused(&r, 400, "invalid_request", 50027, &["JWE"]);
    let r = f.exchange("not-a-token").await?;
    assert_refused(&r, 400, "invalid_request", 50027, &[]);
    let h = b64url(br#"{"alg":"RS256","kid":"rsa-1"}"#);
    let r = f
        .exchange(&format!("{h}.{}.AQID", b64url(b"[1,2]")))
        .await?;
    assert_refused(&r, 400, "invalid_request", 50027, &["payload"]);
    Ok(())
}

#[tokio::test]
async fn claims_of_the_wrong_type_are_errors_not_absent() -> Result<()> {
    let f = fixture("https://issuer.claim-types.test").await?;
    let far = now() + 10 * 365 * 86400;
    for (claim, value) in [
        ("exp", json!(far.to_string())),
        ("aud", json!(5)),
        ("iss", json!([f.issuer.issuer.clone()])),
        ("sub", json!({"name": SUBJECT})),
        // A string nbf far in the future: skipped as "absent", the token would pass.
        ("nbf", json!(far.to_string())),
        ("iat", json!(null)),
    ] {
        let mut c = f.issuer.claims(SUBJECT);
        c[claim] = value.clone();
        let t = f.issuer.sign(&c);
        let r = f.exchange(&t).await?;
        assert_refused(
            &r,
            400,
            "invalid_request",
            50027,
            &[&format!("\"{claim}\"")],
        );
    }
    // Missing required claims are named too.
    for claim in ["iss", "sub", "aud", "exp"] {
        let mut c = f.issuer.claims(SUBJECT);
        c.as_object_mut().unwrap().remove(claim);
        let r = f.exchange(&f.issuer.sign(&c)).await?;
        assert_refused(
            &r,
            400,
            "invalid_request",
            50027,
            &[&format!("\"{claim}\"")],
        );
    }
    Ok(())
}

#[tokio::test]
async fn keyless_access_tokens_are_not_assertions() -> Result<()> {
    let f = fixture("https://issuer.own-token.test").await?;
    // The admin's token and a managed identity's token, both minted by Keyless.
    let admin = f.server.admin_token().await?;
    let r = f
        .exchange(&f.issuer.sign(&f.issuer.claims(SUBJECT)))
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let mi = r.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&mi)["appid"], json!(f.identity.client_id));
    for t in [&admin, &mi] {
        let r = f.exchange(t).await?;
        assert_refused(&r, 401, "invalid_client", 700222, &["Keyless"]);
    }
    // Even when the identity trusts Keyless' own issuer.
    let own = format!("{}/{}/", f.server.url, f.server.admin.tenant_id);
    let mi_sub = jwt_claims(&mi)["sub"].as_str().unwrap().to_string();
    let r = f
        .server
        .put_fic("rg-sec", "target", "self-trust", credential(&own, &mi_sub))
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let r = f.exchange(&mi).await?;
    assert_refused(&r, 401, "invalid_client", 700222, &[]);
    assert_eq!(jwt_header(&mi)["alg"], json!("ES256"));
    Ok(())
}

#[tokio::test]
async fn private_issuers_need_the_allow_flag_and_a_trusted_ca() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let token = cluster.mint("ns1", "app").await?;
    let subject = "system:serviceaccount:ns1:app";

    // No --allow-private-issuers: localhost is refused before any connection.
    let server = Server::start(&[]).await?;
    let identity = server
        .identity_with_credential("rg-priv", "private", credential(&cluster.issuer, subject))
        .await?;
    let r = server.exchange(&identity.client_id, &token).await?;
    let desc = assert_refused(&r, 400, "invalid_request", 50166, &[&cluster.issuer]);
    assert!(!desc.contains("allow-private-issuers"), "{desc}");
    let why = explain_detail(&server, &identity.client_id, &token).await?;
    assert!(why.contains("--allow-private-issuers"), "{why}");

    // Allowed, but the dev cluster's CA is not trusted: the TLS check fails.
    let server = Server::start(&["--allow-private-issuers"]).await?;
    let identity = server
        .identity_with_credential("rg-priv", "private", credential(&cluster.issuer, subject))
        .await?;
    let r = server.exchange(&identity.client_id, &token).await?;
    let desc = assert_refused(&r, 400, "invalid_request", 50166, &[&cluster.issuer]);
    assert!(!desc.to_lowercase().contains("certificate"), "{desc}");
    let why = explain_detail(&server, &identity.client_id, &token).await?;
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    Ok(())
}

/// What `explain` (an operator) is told about the failing checks.
async fn explain_detail(server: &Server, client_id: &str, assertion: &str) -> Result<String> {
    let r = server
        .armv(
            reqwest::Method::POST,
            "/providers/Keyless/explain",
            crate::testkit::KEYLESS_API,
            Some(json!({"clientId": client_id, "assertion": assertion})),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(r.body["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["ok"] == json!(false))
        .map(|s| s["detail"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n"))
}

#[tokio::test]
async fn missing_assertion_type_and_empty_assertions_are_7000218() -> Result<()> {
    let f = fixture("https://issuer.missing.test").await?;
    let ex = f.server.exchanger();
    let good = f.issuer.sign(&f.issuer.claims(SUBJECT));
    let scope = format!("{}.default", f.server.admin.resource_manager_url);
    let cid = f.identity.client_id.as_str();
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", cid),
        ("scope", scope.as_str()),
    ];

    // An assertion without its type, and with a wrong type.
    for ty in [
        None,
        Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
    ] {
        let mut form = base.to_vec();
        form.push(("client_assertion", good.as_str()));
        if let Some(t) = ty {
            form.push(("client_assertion_type", t));
        }
        let r = ex.post_v2(&form).await?;
        assert_refused(
            &r,
            400,
            "invalid_request",
            7000218,
            &["client_assertion_type", JWT_BEARER],
        );
    }

    // Empty or blank assertions, and none at all.
    for assertion in [Some(""), Some("  \n"), None] {
        let mut form = base.to_vec();
        form.push(("client_assertion_type", JWT_BEARER));
        if let Some(a) = assertion {
            form.push(("client_assertion", a));
        }
        let r = ex.post_v2(&form).await?;
        assert_refused(&r, 401, "invalid_client", 7000218, &["client_assertion"]);
    }
    Ok(())
}
