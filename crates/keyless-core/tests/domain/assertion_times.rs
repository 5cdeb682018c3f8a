//! Assertion validity: `exp`, `nbf` and `iat` are honoured with the configured leeway
//! (60 s), and no assertion may live longer than 25 hours. Checked through the token
//! endpoint, so the refusal a workload sees is what is asserted.

use serde_json::{Value, json};

use crate::harness::{Harness, STATIC_ISSUER, sa_subject};

const LEEWAY: i64 = 60;
const MAX_LIFETIME: i64 = 25 * 3600;

async fn setup() -> (Harness, String) {
    let h = Harness::new().await;
    let id = h
        .federated_identity("times", STATIC_ISSUER, &sa_subject("ns1", "app"))
        .await;
    (h, id.client_id)
}

/// A token of the static issuer with the time claims replaced.
fn token(h: &Harness, times: Value) -> String {
    let mut claims = h.sa_claims(STATIC_ISSUER, "ns1", "app");
    for (k, v) in times.as_object().unwrap() {
        claims[k] = v.clone();
    }
    for k in ["iat", "nbf"] {
        if claims[k].is_null() {
            claims.as_object_mut().unwrap().remove(k);
        }
    }
    Harness::sign(&h.static_key, &claims)
}

#[tokio::test]
async fn an_assertion_expired_less_than_the_leeway_ago_is_accepted() {
    let (h, client) = setup().await;
    let t = h.static_token("ns1", "app");
    h.clock.advance(3600 + LEEWAY - 1);
    h.exchange(&client, &t).await.unwrap();
}

#[tokio::test]
async fn an_assertion_expired_by_the_leeway_is_refused_700024() {
    let (h, client) = setup().await;
    let t = h.static_token("ns1", "app");
    h.clock.advance(3600 + LEEWAY);
    let e = h.exchange(&client, &t).await.unwrap_err();
    assert_eq!(e.code, 700024, "{e}");
    assert!(e.message.contains("expired at"), "{e}");
}

#[tokio::test]
async fn an_assertion_valid_from_within_the_leeway_is_accepted() {
    let (h, client) = setup().await;
    let now = h.k.now();
    let t = token(
        &h,
        json!({"iat": null, "nbf": now + LEEWAY, "exp": now + 3600}),
    );
    h.exchange(&client, &t).await.unwrap();
}

#[tokio::test]
async fn an_assertion_not_valid_until_beyond_the_leeway_is_refused_700024() {
    let (h, client) = setup().await;
    let now = h.k.now();
    let t = token(
        &h,
        json!({"iat": null, "nbf": now + LEEWAY + 1, "exp": now + 3600}),
    );
    let e = h.exchange(&client, &t).await.unwrap_err();
    assert_eq!(e.code, 700024, "{e}");
    assert!(e.message.contains("not valid before"), "{e}");
    // The same token is accepted once the clock has caught up.
    h.clock.advance(1);
    h.exchange(&client, &t).await.unwrap();
}

#[tokio::test]
async fn an_assertion_issued_within_the_leeway_in_the_future_is_accepted() {
    let (h, client) = setup().await;
    let now = h.k.now();
    let t = token(
        &h,
        json!({"iat": now + LEEWAY, "nbf": null, "exp": now + 3600}),
    );
    h.exchange(&client, &t).await.unwrap();
}

#[tokio::test]
async fn an_assertion_issued_beyond_the_leeway_in_the_future_is_refused_700024() {
    let (h, client) = setup().await;
    let now = h.k.now();
    let t = token(
        &h,
        json!({"iat": now + LEEWAY + 1, "nbf": null, "exp": now + 3600}),
    );
    let e = h.exchange(&client, &t).await.unwrap_err();
    assert_eq!(e.code, 700024, "{e}");
    assert!(e.message.contains("issued in the future"), "{e}");
}

#[tokio::test]
async fn an_assertion_living_25_hours_is_accepted() {
    let (h, client) = setup().await;
    let now = h.k.now();
    let t = token(
        &h,
        json!({"iat": now, "nbf": now, "exp": now + MAX_LIFETIME}),
    );
    h.exchange(&client, &t).await.unwrap();
}

#[tokio::test]
async fn an_assertion_living_longer_than_25_hours_is_refused_70023() {
    let (h, client) = setup().await;
    let now = h.k.now();
    let t = token(
        &h,
        json!({"iat": now, "nbf": now, "exp": now + MAX_LIFETIME + 1}),
    );
    let e = h.exchange(&client, &t).await.unwrap_err();
    assert_eq!(e.code, 70023, "{e}");
    assert!(e.message.contains("90001 seconds"), "{e}");
}

#[tokio::test]
async fn without_iat_the_lifetime_counts_from_nbf() {
    let (h, client) = setup().await;
    let now = h.k.now();
    let t = token(
        &h,
        json!({"iat": null, "nbf": now - 3600, "exp": now + MAX_LIFETIME - 3600 + 1}),
    );
    let e = h.exchange(&client, &t).await.unwrap_err();
    assert_eq!(e.code, 70023, "{e}");
}
