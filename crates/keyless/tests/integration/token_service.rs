//! The Entra-compatible token service: discovery, JWKS, v1/v2 token endpoints, error
//! shape and key rotation.

use anyhow::Result;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{KEYLESS_API, Reply, SUB_API, Server, is_guid, jwt_claims, jwt_header};

fn assert_no_store(r: &Reply) {
    let cc = r.header("cache-control").unwrap_or_default();
    assert!(cc.contains("no-store"), "Cache-Control: {cc:?}");
}

/// `YYYY-MM-DD HH:MM:SSZ`.
fn is_entra_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[tokio::test]
async fn discovery_documents_and_jwks() -> Result<()> {
    let server = Server::start(&[]).await?;
    let t = &server.admin.tenant_id;
    let base = format!("{}/{t}", server.url);

    for path in [
        format!("/{t}/v2.0/.well-known/openid-configuration"),
        // MSAL builds this from an authority with a trailing slash.
        format!("/{t}//v2.0/.well-known/openid-configuration"),
    ] {
        let r = server.get(&path).await?;
        assert_eq!(r.code(), 200, "{path}: {}", r.body);
        let d = &r.body;
        assert_eq!(d["issuer"], json!(format!("{base}/v2.0")), "{path}");
        assert_eq!(
            d["token_endpoint"],
            json!(format!("{base}/oauth2/v2.0/token"))
        );
        assert_eq!(
            d["authorization_endpoint"],
            json!(format!("{base}/oauth2/v2.0/authorize"))
        );
        assert_eq!(d["jwks_uri"], json!(format!("{base}/discovery/v2.0/keys")));
        let methods = d["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert!(methods.contains(&json!("client_secret_post")), "{d}");
        assert!(methods.contains(&json!("private_key_jwt")), "{d}");
        assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
    }

    let r = server
        .get(&format!("/{t}/.well-known/openid-configuration"))
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let d = &r.body;
    assert_eq!(d["issuer"], json!(format!("{base}/")));
    assert_eq!(d["token_endpoint"], json!(format!("{base}/oauth2/token")));
    assert_eq!(
        d["authorization_endpoint"],
        json!(format!("{base}/oauth2/authorize"))
    );
    assert_eq!(d["jwks_uri"], json!(format!("{base}/discovery/keys")));

    // Both JWKS paths publish the key that signs the admin's tokens.
    let token = server.admin_token().await?;
    let header = jwt_header(&token);
    assert_eq!(header["typ"], json!("JWT"));
    assert_eq!(header["alg"], json!("ES256"));
    let kid = header["kid"].as_str().unwrap();
    for path in [
        format!("/{t}/discovery/v2.0/keys"),
        format!("/{t}/discovery/keys"),
    ] {
        let r = server.get(&path).await?;
        assert_eq!(r.code(), 200, "{path}: {}", r.body);
        let keys = r.body["keys"].as_array().unwrap();
        let key = keys
            .iter()
            .find(|k| k["kid"] == json!(kid))
            .unwrap_or_else(|| panic!("kid {kid} not in {path}: {}", r.body));
        assert_eq!(key["kty"], json!("EC"), "{key}");
        assert_eq!(key["crv"], json!("P-256"), "{key}");
        assert!(key["x"].is_string() && key["y"].is_string(), "{key}");
        for k in keys {
            assert!(k.get("d").is_none(), "private key material published: {k}");
        }
    }

    // Unknown tenants are 400 invalid_tenant / AADSTS90002 everywhere.
    let other = uuid::Uuid::new_v4().to_string();
    for path in [
        format!("/{other}/v2.0/.well-known/openid-configuration"),
        format!("/{other}/.well-known/openid-configuration"),
        format!("/{other}/discovery/v2.0/keys"),
        "/not-a-tenant/discovery/keys".to_string(),
    ] {
        let r = server.get(&path).await?;
        r.oauth_error(400, "invalid_tenant", 90002);
    }
    Ok(())
}

#[tokio::test]
async fn v2_token_success_shape_and_claims() -> Result<()> {
    let server = Server::start(&[]).await?;
    let r = server.request_token(&server.arm_scope()).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_no_store(&r);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = r.body.as_object().unwrap();
    let mut fields: Vec<&str> = body.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["access_token", "expires_in", "ext_expires_in", "token_type"],
        "{}",
        r.body
    );
    assert_eq!(body["token_type"], json!("Bearer"));
    assert!(body["expires_in"].is_i64(), "{}", r.body);
    assert!(body["ext_expires_in"].is_i64(), "{}", r.body);
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((3540..=3600).contains(&expires_in), "{expires_in}");

    let token = body["access_token"].as_str().unwrap();
    let c = jwt_claims(token);
    let a = &server.admin;
    assert_eq!(c["aud"], json!(a.resource_manager_url));
    assert_eq!(c["iss"], json!(format!("{}/{}/", server.url, a.tenant_id)));
    assert_eq!(c["tid"], json!(a.tenant_id));
    assert_eq!(c["appid"], json!(a.client_id));
    assert_eq!(c["appidacr"], json!("1"));
    assert_eq!(c["idtyp"], json!("app"));
    assert_eq!(c["ver"], json!("1.0"));
    let oid = c["oid"].as_str().unwrap();
    assert!(is_guid(oid), "oid {oid}");
    assert_ne!(oid, a.client_id, "oid is the object id, not the client id");
    assert_eq!(c["sub"], json!(oid));
    assert!(c["uti"].as_str().is_some_and(|u| !u.is_empty()));
    let (iat, nbf, exp) = (
        c["iat"].as_i64().unwrap(),
        c["nbf"].as_i64().unwrap(),
        c["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert!(nbf <= iat + 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    assert!((iat - now).abs() < 120, "iat {iat} vs now {now}");

    // Every token is unique.
    let again = server.token_for(&server.arm_scope()).await?;
    assert_ne!(jwt_claims(&again)["uti"], c["uti"]);

    // The az scope (`…//.default`) and the SDK scope without the trailing slash name the
    // same resource; so does the vault, with its own audience.
    for scope in [
        format!("{}//.default", server.url),
        format!("{}/.default", server.url),
    ] {
        let t = server.token_for(&scope).await?;
        assert_eq!(
            jwt_claims(&t)["aud"],
            json!(a.resource_manager_url),
            "{scope}"
        );
        // And the token works on the management API.
        let r = server
            .arm_raw(
                Method::GET,
                &format!("/subscriptions?api-version={SUB_API}"),
                Some(&format!("Bearer {t}")),
                None,
            )
            .await?;
        assert_eq!(r.code(), 200, "{scope}: {}", r.body);
    }
    let vault = format!("https://vault.localhost:{}", server.port);
    let t = server.token_for(&format!("{vault}/.default")).await?;
    assert_eq!(jwt_claims(&t)["aud"], json!(vault));

    // client_secret_basic works too.
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", a.client_id, a.client_secret));
    let r = server
        .post_form(
            &server.token_path_v2(),
            &[
                ("grant_type", "client_credentials"),
                ("scope", &server.arm_scope()),
            ],
            &[("authorization", &format!("Basic {basic}"))],
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn v1_token_has_string_numbers_and_resource() -> Result<()> {
    let server = Server::start(&[]).await?;
    let a = &server.admin;
    for resource in [a.resource_manager_url.clone(), server.url.clone()] {
        let r = server
            .post_form(
                &server.token_path_v1(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &a.client_id),
                    ("client_secret", &a.client_secret),
                    ("resource", &resource),
                ],
                &[],
            )
            .await?;
        assert_eq!(r.code(), 200, "{resource}: {}", r.body);
        assert_no_store(&r);
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        let b = &r.body;
        let mut fields: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "access_token",
                "expires_in",
                "expires_on",
                "ext_expires_in",
                "not_before",
                "resource",
                "token_type"
            ]
        );
        assert_eq!(b["token_type"], json!("Bearer"));
        let num = |k: &str| -> i64 {
            b[k].as_str()
                .unwrap_or_else(|| panic!("{k} is not a string: {b}"))
                .parse()
                .unwrap_or_else(|_| panic!("{k} is not a number: {b}"))
        };
        assert_eq!(num("expires_in"), 3600);
        assert_eq!(num("ext_expires_in"), 3600);
        assert_eq!(num("expires_on") - num("not_before"), 3600);
        assert_eq!(b["resource"], json!(a.resource_manager_url));
        let c = jwt_claims(b["access_token"].as_str().unwrap());
        assert_eq!(c["aud"], json!(a.resource_manager_url));
        assert_eq!(c["exp"].as_i64().unwrap(), num("expires_on"));
        assert_eq!(c["nbf"].as_i64().unwrap(), num("not_before"));
    }

    // v1 needs `resource`, not `scope`.
    let r = server
        .post_form(
            &server.token_path_v1(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.client_id),
                ("client_secret", &a.client_secret),
                ("scope", &server.arm_scope()),
            ],
            &[],
        )
        .await?;
    let b = r.oauth_error(400, "invalid_request", 900144);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("'resource'"),
        "{b}"
    );
    Ok(())
}

#[tokio::test]
async fn token_lifetime_flag_and_public_host() -> Result<()> {
    let server = Server::start(&["--token-lifetime", "600", "--public-host", "127.0.0.1"]).await?;
    let authority = format!("https://127.0.0.1:{}", server.port);
    assert_eq!(server.url, authority);
    assert_eq!(server.admin.authority_host, authority);
    assert_eq!(server.admin.resource_manager_url, format!("{authority}/"));

    let t = &server.admin.tenant_id;
    let r = server
        .get(&format!("/{t}/v2.0/.well-known/openid-configuration"))
        .await?;
    assert_eq!(r.body["issuer"], json!(format!("{authority}/{t}/v2.0")));
    assert_eq!(
        r.body["token_endpoint"],
        json!(format!("{authority}/{t}/oauth2/v2.0/token"))
    );

    let r = server.request_token(&server.arm_scope()).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["expires_in"], json!(600));
    let c = jwt_claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert_eq!(c["iss"], json!(format!("{authority}/{t}/")));
    assert_eq!(c["aud"], json!(format!("{authority}/")));

    // `localhost` is not this server's public name: its scope is an unknown resource.
    let r = server
        .request_token(&format!("https://localhost:{}/.default", server.port))
        .await?;
    r.oauth_error(400, "invalid_resource", 500011);
    Ok(())
}

#[tokio::test]
async fn token_errors_have_entra_shape_and_codes() -> Result<()> {
    let server = Server::start(&[]).await?;
    let a = &server.admin;
    let scope = server.arm_scope();
    let v2 = server.token_path_v2();
    let cc = "client_credentials";

    // Wrong secret: 401 invalid_client, and every documented field is there.
    let correlation = "0f1e2d3c-aaaa-4bbb-8ccc-123456789abc";
    let r = server
        .post_form(
            &v2,
            &[
                ("grant_type", cc),
                ("client_id", &a.client_id),
                ("client_secret", "wrong-secret"),
                ("scope", &scope),
            ],
            &[("client-request-id", correlation)],
        )
        .await?;
    let b = r.oauth_error(401, "invalid_client", 7000215).clone();
    assert_no_store(&r);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let mut fields: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "correlation_id",
            "error",
            "error_codes",
            "error_description",
            "error_uri",
            "timestamp",
            "trace_id"
        ]
    );
    assert_eq!(b["correlation_id"], json!(correlation));
    let trace = b["trace_id"].as_str().unwrap();
    assert!(is_guid(trace), "trace_id {trace}");
    let ts = b["timestamp"].as_str().unwrap();
    assert!(is_entra_timestamp(ts), "timestamp {ts}");
    let desc = b["error_description"].as_str().unwrap();
    assert!(desc.contains(&format!("Trace ID: {trace}")), "{desc}");
    assert!(
        desc.contains(&format!("Correlation ID: {correlation}")),
        "{desc}"
    );
    assert!(desc.contains(&format!("Timestamp: {ts}")), "{desc}");
    assert!(
        !desc.contains("wrong-secret"),
        "the secret is echoed: {desc}"
    );
    assert_eq!(
        b["error_uri"],
        json!(format!("{}/error?code=7000215", server.url))
    );

    // x-ms-client-request-id is honoured too; a malformed one is replaced.
    let r = server
        .post_form(
            &v2,
            &[
                ("grant_type", cc),
                ("client_id", &a.client_id),
                ("scope", &scope),
                ("client_secret", "x"),
            ],
            &[("x-ms-client-request-id", "abc-123")],
        )
        .await?;
    assert_eq!(r.body["correlation_id"], json!("abc-123"));
    let r = server
        .post_form(
            &v2,
            &[
                ("grant_type", cc),
                ("client_id", &a.client_id),
                ("scope", &scope),
                ("client_secret", "x"),
            ],
            &[("client-request-id", "has spaces<script>")],
        )
        .await?;
    let generated = r.body["correlation_id"].as_str().unwrap();
    assert!(is_guid(generated), "correlation id {generated}");

    // Unknown client in this tenant.
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = server
        .post_form(
            &v2,
            &[
                ("grant_type", cc),
                ("client_id", &unknown),
                ("client_secret", "x"),
                ("scope", &scope),
            ],
            &[],
        )
        .await?;
    let b = r.oauth_error(400, "unauthorized_client", 700016);
    assert!(
        b["error_description"].as_str().unwrap().contains(&unknown),
        "{b}"
    );

    // Unknown tenant.
    let other = uuid::Uuid::new_v4().to_string();
    let r = server
        .post_form(
            &format!("/{other}/oauth2/v2.0/token"),
            &[
                ("grant_type", cc),
                ("client_id", &a.client_id),
                ("client_secret", &a.client_secret),
                ("scope", &scope),
            ],
            &[],
        )
        .await?;
    r.oauth_error(400, "invalid_tenant", 90002);

    // Scopes: not `/.default`, several, or an unknown resource.
    for bad in [
        server.url.clone(),
        format!("{}/user_impersonation", server.url),
        format!("{scope} {scope}"),
    ] {
        let r = server
            .post_form(
                &v2,
                &[
                    ("grant_type", cc),
                    ("client_id", &a.client_id),
                    ("client_secret", &a.client_secret),
                    ("scope", &bad),
                ],
                &[],
            )
            .await?;
        r.oauth_error(400, "invalid_scope", 1002012);
    }
    for unknown in [
        "https://graph.microsoft.com/.default".to_string(),
        "https://management.azure.com//.default".to_string(),
        format!("https://localhost:{}/other/.default", server.port),
    ] {
        let r = server
            .post_form(
                &v2,
                &[
                    ("grant_type", cc),
                    ("client_id", &a.client_id),
                    ("client_secret", &a.client_secret),
                    ("scope", &unknown),
                ],
                &[],
            )
            .await?;
        let b = r.oauth_error(400, "invalid_resource", 500011);
        assert!(
            b["error_description"]
                .as_str()
                .unwrap()
                .contains("was not found"),
            "{b}"
        );
    }

    // Missing parameters.
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("grant_type", cc),
                ("client_secret", "x"),
                ("scope", &scope),
            ],
            "client_id",
        ),
        (
            &[
                ("client_id", &a.client_id),
                ("client_secret", "x"),
                ("scope", &scope),
            ],
            "grant_type",
        ),
        (
            &[
                ("grant_type", cc),
                ("client_id", &a.client_id),
                ("client_secret", "x"),
            ],
            "scope",
        ),
    ];
    for (form, param) in cases {
        let r = server.post_form(&v2, form, &[]).await?;
        let b = r.oauth_error(400, "invalid_request", 900144);
        assert!(
            b["error_description"]
                .as_str()
                .unwrap()
                .contains(&format!("'{param}'")),
            "{param}: {b}"
        );
    }

    // Neither a secret nor an assertion.
    let r = server
        .post_form(
            &v2,
            &[
                ("grant_type", cc),
                ("client_id", &a.client_id),
                ("scope", &scope),
            ],
            &[],
        )
        .await?;
    r.oauth_error(401, "invalid_client", 7000218);

    // Unsupported grants.
    for grant in ["password", "authorization_code", "refresh_token"] {
        let r = server
            .post_form(
                &v2,
                &[
                    ("grant_type", grant),
                    ("client_id", &a.client_id),
                    ("client_secret", &a.client_secret),
                    ("scope", &scope),
                ],
                &[],
            )
            .await?;
        let b = r.oauth_error(400, "unsupported_grant_type", 70003);
        assert!(
            b["error_description"].as_str().unwrap().contains(grant),
            "{b}"
        );
    }

    // Not a form.
    let r = server
        .post_raw(
            &v2,
            "application/json",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        )
        .await?;
    r.oauth_error(400, "invalid_request", 900144);

    // GET is not the token endpoint.
    let r = server.get(&v2).await?;
    assert!(
        (400..500).contains(&r.code()),
        "GET token endpoint: {} {}",
        r.code(),
        r.body
    );
    Ok(())
}

#[tokio::test]
async fn key_rotation_publishes_then_signs_and_keeps_old_tokens_valid() -> Result<()> {
    let server = Server::start(&[]).await?;
    let old_token = server.admin_token().await?;
    let old_kid = jwt_header(&old_token)["kid"].as_str().unwrap().to_string();
    assert_eq!(server.jwks_kids().await?, vec![old_kid.clone()]);
    let rotate = "/providers/Keyless/signingKeys/rotate";

    // Without an api-version: ARM's error.
    let r = server.arm(Method::POST, rotate, None).await?;
    r.arm_error(400, "MissingApiVersionParameter");
    let r = server.armv(Method::POST, rotate, KEYLESS_API, None).await?;
    let r2 = server
        .armv(
            Method::POST,
            &format!("{rotate}?prepublishSeconds=-1"),
            KEYLESS_API,
            None,
        )
        .await?;
    r2.arm_error(400, "InvalidParameter");

    // An immediate rotation: new kid, published alongside the old one, signs at once.
    assert_eq!(r.code(), 200, "{}", r.body);
    let new_kid = r.body["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    assert_eq!(r.body["alg"], json!("ES256"));
    let published: Vec<Value> = r.body["publishedKeys"].as_array().unwrap().clone();
    assert!(
        published.contains(&json!(new_kid)) && published.contains(&json!(old_kid)),
        "{}",
        r.body
    );
    let kids = server.jwks_kids().await?;
    assert!(
        kids.contains(&new_kid) && kids.contains(&old_kid),
        "{kids:?}"
    );

    let fresh = server.token_for(&server.arm_scope()).await?;
    assert_eq!(jwt_header(&fresh)["kid"], json!(new_kid));

    // Both tokens work on the management API.
    for t in [&old_token, &fresh] {
        let r = server
            .arm_raw(
                Method::GET,
                &format!("{}?api-version={SUB_API}", server.sub_path()),
                Some(&format!("Bearer {t}")),
                None,
            )
            .await?;
        assert_eq!(r.code(), 200, "{}", r.body);
    }

    // A pre-published rotation: the next key is in the JWKS but does not sign yet.
    let r = server
        .armv(
            Method::POST,
            &format!("{rotate}?prepublishSeconds=3600"),
            KEYLESS_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let next_kid = r.body["kid"].as_str().unwrap().to_string();
    let active_from = r.body["activeFrom"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    assert!(active_from >= now + 3500, "activeFrom {active_from}");
    assert!(server.jwks_kids().await?.contains(&next_kid));
    let t = server.token_for(&server.arm_scope()).await?;
    assert_eq!(
        jwt_header(&t)["kid"],
        json!(new_kid),
        "a pre-published key must not sign yet"
    );

    // The state survives a restart: same keys published, the same key signs, and the
    // very first key's token is still accepted.
    let kids = server.jwks_kids().await?;
    for k in [&old_kid, &new_kid, &next_kid] {
        assert!(kids.contains(k), "{k} not published: {kids:?}");
    }
    let mut server = server;
    server.restart().await?;
    assert_eq!(server.jwks_kids().await?, kids);
    let t = server.token_for(&server.arm_scope()).await?;
    assert_eq!(jwt_header(&t)["kid"], json!(new_kid));
    let r = server
        .arm_raw(
            Method::GET,
            &format!("{}?api-version={SUB_API}", server.sub_path()),
            Some(&format!("Bearer {old_token}")),
            None,
        )
        .await?;
    assert_eq!(
        r.code(),
        200,
        "token of the first key after restart: {}",
        r.body
    );
    Ok(())
}

#[tokio::test]
async fn immediate_rotation_after_a_prepublished_one_takes_over_at_once() -> Result<()> {
    let server = Server::start(&[]).await?;
    let rotate = "/providers/Keyless/signingKeys/rotate";
    // Several rounds: the failure depends on the random order of kids that tie.
    for _ in 0..5 {
        let r = server.armv(Method::POST, rotate, KEYLESS_API, None).await?;
        assert_eq!(r.code(), 200, "{}", r.body);
        let r = server
            .armv(
                Method::POST,
                &format!("{rotate}?prepublishSeconds=3600"),
                KEYLESS_API,
                None,
            )
            .await?;
        assert_eq!(r.code(), 200, "{}", r.body);
        let r = server.armv(Method::POST, rotate, KEYLESS_API, None).await?;
        assert_eq!(r.code(), 200, "{}", r.body);
        let last = r.body["kid"].clone();
        let t = server.token_for(&server.arm_scope()).await?;
        assert_eq!(
            jwt_header(&t)["kid"],
            last,
            "the newest active key must sign"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_tenant_can_switch_to_rs256_and_keeps_it_across_rotations() -> Result<()> {
    let s = Server::start(&[]).await?;
    let before = s.token_for(&s.arm_scope()).await?;
    assert_eq!(jwt_header(&before)["alg"], "ES256");
    let r = s
        .armv(
            Method::POST,
            "/providers/Keyless/signingKeys/rotate?alg=RS256",
            KEYLESS_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["alg"], "RS256");
    let rsa = s.token_for(&s.arm_scope()).await?;
    assert_eq!(jwt_header(&rsa)["alg"], "RS256");
    // A later rotation without alg stays on RS256; both tokens keep working.
    let r = s
        .armv(
            Method::POST,
            "/providers/Keyless/signingKeys/rotate",
            KEYLESS_API,
            None,
        )
        .await?;
    assert_eq!(r.body["alg"], "RS256");
    for t in [&before, &rsa] {
        let r = s
            .arm_raw(
                Method::GET,
                &format!("{}?api-version={SUB_API}", s.sub_path()),
                Some(&format!("Bearer {t}")),
                None,
            )
            .await?;
        assert_eq!(r.code(), 200, "{}", r.body);
    }
    let bad = s
        .armv(
            Method::POST,
            "/providers/Keyless/signingKeys/rotate?alg=HS256",
            KEYLESS_API,
            None,
        )
        .await?;
    bad.arm_error(400, "InvalidParameter");
    Ok(())
}
