//! Row → record decoding shared by the SQLite and PostgreSQL backends: both schemas
//! have the same columns with compatible types, so one set of decoders, instantiated per
//! row type, keeps them from drifting apart.

use serde_json::{Map, Value};

use keyless_store::StoreError;

/// Tags (a JSON object) as stored text.
pub(crate) fn json_text(map: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Stored text back to tags.
pub(crate) fn json_map(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("tags: {e}")))
}

/// Rows above which [`decode_all`] leaves the async worker.
const DECODE_INLINE_MAX: usize = 1_000;

/// Decodes every row of a whole-table read. A large table (the full loads behind the
/// in-memory view: 100,000 identities) takes a long stretch of CPU with nothing to await,
/// so beyond [`DECODE_INLINE_MAX`] rows it runs on a blocking thread and the async
/// workers keep serving meanwhile.
pub(crate) async fn decode_all<R, T>(
    rows: Vec<R>,
    decode: fn(&R) -> crate::error::Result<T>,
) -> crate::error::Result<Vec<T>>
where
    R: Send + 'static,
    T: Send + 'static,
{
    if rows.len() <= DECODE_INLINE_MAX {
        return rows.iter().map(decode).collect();
    }
    tokio::task::spawn_blocking(move || rows.iter().map(decode).collect())
        .await
        .map_err(|e| StoreError::Database(keyless_store::DatabaseError::new(e)))?
}

/// Defines `*_from_row` decoders for one backend's row type.
macro_rules! row_decoders {
    ($row:ty) => {
        pub(crate) fn tenant_from_row(r: &$row) -> Result<TenantRecord> {
            Ok(TenantRecord {
                id: r.try_get("id")?,
                display_name: r.try_get("display_name")?,
                created_at: r.try_get("created_at")?,
            })
        }

        pub(crate) fn subscription_from_row(r: &$row) -> Result<SubscriptionRecord> {
            Ok(SubscriptionRecord {
                id: r.try_get("id")?,
                tenant_id: r.try_get("tenant_id")?,
                display_name: r.try_get("display_name")?,
                created_at: r.try_get("created_at")?,
            })
        }

        pub(crate) fn resource_group_from_row(r: &$row) -> Result<ResourceGroupRecord> {
            Ok(ResourceGroupRecord {
                subscription_id: r.try_get("subscription_id")?,
                name: r.try_get("name")?,
                location: r.try_get("location")?,
                tags: crate::row_decoding::json_map(&r.try_get::<String, _>("tags")?)?,
                created_at: r.try_get("created_at")?,
            })
        }

        pub(crate) fn identity_from_row(r: &$row) -> Result<IdentityRecord> {
            Ok(IdentityRecord {
                subscription_id: r.try_get("subscription_id")?,
                resource_group: r.try_get("resource_group")?,
                name: r.try_get("name")?,
                location: r.try_get("location")?,
                tags: crate::row_decoding::json_map(&r.try_get::<String, _>("tags")?)?,
                tenant_id: r.try_get("tenant_id")?,
                principal_id: r.try_get("principal_id")?,
                client_id: r.try_get("client_id")?,
                created_at: r.try_get("created_at")?,
            })
        }

        pub(crate) fn federated_credential_from_row(r: &$row) -> Result<FederatedCredentialRecord> {
            let audiences: String = r.try_get("audiences")?;
            Ok(FederatedCredentialRecord {
                identity_principal_id: r.try_get("identity_principal_id")?,
                name: r.try_get("name")?,
                issuer: r.try_get("issuer")?,
                subject: r.try_get("subject")?,
                audiences: serde_json::from_str(&audiences)
                    .map_err(|e| StoreError::Corrupt(format!("audiences: {e}")))?,
                expression: r.try_get("expression")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        pub(crate) fn service_principal_from_row(r: &$row) -> Result<ServicePrincipalRecord> {
            Ok(ServicePrincipalRecord {
                client_id: r.try_get("client_id")?,
                principal_id: r.try_get("principal_id")?,
                tenant_id: r.try_get("tenant_id")?,
                display_name: r.try_get("display_name")?,
                secret_hash: r.try_get("secret_hash")?,
                created_at: r.try_get("created_at")?,
            })
        }

        pub(crate) fn role_assignment_from_row(r: &$row) -> Result<RoleAssignmentRecord> {
            Ok(RoleAssignmentRecord {
                name: r.try_get("name")?,
                tenant_id: r.try_get("tenant_id")?,
                scope: r.try_get("scope")?,
                role_definition_id: r.try_get("role_definition_id")?,
                principal_id: r.try_get("principal_id")?,
                principal_type: r.try_get("principal_type")?,
                description: r.try_get("description")?,
                created_at: r.try_get("created_at")?,
            })
        }

        pub(crate) fn signing_key_from_row(r: &$row) -> Result<SigningKeyRecord> {
            Ok(SigningKeyRecord {
                kid: r.try_get("kid")?,
                tenant_id: r.try_get("tenant_id")?,
                alg: r.try_get("alg")?,
                sealed_private_key: r.try_get("sealed_private_key")?,
                created_at: r.try_get("created_at")?,
                active_from: r.try_get("active_from")?,
                retired_at: r.try_get("retired_at")?,
            })
        }

        pub(crate) fn trusted_issuer_from_row(r: &$row) -> Result<TrustedIssuerRecord> {
            Ok(TrustedIssuerRecord {
                tenant_id: r.try_get("tenant_id")?,
                name: r.try_get("name")?,
                issuer: r.try_get("issuer")?,
                jwks: r.try_get("jwks")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        pub(crate) fn signin_from_row(r: &$row) -> Result<SignInRecord> {
            let code: Option<i64> = r.try_get("error_code")?;
            Ok(SignInRecord {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                tenant_id: r.try_get("tenant_id")?,
                client_id: r.try_get("client_id")?,
                principal_id: r.try_get("principal_id")?,
                issuer: r.try_get("issuer")?,
                subject: r.try_get("subject")?,
                resource: r.try_get("resource")?,
                success: r.try_get("success")?,
                error_code: code.and_then(|c| u32::try_from(c).ok()),
                error: r.try_get("error")?,
                client_ip: r.try_get("client_ip")?,
                correlation_id: r.try_get("correlation_id")?,
                latency_us: r.try_get("latency_us")?,
                count: r.try_get("count")?,
            })
        }

        pub(crate) fn vault_from_row(r: &$row) -> Result<VaultRecord> {
            Ok(VaultRecord {
                name: r.try_get("name")?,
                subscription_id: r.try_get("subscription_id")?,
                resource_group: r.try_get("resource_group")?,
                tenant_id: r.try_get("tenant_id")?,
                location: r.try_get("location")?,
                tags: crate::row_decoding::json_map(&r.try_get::<String, _>("tags")?)?,
                soft_delete_days: r.try_get("soft_delete_days")?,
                purge_protection: r.try_get("purge_protection")?,
                created_at: r.try_get("created_at")?,
            })
        }

        fn secret_version_from_row(r: &$row) -> Result<SecretVersionRecord> {
            Ok(SecretVersionRecord {
                vault: r.try_get("vault")?,
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                sealed_value: r.try_get("sealed_value")?,
                content_type: r.try_get("content_type")?,
                tags: crate::row_decoding::json_map(&r.try_get::<String, _>("tags")?)?,
                enabled: r.try_get("enabled")?,
                nbf: r.try_get("nbf")?,
                exp: r.try_get("exp")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        pub(crate) fn secret_from_rows(r: &$row, versions: &[&$row]) -> Result<SecretRecord> {
            Ok(SecretRecord {
                vault: r.try_get("vault")?,
                name: r.try_get("name")?,
                deleted_at: r.try_get("deleted_at")?,
                purge_at: r.try_get("purge_at")?,
                versions: versions
                    .iter()
                    .map(|v| secret_version_from_row(v))
                    .collect::<Result<_, _>>()?,
            })
        }
    };
}

pub(crate) use row_decoders;
