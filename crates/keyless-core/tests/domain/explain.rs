//! `explain` runs the exchange's checks: a token the exchange refuses fails explain at
//! the step that makes that refusal, with the same AADSTS code.

use keyless_jose::{Alg, SigningKey};
use serde_json::json;

use crate::harness::{Harness, STATIC_ISSUER, sa_subject, unpublished_key};

#[tokio::test]
async fn a_good_token_passes_every_step() {
    let h = Harness::new().await;
    let id = h
        .federated_identity("explained", STATIC_ISSUER, &sa_subject("ns1", "app"))
        .await;
    let t = h.static_token("ns1", "app");
    let steps =
        h.k.explain(&h.admin.caller, &id.client_id, &t)
            .await
            .unwrap();
    assert!(steps.iter().all(|s| s.ok), "{steps:#?}");
    assert_eq!(steps.len(), 10, "{steps:#?}");
    h.exchange(&id.client_id, &t).await.unwrap();
}

#[tokio::test]
async fn a_refused_token_fails_explain_at_the_step_with_the_exchange_code() {
    let h = Harness::new().await;
    let id = h
        .federated_identity("explained", STATIC_ISSUER, &sa_subject("ns1", "app"))
        .await;
    let claims = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = h.sa_claims(STATIC_ISSUER, "ns1", "app");
        f(&mut c);
        c
    };
    let now = h.k.now();
    let same_kid_other_key = SigningKey::generate(Alg::RS256, "static-k1".into()).unwrap();
    let cases: Vec<(&str, String, &str, u32)> = vec![
        ("malformed", "not-a-jwt".into(), "token format", 50027),
        (
            "untrusted issuer",
            Harness::sign(
                &h.static_key,
                &claims(&|c| c["iss"] = json!("https://unknown.example")),
            ),
            "issuer trusted",
            700211,
        ),
        (
            "unknown kid",
            Harness::sign(&unpublished_key("nobody-publishes-me"), &claims(&|_| {})),
            "signing key",
            7000272,
        ),
        (
            "forged signature",
            Harness::sign(&same_kid_other_key, &claims(&|_| {})),
            "signature",
            700027,
        ),
        (
            "expired",
            Harness::sign(
                &h.static_key,
                &claims(&|c| {
                    c["iat"] = json!(now - 7200);
                    c["nbf"] = json!(now - 7200);
                    c["exp"] = json!(now - 3600);
                }),
            ),
            "validity period",
            700024,
        ),
        (
            "too long",
            Harness::sign(
                &h.static_key,
                &claims(&|c| c["exp"] = json!(now + 30 * 3600)),
            ),
            "validity period",
            70023,
        ),
        (
            "wrong audience",
            Harness::sign(&h.static_key, &claims(&|c| c["aud"] = json!("api://other"))),
            "federated credential",
            700212,
        ),
        (
            "wrong subject",
            h.static_token("ns1", "other"),
            "federated credential",
            700213,
        ),
    ];
    for (case, token, step, code) in cases {
        let refused = h.exchange(&id.client_id, &token).await.unwrap_err();
        assert_eq!(refused.code, code, "{case}: {refused}");
        let steps =
            h.k.explain(&h.admin.caller, &id.client_id, &token)
                .await
                .unwrap();
        let failed = steps.iter().find(|s| !s.ok).unwrap_or_else(|| {
            panic!("{case}: explain passed a token the exchange refused: {steps:#?}")
        });
        assert_eq!(failed.check, step, "{case}: {steps:#?}");
        // Explain words the refusal as the exchange does, plus what only an operator
        // may see (the caller got `refused.message` alone).
        assert_eq!(
            failed.detail,
            format!("AADSTS{}: {}", refused.code, refused.for_operator()),
            "{case}"
        );
        assert!(failed.detail.starts_with(&refused.to_string()), "{case}");
    }
}

#[tokio::test]
async fn an_unknown_client_fails_explain_at_the_identity_step() {
    let h = Harness::new().await;
    let client = "00000000-0000-4000-8000-0000000000aa";
    let t = h.static_token("ns1", "app");
    let refused = h.exchange(client, &t).await.unwrap_err();
    let steps = h.k.explain(&h.admin.caller, client, &t).await.unwrap();
    let failed = steps.iter().find(|s| !s.ok).unwrap();
    assert_eq!(failed.check, "identity");
    assert_eq!(failed.detail, refused.to_string());
    assert_eq!(refused.code, 700016);
}
