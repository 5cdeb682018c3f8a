//! Matching a verified assertion to a federated credential: the issuer compares
//! exactly, then the audience, then the subject or a claims-matching expression; a
//! miss names what differed and the closest credential.

use keyless_core::management::FederatedCredentialInput;
use serde_json::json;

use crate::harness::{AUDIENCE, Harness, STATIC_ISSUER, sa_subject, subject_credential};

#[tokio::test]
async fn an_issuer_differing_by_a_trailing_slash_is_refused_700211_with_a_hint_for_the_operator() {
    let h = Harness::new().await;
    let id = h.identity("rg-m", "slash").await;
    h.credential(
        &id,
        "with-slash",
        subject_credential(&format!("{STATIC_ISSUER}/"), &sa_subject("ns1", "app")),
    )
    .await;
    let e = h
        .exchange(&id.client_id, &h.static_token("ns1", "app"))
        .await
        .unwrap_err();
    assert_eq!(e.code, 700211, "{e}");
    // The signature was not checked yet: the caller is told the rule, the operator
    // which credential nearly matched.
    assert!(e.message.contains("issuers must match exactly"), "{e}");
    assert!(!e.message.contains("'with-slash'"), "{e}");
    assert!(e.for_operator().contains("'with-slash'"), "{e:?}");
}

#[tokio::test]
async fn an_issuer_no_credential_trusts_is_refused_700211_naming_the_trusted_ones_to_the_operator()
{
    let h = Harness::new().await;
    let id = h
        .federated_identity(
            "other",
            "https://elsewhere.example",
            &sa_subject("ns1", "app"),
        )
        .await;
    let e = h
        .exchange(&id.client_id, &h.static_token("ns1", "app"))
        .await
        .unwrap_err();
    assert_eq!(e.code, 700211, "{e}");
    assert!(!e.message.contains("elsewhere.example"), "{e}");
    assert!(
        e.for_operator().contains("'https://elsewhere.example'"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_wrong_audience_is_refused_700212_naming_the_expected_one() {
    let h = Harness::new().await;
    let id = h
        .federated_identity("aud", STATIC_ISSUER, &sa_subject("ns1", "app"))
        .await;
    let mut claims = h.sa_claims(STATIC_ISSUER, "ns1", "app");
    claims["aud"] = json!(["api://something-else"]);
    let e = h
        .exchange(&id.client_id, &Harness::sign(&h.static_key, &claims))
        .await
        .unwrap_err();
    assert_eq!(e.code, 700212, "{e}");
    assert!(
        e.message.contains("'api://something-else'") && e.message.contains(AUDIENCE),
        "{e}"
    );
}

#[tokio::test]
async fn a_wrong_subject_is_refused_700213_naming_the_closest_credential() {
    let h = Harness::new().await;
    let id = h.identity("rg-m", "closest").await;
    h.credential(
        &id,
        "far",
        subject_credential(STATIC_ISSUER, "repo:org/app"),
    )
    .await;
    h.credential(
        &id,
        "near",
        subject_credential(STATIC_ISSUER, &sa_subject("prod", "api")),
    )
    .await;
    let e = h
        .exchange(&id.client_id, &h.static_token("prod", "web"))
        .await
        .unwrap_err();
    assert_eq!(e.code, 700213, "{e}");
    assert!(
        e.message.contains("Closest credential 'near'")
            && e.message.contains("system:serviceaccount:prod:api"),
        "{e}"
    );
}

#[tokio::test]
async fn subjects_are_case_sensitive_and_the_miss_says_so() {
    let h = Harness::new().await;
    let id = h
        .federated_identity("case", STATIC_ISSUER, &sa_subject("prod", "App"))
        .await;
    let e = h
        .exchange(&id.client_id, &h.static_token("prod", "app"))
        .await
        .unwrap_err();
    assert_eq!(e.code, 700213, "{e}");
    assert!(e.message.contains("differ only in letter case"), "{e}");
}

fn expression_credential(expression: &str) -> FederatedCredentialInput {
    FederatedCredentialInput {
        issuer: STATIC_ISSUER.into(),
        subject: None,
        audiences: vec![AUDIENCE.into()],
        expression: Some(expression.into()),
    }
}

#[tokio::test]
async fn a_claims_matching_expression_accepts_every_subject_it_matches() {
    let h = Harness::new().await;
    let id = h.identity("rg-m", "expr").await;
    h.credential(
        &id,
        "prod-namespace",
        expression_credential("claims['sub'] matches 'system:serviceaccount:prod:*'"),
    )
    .await;
    for sa in ["api", "web", "worker"] {
        h.exchange(&id.client_id, &h.static_token("prod", sa))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_failing_expression_is_refused_7002131_naming_the_false_clause() {
    let h = Harness::new().await;
    let id = h.identity("rg-m", "expr-miss").await;
    h.credential(
        &id,
        "prod-namespace",
        expression_credential(
            "claims['sub'] matches 'system:serviceaccount:prod:*' and claims['jti'] eq fixed",
        ),
    )
    .await;
    let e = h
        .exchange(&id.client_id, &h.static_token("prod", "api"))
        .await
        .unwrap_err();
    assert_eq!(e.code, 7002131, "{e}");
    assert!(
        e.message.contains("'prod-namespace'") && e.message.contains("claims['jti']"),
        "{e}"
    );
}

#[tokio::test]
async fn an_exact_subject_wins_over_a_failing_expression() {
    let h = Harness::new().await;
    let id = h.identity("rg-m", "both").await;
    h.credential(
        &id,
        "expr",
        expression_credential("claims['sub'] matches 'repo:*'"),
    )
    .await;
    h.credential(
        &id,
        "exact",
        subject_credential(STATIC_ISSUER, &sa_subject("ns1", "app")),
    )
    .await;
    h.exchange(&id.client_id, &h.static_token("ns1", "app"))
        .await
        .unwrap();
}
