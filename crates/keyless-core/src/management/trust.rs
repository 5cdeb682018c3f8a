//! Tenant-level federation settings: issuers trusted through a static JWKS, and the
//! sign-in log.

use keyless_store::Change;
use keyless_store::{SignInQuery, SignInRecord, TrustedIssuerRecord, UpsertOutcome};
use serde_json::Value;

use crate::error::ManagementError;
use crate::keyless::Keyless;
use crate::names::{check_federated_credential_name, printable};
use crate::tokens::Caller;

const ISSUER_READ: &str = "Keyless/trustedIssuers/read";
const ISSUER_WRITE: &str = "Keyless/trustedIssuers/write";
const ISSUER_DELETE: &str = "Keyless/trustedIssuers/delete";
const SIGNIN_READ: &str = "Keyless/signInLogs/read";

fn bad(message: impl Into<String>) -> ManagementError {
    ManagementError::bad_request("BadRequest", message)
}

impl Keyless {
    /// Registers (or replaces) an issuer whose keys are given as a static JWKS, so no
    /// discovery fetch ever happens for it in the caller's tenant.
    pub async fn put_trusted_issuer(
        &self,
        caller: &Caller,
        name: &str,
        issuer: Option<&Value>,
        jwks: Option<&Value>,
    ) -> Result<(TrustedIssuerRecord, UpsertOutcome), ManagementError> {
        check_federated_credential_name(name).map_err(|_| {
            bad(format!(
                "Trusted issuer name '{}' is invalid: use 3-120 letters, digits, '-' or '_'.",
                printable(name)
            ))
        })?;
        self.authorize(caller, "/", ISSUER_WRITE)?;
        let issuer = issuer
            .and_then(Value::as_str)
            .ok_or_else(|| bad("The 'properties.issuer' string is required."))?;
        super::issuer_url::check_issuer(issuer)?;
        let jwks =
            jwks.ok_or_else(|| bad("The 'properties.jwks' object (a JWKS document) is required."))?;
        let text = serde_json::to_string(jwks).map_err(|e| bad(e.to_string()))?;
        let set = keyless_jose::JwkSet::parse(text.as_bytes(), 100)
            .map_err(|e| bad(format!("The JWKS is invalid: {e}")))?;
        let (keys, errors) = keyless_jose::VerifyingKey::from_jwk_set(&set);
        if let Some((kid, e)) = errors.first() {
            return Err(bad(format!(
                "The JWKS key {} is unusable: {e}",
                kid.as_deref().unwrap_or("(no kid)")
            )));
        }
        if keys.is_empty() {
            return Err(bad("The JWKS holds no usable signing key."));
        }
        let now = self.now();
        let rec = TrustedIssuerRecord {
            tenant_id: caller.tenant_id.clone(),
            name: name.to_string(),
            issuer: issuer.to_string(),
            jwks: text,
            created_at: now,
            updated_at: now,
        };
        let outcome = self
            .store
            .upsert_trusted_issuer(&rec)
            .await
            .map_err(|e| match e {
                keyless_store::StoreError::Conflict(what) => {
                    ManagementError::conflict("Conflict", format!("{what}: '{issuer}'."))
                }
                other => other.into(),
            })?;
        self.applied(Change::Everything, (rec, outcome)).await
    }

    /// The caller's tenant's static issuer registrations.
    pub fn list_trusted_issuers(
        &self,
        caller: &Caller,
    ) -> Result<Vec<TrustedIssuerRecord>, ManagementError> {
        self.authorize(caller, "/", ISSUER_READ)?;
        Ok(self
            .snapshot()
            .trusted_issuers
            .iter()
            .filter(|t| t.tenant_id == caller.tenant_id)
            .cloned()
            .collect())
    }

    /// One registration.
    pub fn get_trusted_issuer(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<TrustedIssuerRecord, ManagementError> {
        self.list_trusted_issuers(caller)?
            .into_iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ManagementError::not_found(
                    "NotFound",
                    format!("Trusted issuer '{}' was not found.", printable(name)),
                )
            })
    }

    /// Deletes a registration; `Ok(false)` when it did not exist.
    pub async fn delete_trusted_issuer(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<bool, ManagementError> {
        self.authorize(caller, "/", ISSUER_DELETE)?;
        let deleted = self
            .store
            .delete_trusted_issuer(&caller.tenant_id, name)
            .await?;
        self.applied(Change::Everything, deleted).await
    }

    /// Queries the caller's tenant's sign-in log, newest first.
    pub async fn query_signins(
        &self,
        caller: &Caller,
        client_id: Option<&str>,
        failed_only: bool,
        since: Option<i64>,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<SignInRecord>, ManagementError> {
        self.authorize(caller, "/", SIGNIN_READ)?;
        let q = SignInQuery {
            tenant_id: caller.tenant_id.clone(),
            client_id: client_id.map(str::to_ascii_lowercase),
            failed_only,
            since,
            limit: limit.clamp(1, 1001),
            before_id,
        };
        Ok(self.store.query_signins(&q).await?)
    }
}
