//! The vault data plane's life cycle of a secret: soft delete, recover, purge, and
//! the purge that maintenance does when the retention ends — all on the clock.

use keyless_core::ErrorKind;
use keyless_core::vault::{SecretAttributesInput, SecretPut, VaultInput};

use crate::harness::Harness;

const DAY: i64 = 86_400;

async fn vault(h: &Harness, name: &str, retention_days: i64) {
    h.group("rg-vault").await;
    h.k.put_vault(
        &h.admin.caller,
        h.sub(),
        "rg-vault",
        name,
        VaultInput {
            location: Some("westeurope".into()),
            soft_delete_days: Some(retention_days),
            ..VaultInput::default()
        },
    )
    .await
    .unwrap();
}

async fn set(h: &Harness, vault: &str, name: &str, value: &str) {
    h.k.set_secret(
        &h.admin.caller,
        vault,
        name,
        SecretPut {
            value: value.into(),
            ..SecretPut::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_deleted_secret_is_hidden_until_recovered_with_its_value() {
    let h = Harness::new().await;
    vault(&h, "soft", 7).await;
    set(&h, "soft", "token", "s3cret").await;
    let deleted =
        h.k.delete_secret(&h.admin.caller, "soft", "token")
            .await
            .unwrap();
    assert_eq!(deleted.deleted_date, h.k.now());
    assert_eq!(deleted.scheduled_purge_date, h.k.now() + 7 * DAY);
    let e =
        h.k.get_secret(&h.admin.caller, "soft", "token", None)
            .await
            .unwrap_err();
    assert_eq!(e.code, "SecretNotFound", "{e}");
    assert!(
        h.k.list_secrets(&h.admin.caller, "soft")
            .await
            .unwrap()
            .is_empty()
    );
    let listed =
        h.k.list_deleted_secrets(&h.admin.caller, "soft")
            .await
            .unwrap();
    assert_eq!(listed.len(), 1);

    h.k.recover_secret(&h.admin.caller, "soft", "token")
        .await
        .unwrap();
    let got =
        h.k.get_secret(&h.admin.caller, "soft", "token", None)
            .await
            .unwrap();
    assert_eq!(got.value.as_deref(), Some("s3cret"));
    let e =
        h.k.get_deleted_secret(&h.admin.caller, "soft", "token")
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn a_deleted_secret_cannot_be_set_until_recovered_or_purged() {
    let h = Harness::new().await;
    vault(&h, "blocked", 7).await;
    set(&h, "blocked", "token", "v1").await;
    h.k.delete_secret(&h.admin.caller, "blocked", "token")
        .await
        .unwrap();
    let e =
        h.k.set_secret(&h.admin.caller, "blocked", "token", SecretPut::default())
            .await
            .unwrap_err();
    assert_eq!(
        e.inner.as_deref(),
        Some("ObjectIsDeletedButRecoverable"),
        "{e}"
    );
}

#[tokio::test]
async fn a_purged_secret_is_gone_and_its_name_can_be_reused() {
    let h = Harness::new().await;
    vault(&h, "purged", 7).await;
    set(&h, "purged", "token", "old").await;
    h.k.delete_secret(&h.admin.caller, "purged", "token")
        .await
        .unwrap();
    h.k.purge_secret(&h.admin.caller, "purged", "token")
        .await
        .unwrap();
    let e =
        h.k.get_deleted_secret(&h.admin.caller, "purged", "token")
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e =
        h.k.recover_secret(&h.admin.caller, "purged", "token")
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    set(&h, "purged", "token", "new").await;
    let got =
        h.k.get_secret(&h.admin.caller, "purged", "token", None)
            .await
            .unwrap();
    assert_eq!(got.value.as_deref(), Some("new"));
    let versions =
        h.k.list_secret_versions(&h.admin.caller, "purged", "token")
            .await
            .unwrap();
    assert_eq!(versions.len(), 1, "no version survives a purge");
}

#[tokio::test]
async fn maintenance_purges_a_deleted_secret_when_its_retention_ends() {
    let h = Harness::new().await;
    vault(&h, "retained", 7).await;
    set(&h, "retained", "token", "v").await;
    h.k.delete_secret(&h.admin.caller, "retained", "token")
        .await
        .unwrap();
    h.clock.advance(7 * DAY - 1);
    h.k.maintenance().await.unwrap();
    h.k.get_deleted_secret(&h.admin.caller, "retained", "token")
        .await
        .expect("still recoverable on its last day");
    h.clock.advance(1);
    h.k.maintenance().await.unwrap();
    let e =
        h.k.get_deleted_secret(&h.admin.caller, "retained", "token")
            .await
            .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::NotFound,
        "purged at its scheduled date: {e}"
    );
    let e =
        h.k.recover_secret(&h.admin.caller, "retained", "token")
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn a_secret_is_refused_before_its_nbf_and_from_its_exp() {
    let h = Harness::new().await;
    vault(&h, "windowed", 7).await;
    let now = h.k.now();
    h.k.set_secret(
        &h.admin.caller,
        "windowed",
        "token",
        SecretPut {
            value: "v".into(),
            attributes: SecretAttributesInput {
                enabled: None,
                nbf: Some(now + 10),
                exp: Some(now + 20),
            },
            ..SecretPut::default()
        },
    )
    .await
    .unwrap();
    let get = || h.k.get_secret(&h.admin.caller, "windowed", "token", None);
    assert_eq!(
        get().await.unwrap_err().inner.as_deref(),
        Some("SecretNotYetValid")
    );
    h.clock.advance(10);
    assert_eq!(get().await.unwrap().value.as_deref(), Some("v"));
    h.clock.advance(9);
    get().await.unwrap();
    h.clock.advance(1);
    assert_eq!(
        get().await.unwrap_err().inner.as_deref(),
        Some("SecretExpired")
    );
}
