//! Signing keys and trusted issuer registrations.

use std::sync::Arc;

use super::fixtures::*;
use crate::StoreError;
use crate::records::*;
use crate::store::{Store, UpsertOutcome};

/// A retired key stays until its retirement is old enough; its sealed blob round-trips.
pub async fn signing_key_retirement_and_expiry(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    let key = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.into(),
        tenant_id: T.into(),
        alg: "ES256".into(),
        sealed_private_key: vec![1, 2, 3],
        created_at: at,
        active_from: at,
        retired_at: None,
    };
    s.insert_signing_key(&key("k2", 200)).await?;
    s.insert_signing_key(&key("k1", 100)).await?;
    s.retire_signing_key("k1", 300).await?;
    let keys = s.all_signing_keys().await?;
    check(
        keys.len() == 2 && keys[0].kid == "k1" && keys[0].retired_at == Some(300),
        "retirement recorded, keys by creation time",
    );
    check(
        s.delete_signing_keys_retired_before(300).await? == 0,
        "not yet expired",
    );
    check(
        s.delete_signing_keys_retired_before(301).await? == 1,
        "expired key removed",
    );
    check(
        s.all_signing_keys().await?[0].sealed_private_key == vec![1, 2, 3],
        "blob round-trips",
    );
    Ok(())
}

fn issuer(tenant: &str, name: &str, issuer: &str) -> TrustedIssuerRecord {
    TrustedIssuerRecord {
        tenant_id: tenant.into(),
        name: name.into(),
        issuer: issuer.into(),
        jwks: "{\"keys\":[]}".into(),
        created_at: 1,
        updated_at: 1,
    }
}

/// A registration is re-registered by name (ignoring case), one per issuer, deleted by
/// name ignoring case.
pub async fn trusted_issuer_registration(s: Arc<dyn Store>) -> Result<(), StoreError> {
    seed(&*s).await?;
    check(
        s.upsert_trusted_issuer(&issuer(T, "Air", "https://a.example"))
            .await?
            == UpsertOutcome::Created,
        "issuer registered",
    );
    check(
        s.upsert_trusted_issuer(&issuer(T, "air", "https://a.example/2"))
            .await?
            == UpsertOutcome::Updated,
        "re-registered by name",
    );
    let dup = s
        .upsert_trusted_issuer(&issuer(T, "other", "https://a.example/2"))
        .await;
    check(
        matches!(dup, Err(StoreError::Conflict(_))),
        "one registration per issuer",
    );
    check(
        s.all_trusted_issuers().await?.len() == 1,
        "one registration",
    );
    check(s.delete_trusted_issuer(T, "AIR").await?, "deleted");
    check(
        !s.delete_trusted_issuer(T, "air").await?,
        "second delete finds nothing",
    );
    Ok(())
}

/// Registrations are listed by tenant, then name ignoring case.
pub async fn trusted_issuers_are_listed_by_tenant_and_name(
    s: Arc<dyn Store>,
) -> Result<(), StoreError> {
    seed(&*s).await?;
    let other = "00000000-aaaa-0000-0000-000000000000";
    s.insert_tenant(&TenantRecord {
        id: other.into(),
        display_name: "o".into(),
        created_at: 1,
    })
    .await?;
    for (n, (tenant, name)) in [(T, "zed"), (other, "b"), (T, "Ann"), (T, "bob")]
        .into_iter()
        .enumerate()
    {
        s.upsert_trusted_issuer(&issuer(tenant, name, &format!("https://{n}.example")))
            .await?;
    }
    let listed: Vec<(String, String)> = s
        .all_trusted_issuers()
        .await?
        .into_iter()
        .map(|i| (i.tenant_id, i.name))
        .collect();
    let want = [(other, "b"), (T, "Ann"), (T, "bob"), (T, "zed")];
    check(
        listed
            .iter()
            .map(|(t, n)| (t.as_str(), n.as_str()))
            .eq(want),
        "registrations by (tenant, name)",
    );
    Ok(())
}
