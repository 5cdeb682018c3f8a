//! Keyless' own signing keys: a rotated key is published at once and signs only from
//! its `active_from`; the key it replaces is retired then, stays published while
//! tokens it signed can still be valid, and maintenance deletes it afterwards.

use std::collections::BTreeSet;

use crate::harness::{Harness, kid_of};

/// Token lifetime + twice the leeway: how long a retired key stays published.
const KEEP_RETIRED: i64 = 3600 + 2 * 60;

fn published(h: &Harness) -> BTreeSet<String> {
    h.k.key_ring()
        .jwks(h.tenant())
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect()
}

fn set<const N: usize>(kids: [&String; N]) -> BTreeSet<String> {
    kids.into_iter().cloned().collect()
}

fn signing_kid(h: &Harness) -> String {
    h.k.key_ring()
        .signer(h.tenant(), h.k.now())
        .map(|k| k.record.kid.clone())
        .unwrap()
}

/// Whether a resource would accept `token` now.
fn valid(h: &Harness, token: &str) -> bool {
    h.k.authenticate(token, &h.k.settings().public.resource_manager())
        .is_ok()
}

#[tokio::test]
async fn a_rotated_key_is_published_at_once_and_signs_only_from_active_from() {
    let h = Harness::new().await;
    let old = signing_kid(&h);
    let new =
        h.k.rotate_signing_key(h.tenant(), Some(600), None)
            .await
            .unwrap();
    assert_eq!(published(&h), set([&old, &new]));
    assert_eq!(kid_of(&h.admin_token().await.access_token), old);
    h.clock.advance(599);
    assert_eq!(kid_of(&h.admin_token().await.access_token), old);
    h.clock.advance(1);
    assert_eq!(kid_of(&h.admin_token().await.access_token), new);
}

#[tokio::test]
async fn the_replaced_key_is_retired_when_the_new_one_takes_over() {
    let h = Harness::new().await;
    let old = signing_kid(&h);
    h.k.rotate_signing_key(h.tenant(), Some(600), None)
        .await
        .unwrap();
    let ring = h.k.key_ring();
    let retired = ring.by_kid(&old).unwrap().record.retired_at;
    assert_eq!(retired, Some(h.k.now() + 600));
    assert!(ring.has_current_or_next(h.tenant()));
}

#[tokio::test]
async fn tokens_of_the_retired_key_stay_valid_until_they_expire() {
    let h = Harness::new().await;
    let before = h.admin_token().await;
    h.k.rotate_signing_key(h.tenant(), Some(0), None)
        .await
        .unwrap();
    h.k.maintenance().await.unwrap();
    assert!(published(&h).contains(&kid_of(&before.access_token)));
    h.clock.advance(3600 + 60 - 1);
    h.k.maintenance().await.unwrap();
    assert!(
        valid(&h, &before.access_token),
        "inside its lifetime + leeway"
    );
    h.clock.advance(1);
    assert!(!valid(&h, &before.access_token), "expired");
}

#[tokio::test]
async fn maintenance_deletes_a_retired_key_once_its_tokens_have_expired() {
    let h = Harness::new().await;
    let old = signing_kid(&h);
    let new =
        h.k.rotate_signing_key(h.tenant(), Some(0), None)
            .await
            .unwrap();
    h.clock.advance(KEEP_RETIRED);
    h.k.maintenance().await.unwrap();
    assert_eq!(published(&h), set([&old, &new]), "kept to the second");
    h.clock.advance(1);
    h.k.maintenance().await.unwrap();
    assert_eq!(published(&h), set([&new]));
    assert!(h.k.key_ring().by_kid(&old).is_none());
    assert_eq!(signing_kid(&h), new);
}

#[tokio::test]
async fn two_rotations_in_the_same_second_leave_the_second_key_signing() {
    let h = Harness::new().await;
    let first = signing_kid(&h);
    let second =
        h.k.rotate_signing_key(h.tenant(), Some(0), None)
            .await
            .unwrap();
    let third =
        h.k.rotate_signing_key(h.tenant(), Some(0), None)
            .await
            .unwrap();
    assert_eq!(signing_kid(&h), third);
    assert_eq!(kid_of(&h.admin_token().await.access_token), third);
    let ring = h.k.key_ring();
    assert_eq!(ring.newest(h.tenant()).unwrap().record.kid, third);
    for retired in [&first, &second] {
        assert_eq!(
            ring.by_kid(retired).unwrap().record.retired_at,
            Some(h.k.now()),
            "{retired}"
        );
    }
    // Restarting (reloading from the store) picks the same signer.
    h.k.reload_all().await.unwrap();
    assert_eq!(signing_kid(&h), third);
}

#[tokio::test]
async fn rotation_keeps_the_tenant_algorithm_unless_told_otherwise() {
    let h = Harness::new().await;
    let rs =
        h.k.rotate_signing_key(h.tenant(), Some(0), Some(keyless_jose::Alg::RS256))
            .await
            .unwrap();
    let next =
        h.k.rotate_signing_key(h.tenant(), Some(0), None)
            .await
            .unwrap();
    let ring = h.k.key_ring();
    assert_eq!(ring.by_kid(&rs).unwrap().record.alg, "RS256");
    assert_eq!(ring.by_kid(&next).unwrap().record.alg, "RS256");
}
