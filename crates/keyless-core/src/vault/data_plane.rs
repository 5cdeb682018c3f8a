//! The secrets data plane. Every operation checks the caller's tenant against the
//! vault's and the data action against the caller's role assignments at the secret's
//! scope (secret → vault → group → subscription → root), so a role assignment takes
//! effect on the next request.

use std::sync::Arc;

use keyless_store::{SecretRecord, SecretVersionRecord, StoreError, VaultRecord};
use serde_json::{Map, Value};

use super::MAX_SECRET_BYTES;
use super::resource::vault_id;
use crate::error::ErrorKind;
use crate::keyless::Keyless;
use crate::names::printable;
use crate::rbac::is_allowed;
use crate::tokens::Caller;

const GET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
const READ_METADATA: &str = "Microsoft.KeyVault/vaults/secrets/readMetadata/action";
const SET: &str = "Microsoft.KeyVault/vaults/secrets/setSecret/action";
const UPDATE: &str = "Microsoft.KeyVault/vaults/secrets/update/action";
const DELETE: &str = "Microsoft.KeyVault/vaults/secrets/delete";
const RECOVER: &str = "Microsoft.KeyVault/vaults/secrets/recover/action";
const PURGE: &str = "Microsoft.KeyVault/vaults/secrets/purge/action";

/// A data-plane error in Key Vault's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct VaultError {
    /// Class (status).
    pub kind: ErrorKind,
    /// Key Vault error code (`SecretNotFound`, `Forbidden`, ...).
    pub code: String,
    /// Message.
    pub message: String,
    /// `innererror.code` (`ForbiddenByRbac`, `ObjectIsDeletedButRecoverable`, ...).
    pub inner: Option<String>,
}

impl VaultError {
    fn new(kind: ErrorKind, code: &str, message: impl Into<String>, inner: Option<&str>) -> Self {
        Self {
            kind,
            code: code.into(),
            message: message.into(),
            inner: inner.map(str::to_string),
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "BadParameter", message, None)
    }
    fn not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "SecretNotFound",
            format!(
                "A secret with (name/id) {} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.",
                printable(name)
            ),
            None,
        )
    }
    fn deleted_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "SecretNotFound",
            format!("Deleted Secret not found: {}", printable(name)),
            None,
        )
    }
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => Self::new(
                ErrorKind::Conflict,
                "Conflict",
                msg,
                Some("ObjectIsDeletedButRecoverable"),
            ),
            StoreError::ParentNotFound(what) => Self::new(
                ErrorKind::NotFound,
                "VaultNotFound",
                format!("The {what} was not found."),
                None,
            ),
            StoreError::Database(err) => {
                tracing::error!(error = %err, "database error");
                Self::new(
                    ErrorKind::Unavailable,
                    "ServiceUnavailable",
                    "The database is unavailable. Retry later.",
                    None,
                )
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::new(
                    ErrorKind::Internal,
                    "InternalServerError",
                    "An internal error occurred.",
                    None,
                )
            }
        }
    }
}

/// Attributes in a set or update request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretAttributesInput {
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Not before (Unix seconds).
    pub nbf: Option<i64>,
    /// Expiry (Unix seconds).
    pub exp: Option<i64>,
}

/// A set (PUT) request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretPut {
    /// The value.
    pub value: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Tags.
    pub tags: Option<Map<String, Value>>,
    /// Attributes.
    pub attributes: SecretAttributesInput,
}

/// An update (PATCH) request: only the given fields change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretUpdate {
    /// New content type.
    pub content_type: Option<String>,
    /// New tags (replacing the old ones).
    pub tags: Option<Map<String, Value>>,
    /// New attributes.
    pub attributes: SecretAttributesInput,
}

/// One version as returned to clients (the value only where the operation returns it).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretVersionView {
    /// Secret name (as stored).
    pub name: String,
    /// Version.
    pub version: String,
    /// Plain value, for get and set.
    pub value: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Enabled.
    pub enabled: bool,
    /// Not before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Created.
    pub created: i64,
    /// Updated.
    pub updated: i64,
    /// Days a deleted secret stays recoverable.
    pub recoverable_days: i64,
}

/// A deleted secret.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedSecretView {
    /// Its latest version.
    pub latest: SecretVersionView,
    /// When it was deleted.
    pub deleted_date: i64,
    /// When it will be purged.
    pub scheduled_purge_date: i64,
}

/// Secret names: `^[0-9a-zA-Z-]{1,127}$`.
fn check_secret_name(name: &str) -> Result<(), VaultError> {
    if (1..=127).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(())
    } else {
        Err(VaultError::bad(format!(
            "The request URI contains an invalid name: {}. Secret names are 1-127 characters of letters, digits and '-'.",
            printable(name)
        )))
    }
}

fn check_version(version: &str) -> Result<(), VaultError> {
    if version.len() == 32 && version.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(VaultError::bad(format!(
            "The secret version '{}' is invalid: it is 32 hexadecimal characters.",
            printable(version)
        )))
    }
}

fn aad(vault: &str, name: &str, version: &str) -> Vec<u8> {
    format!(
        "keyless-secret:{}/{}/{}",
        vault.to_ascii_lowercase(),
        name.to_ascii_lowercase(),
        version
    )
    .into_bytes()
}

impl Keyless {
    /// The vault a data-plane request is for, checked against the caller's tenant.
    pub fn vault_for(&self, caller: &Caller, vault: &str) -> Result<Arc<VaultRecord>, VaultError> {
        let v = self.vault_by_name(vault).ok_or_else(|| {
            VaultError::new(
                ErrorKind::NotFound,
                "VaultNotFound",
                format!("The vault '{}' does not exist.", printable(vault)),
                None,
            )
        })?;
        if v.tenant_id != caller.tenant_id {
            return Err(VaultError::new(
                ErrorKind::Unauthenticated,
                "Unauthorized",
                format!(
                    "AKV10032: Invalid issuer. Expected a token of tenant {}, found tenant {}.",
                    v.tenant_id, caller.tenant_id
                ),
                None,
            ));
        }
        Ok(v)
    }

    /// A vault by name, from the in-memory view.
    pub fn vault_by_name(&self, vault: &str) -> Option<Arc<VaultRecord>> {
        self.snapshot()
            .vaults
            .get(&vault.to_ascii_lowercase())
            .cloned()
    }

    fn data_authorize(
        &self,
        caller: &Caller,
        vault: &VaultRecord,
        secret: Option<&str>,
        action: &str,
    ) -> Result<(), VaultError> {
        let vid = vault_id(&vault.subscription_id, &vault.resource_group, &vault.name);
        let scope = match secret {
            Some(s) => format!("{vid}/secrets/{s}"),
            None => vid,
        };
        if is_allowed(
            self.snapshot().grants_of(&caller.object_id),
            &scope,
            action,
            true,
        ) {
            return Ok(());
        }
        Err(VaultError::new(
            ErrorKind::Forbidden,
            "Forbidden",
            format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={};oid={};iss={}\r\nAction: '{action}'\r\nResource: '{}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: {};location={}\r\n",
                caller.app_id,
                caller.object_id,
                self.settings.public.issuer_v1(&caller.tenant_id),
                scope.to_ascii_lowercase(),
                vault.name,
                vault.location
            ),
            Some("ForbiddenByRbac"),
        ))
    }

    fn view(
        &self,
        vault: &VaultRecord,
        secret: &SecretRecord,
        v: &SecretVersionRecord,
        with_value: bool,
    ) -> Result<SecretVersionView, VaultError> {
        let value = if with_value {
            let plain = self
                .kek
                .open(&v.sealed_value, &aad(&vault.name, &secret.name, &v.version))
                .map_err(|_| VaultError::new(ErrorKind::Internal, "InternalServerError", "The secret value cannot be decrypted with this server's key-encryption key.", None))?;
            Some(String::from_utf8(plain).map_err(|_| {
                VaultError::new(
                    ErrorKind::Internal,
                    "InternalServerError",
                    "stored value is not UTF-8",
                    None,
                )
            })?)
        } else {
            None
        };
        Ok(SecretVersionView {
            name: secret.name.clone(),
            version: v.version.clone(),
            value,
            content_type: v.content_type.clone(),
            tags: v.tags.clone(),
            enabled: v.enabled,
            nbf: v.nbf,
            exp: v.exp,
            created: v.created_at,
            updated: v.updated_at,
            recoverable_days: vault.soft_delete_days,
        })
    }

    /// Reads a secret: from memory when cached (see [`super::SecretCache`]), else from
    /// the store, remembering it. While the database is unreachable only cached secrets
    /// can be read.
    async fn read_secret(
        &self,
        vault: &str,
        name: &str,
    ) -> Result<Option<Arc<SecretRecord>>, StoreError> {
        if let Some(hit) = self.secret_cache.get(vault, name) {
            return Ok(Some(hit));
        }
        let at = self.secret_cache.generation();
        Ok(self
            .store
            .get_secret(vault, name)
            .await?
            .map(|s| self.secret_cache.put(at, s)))
    }

    /// Lists a vault's secrets, with the same fallback.
    async fn read_secrets(&self, vault: &str) -> Result<Vec<SecretRecord>, StoreError> {
        match self.store.list_secrets(vault).await {
            Ok(list) => {
                self.secret_cache.put_list(vault, &list);
                Ok(list)
            }
            Err(StoreError::Database(e)) => {
                self.secret_cache.list(vault).ok_or(StoreError::Database(e))
            }
            Err(e) => Err(e),
        }
    }

    async fn live_secret(
        &self,
        vault: &VaultRecord,
        name: &str,
    ) -> Result<Arc<SecretRecord>, VaultError> {
        match self.read_secret(&vault.name, name).await? {
            Some(s) if s.deleted_at.is_none() && !s.versions.is_empty() => Ok(s),
            _ => Err(VaultError::not_found(name)),
        }
    }

    fn pick_version<'a>(
        secret: &'a SecretRecord,
        version: Option<&str>,
    ) -> Result<&'a SecretVersionRecord, VaultError> {
        match version.filter(|v| !v.is_empty()) {
            None => secret
                .versions
                .last()
                .ok_or_else(|| VaultError::not_found(&secret.name)),
            Some(v) => {
                check_version(v)?;
                secret
                    .versions
                    .iter()
                    .find(|x| x.version.eq_ignore_ascii_case(v))
                    .ok_or_else(|| {
                        VaultError::new(
                            ErrorKind::NotFound,
                            "SecretNotFound",
                            format!(
                                "A secret with (name/id) {}/{} was not found in this key vault.",
                                secret.name,
                                printable(v)
                            ),
                            None,
                        )
                    })
            }
        }
    }

    /// Sets a secret: a new version.
    pub async fn set_secret(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
        put: SecretPut,
    ) -> Result<SecretVersionView, VaultError> {
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), SET)?;
        if put
            .content_type
            .as_deref()
            .is_some_and(|c| c.len() > 255 || crate::names::has_control(c))
        {
            return Err(VaultError::bad(
                "The content type must be at most 255 characters without control characters.",
            ));
        }
        if put.value.len() > MAX_SECRET_BYTES {
            return Err(VaultError::bad(format!(
                "The secret value is larger than {MAX_SECRET_BYTES} bytes."
            )));
        }
        if let (Some(nbf), Some(exp)) = (put.attributes.nbf, put.attributes.exp)
            && nbf >= exp
        {
            return Err(VaultError::bad("The secret's nbf must be before its exp."));
        }
        let tags =
            crate::management::check_tags(put.tags).map_err(|e| VaultError::bad(e.message))?;
        let version = keyless_jose::random_bytes::<16>()
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
            .map_err(|_| {
                VaultError::new(
                    ErrorKind::Internal,
                    "InternalServerError",
                    "random generator failed",
                    None,
                )
            })?;
        let sealed = self
            .kek
            .seal(put.value.as_bytes(), &aad(&vault.name, name, &version))
            .map_err(|_| {
                VaultError::new(
                    ErrorKind::Internal,
                    "InternalServerError",
                    "sealing failed",
                    None,
                )
            })?;
        let now = self.now();
        let rec = SecretVersionRecord {
            vault: vault.name.clone(),
            name: name.to_string(),
            version,
            sealed_value: sealed,
            content_type: put.content_type,
            tags,
            enabled: put.attributes.enabled.unwrap_or(true),
            nbf: put.attributes.nbf,
            exp: put.attributes.exp,
            created_at: now,
            updated_at: now,
        };
        let written = self.store.add_secret_version(&rec).await;
        self.secret_cache.forget(&vault.name, name);
        written?;
        let secret = self.live_secret(&vault, name).await?;
        let stored = Self::pick_version(&secret, Some(&rec.version))?;
        let mut view = self.view(&vault, &secret, stored, false)?;
        view.value = Some(put.value);
        Ok(view)
    }

    /// Gets a secret's value (latest or one version). Disabled, expired and not yet
    /// valid versions are refused.
    pub async fn get_secret(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<SecretVersionView, VaultError> {
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), GET)?;
        let secret = self.live_secret(&vault, name).await?;
        let v = Self::pick_version(&secret, version)?;
        let now = self.now();
        if !v.enabled {
            return Err(VaultError::new(
                ErrorKind::Forbidden,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                Some("SecretDisabled"),
            ));
        }
        if v.exp.is_some_and(|exp| now >= exp) {
            return Err(VaultError::new(
                ErrorKind::Forbidden,
                "Forbidden",
                "Operation get is not allowed on an expired secret.",
                Some("SecretExpired"),
            ));
        }
        if v.nbf.is_some_and(|nbf| now < nbf) {
            return Err(VaultError::new(
                ErrorKind::Forbidden,
                "Forbidden",
                "Operation get is not allowed on a secret that is not yet valid.",
                Some("SecretNotYetValid"),
            ));
        }
        self.view(&vault, &secret, v, true)
    }

    /// Updates a version's content type, tags and attributes.
    pub async fn update_secret(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
        version: Option<&str>,
        update: SecretUpdate,
    ) -> Result<SecretVersionView, VaultError> {
        let SecretUpdate {
            content_type,
            tags,
            attributes,
        } = update;
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), UPDATE)?;
        let secret = self.live_secret(&vault, name).await?;
        let mut v = Self::pick_version(&secret, version)?.clone();
        if let Some(ct) = content_type {
            if ct.len() > 255 || crate::names::has_control(&ct) {
                return Err(VaultError::bad(
                    "The content type must be at most 255 characters without control characters.",
                ));
            }
            v.content_type = Some(ct);
        }
        if let Some(t) = tags {
            v.tags =
                crate::management::check_tags(Some(t)).map_err(|e| VaultError::bad(e.message))?;
        }
        if let Some(e) = attributes.enabled {
            v.enabled = e;
        }
        if attributes.nbf.is_some() {
            v.nbf = attributes.nbf;
        }
        if attributes.exp.is_some() {
            v.exp = attributes.exp;
        }
        v.updated_at = self.now();
        let written = self.store.update_secret_version(&v).await;
        self.secret_cache.forget(&vault.name, name);
        written?;
        self.view(&vault, &secret, &v, false)
    }

    /// Soft-deletes a secret (recoverable for the vault's retention period).
    pub async fn delete_secret(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
    ) -> Result<DeletedSecretView, VaultError> {
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), DELETE)?;
        let secret = self.live_secret(&vault, name).await?;
        let now = self.now();
        let purge_at = now + vault.soft_delete_days * 86400;
        let deleted = self
            .store
            .soft_delete_secret(&vault.name, name, now, purge_at)
            .await;
        self.secret_cache.forget(&vault.name, name);
        if !deleted? {
            return Err(VaultError::not_found(name));
        }
        let latest = Self::pick_version(&secret, None)?;
        Ok(DeletedSecretView {
            latest: self.view(&vault, &secret, latest, false)?,
            deleted_date: now,
            scheduled_purge_date: purge_at,
        })
    }

    /// The latest version of every live secret (no values).
    pub async fn list_secrets(
        &self,
        caller: &Caller,
        vault: &str,
    ) -> Result<Vec<SecretVersionView>, VaultError> {
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, None, READ_METADATA)?;
        let mut out = Vec::new();
        for s in self.read_secrets(&vault.name).await? {
            if s.deleted_at.is_none()
                && let Some(latest) = s.versions.last()
            {
                out.push(self.view(&vault, &s, latest, false)?);
            }
        }
        Ok(out)
    }

    /// Every version of a secret (no values), oldest first.
    pub async fn list_secret_versions(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
    ) -> Result<Vec<SecretVersionView>, VaultError> {
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), READ_METADATA)?;
        let secret = self.live_secret(&vault, name).await?;
        secret
            .versions
            .iter()
            .map(|v| self.view(&vault, &secret, v, false))
            .collect()
    }

    async fn deleted(
        &self,
        vault: &VaultRecord,
        name: &str,
    ) -> Result<DeletedSecretView, VaultError> {
        match self.read_secret(&vault.name, name).await? {
            Some(s) if s.deleted_at.is_some() => {
                let latest = Self::pick_version(&s, None)?;
                Ok(DeletedSecretView {
                    latest: self.view(vault, &s, latest, false)?,
                    deleted_date: s.deleted_at.unwrap_or_default(),
                    scheduled_purge_date: s.purge_at.unwrap_or_default(),
                })
            }
            _ => Err(VaultError::deleted_not_found(name)),
        }
    }

    /// Deleted secrets of a vault.
    pub async fn list_deleted_secrets(
        &self,
        caller: &Caller,
        vault: &str,
    ) -> Result<Vec<DeletedSecretView>, VaultError> {
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, None, READ_METADATA)?;
        let mut out = Vec::new();
        for s in self.read_secrets(&vault.name).await? {
            if s.deleted_at.is_some() {
                out.push(self.deleted(&vault, &s.name).await?);
            }
        }
        Ok(out)
    }

    /// One deleted secret.
    pub async fn get_deleted_secret(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
    ) -> Result<DeletedSecretView, VaultError> {
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), READ_METADATA)?;
        self.deleted(&vault, name).await
    }

    /// Recovers a deleted secret; returns its latest version (no value).
    pub async fn recover_secret(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
    ) -> Result<SecretVersionView, VaultError> {
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), RECOVER)?;
        let recovered = self.store.recover_secret(&vault.name, name).await;
        self.secret_cache.forget(&vault.name, name);
        if !recovered? {
            return Err(VaultError::deleted_not_found(name));
        }
        let secret = self.live_secret(&vault, name).await?;
        let latest = Self::pick_version(&secret, None)?;
        self.view(&vault, &secret, latest, false)
    }

    /// Purges a deleted secret for good.
    pub async fn purge_secret(
        &self,
        caller: &Caller,
        vault: &str,
        name: &str,
    ) -> Result<(), VaultError> {
        check_secret_name(name)?;
        let vault = self.vault_for(caller, vault)?;
        self.data_authorize(caller, &vault, Some(name), PURGE)?;
        self.deleted(&vault, name).await?;
        if vault.purge_protection {
            return Err(VaultError::new(
                ErrorKind::Forbidden,
                "Forbidden",
                "Purge protection is on for this vault: deleted secrets are purged only when their retention ends.",
                None,
            ));
        }
        let purged = self.store.purge_secret(&vault.name, name).await;
        self.secret_cache.forget(&vault.name, name);
        purged?;
        Ok(())
    }
}
