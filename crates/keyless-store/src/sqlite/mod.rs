//! SQLite backend: the embedded default.
//!
//! Writes go through a pool of exactly one connection, so write transactions are
//! serialised by construction (no `SQLITE_BUSY` retries, no lost updates); reads use a
//! separate pool and see committed data thanks to WAL mode.

mod rows;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::StoreError;
use crate::records::*;
use crate::store::{Store, UpsertOutcome};
use rows::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:");
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .synchronous(SqliteSynchronous::Normal);
        let opts = if in_memory {
            opts
        } else {
            opts.journal_mode(SqliteJournalMode::Wal)
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&writer).await.map_err(StoreError::Migration)?;
        // An in-memory database exists per connection: share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts.read_only(true))
                .await?
        };
        Ok(Self { reader, writer })
    }

    /// Opens the database file `path`.
    pub async fn open_file(path: &std::path::Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new().filename(path);
        let url = format!("sqlite://{}", opts.get_filename().display());
        Self::open(&url).await
    }
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn meta_put_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        let stored: String = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
            .try_get("value")?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn insert_tenant(&self, t: &TenantRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tenants (id, display_name, created_at) VALUES (?, ?, ?)")
            .bind(&t.id)
            .bind(&t.display_name)
            .bind(t.created_at)
            .execute(&self.writer)
            .await
            .map_err(|e| conflict_or(e, "tenant exists"))?;
        Ok(())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn insert_subscription(&self, s: &SubscriptionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO subscriptions (id, tenant_id, display_name, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.tenant_id)
        .bind(&s.display_name)
        .bind(s.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "subscription exists"))?;
        Ok(())
    }

    async fn list_subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    async fn upsert_resource_group(
        &self,
        rg: &ResourceGroupRecord,
    ) -> Result<(ResourceGroupRecord, UpsertOutcome), StoreError> {
        let mut tx = self.writer.begin().await?;
        let exists =
            sqlx::query("SELECT 1 FROM resource_groups WHERE subscription_id = ? AND name = ?")
                .bind(&rg.subscription_id)
                .bind(&rg.name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        let tags = json_text(&rg.tags)?;
        if exists {
            sqlx::query(
                "UPDATE resource_groups SET location = ?, tags = ? WHERE subscription_id = ? AND name = ?",
            )
            .bind(&rg.location)
            .bind(&tags)
            .bind(&rg.subscription_id)
            .bind(&rg.name)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO resource_groups (subscription_id, name, location, tags, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&rg.subscription_id)
            .bind(&rg.name)
            .bind(&rg.location)
            .bind(&tags)
            .bind(rg.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| parent_or(e, "subscription"))?;
        }
        let row =
            sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = ? AND name = ?")
                .bind(&rg.subscription_id)
                .bind(&rg.name)
                .fetch_one(&mut *tx)
                .await?;
        let stored = resource_group_from_row(&row)?;
        tx.commit().await?;
        Ok((
            stored,
            if exists {
                UpsertOutcome::Updated
            } else {
                UpsertOutcome::Created
            },
        ))
    }

    async fn get_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
    ) -> Result<Option<ResourceGroupRecord>, StoreError> {
        sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = ? AND name = ?")
            .bind(subscription_id)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(resource_group_from_row)
            .transpose()
    }

    async fn list_resource_groups(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<ResourceGroupRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = ? ORDER BY name")
                .bind(subscription_id)
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(resource_group_from_row).collect()
    }

    async fn delete_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let Some(row) =
            sqlx::query("SELECT name FROM resource_groups WHERE subscription_id = ? AND name = ?")
                .bind(subscription_id)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(false);
        };
        let stored_name: String = row.try_get("name")?;
        let scope = format!("/subscriptions/{subscription_id}/resourceGroups/{stored_name}");
        // Assignments naming identities of the group go with them.
        sqlx::query(
            "DELETE FROM role_assignments WHERE principal_id IN
               (SELECT principal_id FROM identities WHERE subscription_id = ? AND resource_group = ?)",
        )
        .bind(subscription_id)
        .bind(&stored_name)
        .execute(&mut *tx)
        .await?;
        delete_assignments_at_or_below(&mut tx, &scope).await?;
        // Identities and their credentials cascade through the foreign keys.
        sqlx::query("DELETE FROM resource_groups WHERE subscription_id = ? AND name = ?")
            .bind(subscription_id)
            .bind(&stored_name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upsert_identity(
        &self,
        identity: &IdentityRecord,
    ) -> Result<(IdentityRecord, UpsertOutcome), StoreError> {
        let mut tx = self.writer.begin().await?;
        let group =
            sqlx::query("SELECT name FROM resource_groups WHERE subscription_id = ? AND name = ?")
                .bind(&identity.subscription_id)
                .bind(&identity.resource_group)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(group) = group else {
            return Err(StoreError::ParentNotFound(format!(
                "resource group '{}'",
                identity.resource_group
            )));
        };
        let group_name: String = group.try_get("name")?;
        let existing = sqlx::query(
            "SELECT principal_id FROM identities WHERE subscription_id = ? AND resource_group = ? AND name = ?",
        )
        .bind(&identity.subscription_id)
        .bind(&group_name)
        .bind(&identity.name)
        .fetch_optional(&mut *tx)
        .await?;
        let tags = json_text(&identity.tags)?;
        let (principal_id, outcome) = match existing {
            Some(row) => {
                let pid: String = row.try_get("principal_id")?;
                sqlx::query("UPDATE identities SET location = ?, tags = ? WHERE principal_id = ?")
                    .bind(&identity.location)
                    .bind(&tags)
                    .bind(&pid)
                    .execute(&mut *tx)
                    .await?;
                (pid, UpsertOutcome::Updated)
            }
            None => {
                sqlx::query(
                    "INSERT INTO identities (principal_id, client_id, tenant_id, subscription_id, resource_group, name, location, tags, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&identity.principal_id)
                .bind(&identity.client_id)
                .bind(&identity.tenant_id)
                .bind(&identity.subscription_id)
                .bind(&group_name)
                .bind(&identity.name)
                .bind(&identity.location)
                .bind(&tags)
                .bind(identity.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, "identity id collision"))?;
                (identity.principal_id.clone(), UpsertOutcome::Created)
            }
        };
        let row = sqlx::query("SELECT * FROM identities WHERE principal_id = ?")
            .bind(&principal_id)
            .fetch_one(&mut *tx)
            .await?;
        let stored = identity_from_row(&row)?;
        tx.commit().await?;
        Ok((stored, outcome))
    }

    async fn get_identity(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM identities WHERE subscription_id = ? AND resource_group = ? AND name = ?",
        )
        .bind(subscription_id)
        .bind(resource_group)
        .bind(name)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(identity_from_row)
        .transpose()
    }

    async fn list_identities(
        &self,
        subscription_id: &str,
        resource_group: Option<&str>,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = match resource_group {
            Some(rg) => {
                sqlx::query(
                    "SELECT * FROM identities WHERE subscription_id = ? AND resource_group = ? ORDER BY name",
                )
                .bind(subscription_id)
                .bind(rg)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM identities WHERE subscription_id = ? ORDER BY resource_group, name")
                    .bind(subscription_id)
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(identity_from_row).collect()
    }

    async fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM identities")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn delete_identity(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT principal_id FROM identities WHERE subscription_id = ? AND resource_group = ? AND name = ?",
        )
        .bind(subscription_id)
        .bind(resource_group)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let pid: String = row.try_get("principal_id")?;
        sqlx::query("DELETE FROM role_assignments WHERE principal_id = ?")
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM identities WHERE principal_id = ?")
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upsert_federated_credential(
        &self,
        fc: &FederatedCredentialRecord,
        max_per_identity: Option<u32>,
    ) -> Result<(FederatedCredentialRecord, UpsertOutcome), StoreError> {
        // The single writer connection serialises this whole check-then-write.
        let mut tx = self.writer.begin().await?;
        let parent = sqlx::query("SELECT 1 FROM identities WHERE principal_id = ?")
            .bind(&fc.identity_principal_id)
            .fetch_optional(&mut *tx)
            .await?;
        if parent.is_none() {
            return Err(StoreError::ParentNotFound("identity".into()));
        }
        let existing = sqlx::query(
            "SELECT created_at FROM federated_credentials WHERE identity_principal_id = ? AND name = ?",
        )
        .bind(&fc.identity_principal_id)
        .bind(&fc.name)
        .fetch_optional(&mut *tx)
        .await?;
        let audiences =
            serde_json::to_string(&fc.audiences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let outcome = if existing.is_some() {
            sqlx::query(
                "UPDATE federated_credentials SET issuer = ?, subject = ?, audiences = ?, expression = ?, updated_at = ?
                 WHERE identity_principal_id = ? AND name = ?",
            )
            .bind(&fc.issuer)
            .bind(&fc.subject)
            .bind(&audiences)
            .bind(&fc.expression)
            .bind(fc.updated_at)
            .bind(&fc.identity_principal_id)
            .bind(&fc.name)
            .execute(&mut *tx)
            .await
            .map_err(|e| fic_conflict(e, fc))?;
            UpsertOutcome::Updated
        } else {
            if let Some(limit) = max_per_identity {
                let count: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM federated_credentials WHERE identity_principal_id = ?",
                )
                .bind(&fc.identity_principal_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                if count >= i64::from(limit) {
                    return Err(StoreError::LimitExceeded {
                        what: "federated identity credentials per identity".into(),
                        limit,
                    });
                }
            }
            sqlx::query(
                "INSERT INTO federated_credentials (identity_principal_id, name, issuer, subject, audiences, expression, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&fc.identity_principal_id)
            .bind(&fc.name)
            .bind(&fc.issuer)
            .bind(&fc.subject)
            .bind(&audiences)
            .bind(&fc.expression)
            .bind(fc.created_at)
            .bind(fc.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| fic_conflict(e, fc))?;
            UpsertOutcome::Created
        };
        let row = sqlx::query(
            "SELECT * FROM federated_credentials WHERE identity_principal_id = ? AND name = ?",
        )
        .bind(&fc.identity_principal_id)
        .bind(&fc.name)
        .fetch_one(&mut *tx)
        .await?;
        let stored = federated_credential_from_row(&row)?;
        tx.commit().await?;
        Ok((stored, outcome))
    }

    async fn get_federated_credential(
        &self,
        identity_principal_id: &str,
        name: &str,
    ) -> Result<Option<FederatedCredentialRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM federated_credentials WHERE identity_principal_id = ? AND name = ?",
        )
        .bind(identity_principal_id)
        .bind(name)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(federated_credential_from_row)
        .transpose()
    }

    async fn list_federated_credentials(
        &self,
        identity_principal_id: &str,
    ) -> Result<Vec<FederatedCredentialRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM federated_credentials WHERE identity_principal_id = ? ORDER BY name",
        )
        .bind(identity_principal_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(federated_credential_from_row).collect()
    }

    async fn all_federated_credentials(
        &self,
    ) -> Result<Vec<FederatedCredentialRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM federated_credentials")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(federated_credential_from_row).collect()
    }

    async fn delete_federated_credential(
        &self,
        identity_principal_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM federated_credentials WHERE identity_principal_id = ? AND name = ?",
        )
        .bind(identity_principal_id)
        .bind(name)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_service_principal(
        &self,
        sp: &ServicePrincipalRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO service_principals (client_id, principal_id, tenant_id, display_name, secret_hash, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&sp.client_id)
        .bind(&sp.principal_id)
        .bind(&sp.tenant_id)
        .bind(&sp.display_name)
        .bind(&sp.secret_hash)
        .bind(sp.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "service principal exists"))?;
        Ok(())
    }

    async fn set_service_principal_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE service_principals SET secret_hash = ? WHERE client_id = ?")
            .bind(secret_hash)
            .bind(client_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn all_service_principals(&self) -> Result<Vec<ServicePrincipalRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM service_principals")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(service_principal_from_row).collect()
    }

    async fn insert_role_assignment(&self, ra: &RoleAssignmentRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO role_assignments (name, tenant_id, scope, role_definition_id, principal_id, principal_type, description, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&ra.name)
        .bind(&ra.tenant_id)
        .bind(&ra.scope)
        .bind(&ra.role_definition_id)
        .bind(&ra.principal_id)
        .bind(&ra.principal_type)
        .bind(&ra.description)
        .bind(ra.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "the role assignment already exists"))?;
        Ok(())
    }

    async fn all_role_assignments(&self) -> Result<Vec<RoleAssignmentRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM role_assignments ORDER BY created_at, name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(role_assignment_from_row).collect()
    }

    async fn delete_role_assignment(
        &self,
        name: &str,
    ) -> Result<Option<RoleAssignmentRecord>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query("SELECT * FROM role_assignments WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let rec = role_assignment_from_row(&row)?;
        sqlx::query("DELETE FROM role_assignments WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, tenant_id, alg, sealed_private_key, created_at, active_from, retired_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.tenant_id)
        .bind(&key.alg)
        .bind(&key.sealed_private_key)
        .bind(key.created_at)
        .bind(key.active_from)
        .bind(key.retired_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "key id exists"))?;
        Ok(())
    }

    async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = ?1 WHERE kid = ?2 AND (retired_at IS NULL OR retired_at > ?1)",
        )
        .bind(at)
        .bind(kid)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn delete_signing_keys_retired_before(&self, before: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?")
                .bind(before)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected())
    }

    async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn upsert_trusted_issuer(
        &self,
        rec: &TrustedIssuerRecord,
    ) -> Result<UpsertOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM trusted_issuers WHERE tenant_id = ? AND name = ?")
            .bind(&rec.tenant_id)
            .bind(&rec.name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let conflict = |e| conflict_or(e, "another registration already trusts this issuer");
        if exists {
            sqlx::query("UPDATE trusted_issuers SET issuer = ?, jwks = ?, updated_at = ? WHERE tenant_id = ? AND name = ?")
                .bind(&rec.issuer)
                .bind(&rec.jwks)
                .bind(rec.updated_at)
                .bind(&rec.tenant_id)
                .bind(&rec.name)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
        } else {
            sqlx::query(
                "INSERT INTO trusted_issuers (tenant_id, name, issuer, jwks, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&rec.tenant_id)
            .bind(&rec.name)
            .bind(&rec.issuer)
            .bind(&rec.jwks)
            .bind(rec.created_at)
            .bind(rec.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
        }
        tx.commit().await?;
        Ok(if exists {
            UpsertOutcome::Updated
        } else {
            UpsertOutcome::Created
        })
    }

    async fn all_trusted_issuers(&self) -> Result<Vec<TrustedIssuerRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM trusted_issuers ORDER BY tenant_id, name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(trusted_issuer_from_row).collect()
    }

    async fn delete_trusted_issuer(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM trusted_issuers WHERE tenant_id = ? AND name = ?")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_signins(&self, records: &[SignInRecord]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO signin_log (at, tenant_id, client_id, principal_id, issuer, subject, resource, success, error_code, error, client_ip, correlation_id, latency_us)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.at)
            .bind(&r.tenant_id)
            .bind(&r.client_id)
            .bind(&r.principal_id)
            .bind(&r.issuer)
            .bind(&r.subject)
            .bind(&r.resource)
            .bind(r.success)
            .bind(r.error_code.map(i64::from))
            .bind(&r.error)
            .bind(&r.client_ip)
            .bind(&r.correlation_id)
            .bind(r.latency_us)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn query_signins(&self, q: &SignInQuery) -> Result<Vec<SignInRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM signin_log
             WHERE tenant_id = ?1
               AND (?2 IS NULL OR client_id = ?2)
               AND (?3 = 0 OR success = 0)
               AND (?4 IS NULL OR at >= ?4)
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(&q.tenant_id)
        .bind(&q.client_id)
        .bind(q.failed_only)
        .bind(q.since)
        .bind(i64::from(q.limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(signin_from_row).collect()
    }

    async fn upsert_vault(
        &self,
        v: &VaultRecord,
    ) -> Result<(VaultRecord, UpsertOutcome), StoreError> {
        let mut tx = self.writer.begin().await?;
        let group =
            sqlx::query("SELECT name FROM resource_groups WHERE subscription_id = ? AND name = ?")
                .bind(&v.subscription_id)
                .bind(&v.resource_group)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(group) = group else {
            return Err(StoreError::ParentNotFound(format!(
                "resource group '{}'",
                v.resource_group
            )));
        };
        let group_name: String = group.try_get("name")?;
        let existing =
            sqlx::query("SELECT subscription_id, resource_group FROM vaults WHERE name = ?")
                .bind(&v.name)
                .fetch_optional(&mut *tx)
                .await?;
        let tags = json_text(&v.tags)?;
        let outcome = match existing {
            Some(row) => {
                let sub: String = row.try_get("subscription_id")?;
                let rg: String = row.try_get("resource_group")?;
                if sub != v.subscription_id || !rg.eq_ignore_ascii_case(&group_name) {
                    return Err(StoreError::Conflict(format!(
                        "the vault name '{}' is already in use",
                        v.name
                    )));
                }
                sqlx::query("UPDATE vaults SET location = ?, tags = ? WHERE name = ?")
                    .bind(&v.location)
                    .bind(&tags)
                    .bind(&v.name)
                    .execute(&mut *tx)
                    .await?;
                UpsertOutcome::Updated
            }
            None => {
                sqlx::query(
                    "INSERT INTO vaults (name, subscription_id, resource_group, tenant_id, location, tags, soft_delete_days, purge_protection, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&v.name)
                .bind(&v.subscription_id)
                .bind(&group_name)
                .bind(&v.tenant_id)
                .bind(&v.location)
                .bind(&tags)
                .bind(v.soft_delete_days)
                .bind(v.purge_protection)
                .bind(v.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, "the vault name is already in use"))?;
                UpsertOutcome::Created
            }
        };
        let row = sqlx::query("SELECT * FROM vaults WHERE name = ?")
            .bind(&v.name)
            .fetch_one(&mut *tx)
            .await?;
        let stored = vault_from_row(&row)?;
        tx.commit().await?;
        Ok((stored, outcome))
    }

    async fn get_vault(&self, name: &str) -> Result<Option<VaultRecord>, StoreError> {
        sqlx::query("SELECT * FROM vaults WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(vault_from_row)
            .transpose()
    }

    async fn all_vaults(&self) -> Result<Vec<VaultRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM vaults ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(vault_from_row).collect()
    }

    async fn delete_vault(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let Some(row) = sqlx::query("SELECT * FROM vaults WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let v = vault_from_row(&row)?;
        let scope = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}",
            v.subscription_id, v.resource_group, v.name
        );
        delete_assignments_at_or_below(&mut tx, &scope).await?;
        sqlx::query("DELETE FROM vaults WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_secret_version(&self, v: &SecretVersionRecord) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        if sqlx::query("SELECT 1 FROM vaults WHERE name = ?")
            .bind(&v.vault)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::ParentNotFound(format!("vault '{}'", v.vault)));
        }
        let state = sqlx::query("SELECT deleted_at FROM secrets WHERE vault = ? AND name = ?")
            .bind(&v.vault)
            .bind(&v.name)
            .fetch_optional(&mut *tx)
            .await?;
        match state {
            Some(row) => {
                let deleted: Option<i64> = row.try_get("deleted_at")?;
                if deleted.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "Secret {} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.",
                        v.name
                    )));
                }
            }
            None => {
                sqlx::query("INSERT INTO secrets (vault, name) VALUES (?, ?)")
                    .bind(&v.vault)
                    .bind(&v.name)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM secret_versions WHERE vault = ? AND name = ?")
            .bind(&v.vault)
            .bind(&v.name)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        sqlx::query(
            "INSERT INTO secret_versions (vault, name, version, sealed_value, content_type, tags, enabled, nbf, exp, created_at, updated_at, seq)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&v.vault)
        .bind(&v.name)
        .bind(&v.version)
        .bind(&v.sealed_value)
        .bind(&v.content_type)
        .bind(json_text(&v.tags)?)
        .bind(v.enabled)
        .bind(v.nbf)
        .bind(v.exp)
        .bind(v.created_at)
        .bind(v.updated_at)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "version exists"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_secret(
        &self,
        vault: &str,
        name: &str,
    ) -> Result<Option<SecretRecord>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM secrets WHERE vault = ? AND name = ?")
            .bind(vault)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let versions =
            sqlx::query("SELECT * FROM secret_versions WHERE vault = ? AND name = ? ORDER BY seq")
                .bind(vault)
                .bind(name)
                .fetch_all(&self.reader)
                .await?;
        let versions: Vec<&sqlx::sqlite::SqliteRow> = versions.iter().collect();
        Ok(Some(secret_from_rows(&row, &versions)?))
    }

    async fn list_secrets(&self, vault: &str) -> Result<Vec<SecretRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM secrets WHERE vault = ? ORDER BY name")
            .bind(vault)
            .fetch_all(&self.reader)
            .await?;
        let versions =
            sqlx::query("SELECT * FROM secret_versions WHERE vault = ? ORDER BY name, seq")
                .bind(vault)
                .fetch_all(&self.reader)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("name")?;
            let mine: Vec<_> = versions
                .iter()
                .filter(|v| {
                    v.try_get::<String, _>("name")
                        .is_ok_and(|n| n.eq_ignore_ascii_case(&name))
                })
                .collect();
            out.push(secret_from_rows(row, &mine)?);
        }
        Ok(out)
    }

    async fn update_secret_version(&self, v: &SecretVersionRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE secret_versions SET content_type = ?, tags = ?, enabled = ?, nbf = ?, exp = ?, updated_at = ?
             WHERE vault = ? AND name = ? AND version = ?",
        )
        .bind(&v.content_type)
        .bind(json_text(&v.tags)?)
        .bind(v.enabled)
        .bind(v.nbf)
        .bind(v.exp)
        .bind(v.updated_at)
        .bind(&v.vault)
        .bind(&v.name)
        .bind(&v.version)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn soft_delete_secret(
        &self,
        vault: &str,
        name: &str,
        at: i64,
        purge_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE secrets SET deleted_at = ?, purge_at = ? WHERE vault = ? AND name = ? AND deleted_at IS NULL")
            .bind(at)
            .bind(purge_at)
            .bind(vault)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn recover_secret(&self, vault: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE secrets SET deleted_at = NULL, purge_at = NULL WHERE vault = ? AND name = ? AND deleted_at IS NOT NULL")
            .bind(vault)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_secret(&self, vault: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE vault = ? AND name = ?")
            .bind(vault)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_expired_secrets(&self, now: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM secrets WHERE deleted_at IS NOT NULL AND purge_at <= ?")
                .bind(now)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected())
    }

    async fn change_feed(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        // One process owns an SQLite database: its own writes refresh its view.
        Ok(None)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}

async fn delete_assignments_at_or_below(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    scope: &str,
) -> Result<(), StoreError> {
    // Prefix compare with substr, not LIKE: names may contain `_`, a LIKE wildcard.
    sqlx::query(
        "DELETE FROM role_assignments
         WHERE lower(scope) = lower(?1)
            OR lower(substr(scope, 1, length(?1) + 1)) = lower(?1 || '/')",
    )
    .bind(scope)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn conflict_or(e: sqlx::Error, what: &str) -> StoreError {
    if unique_violation(&e) {
        StoreError::Conflict(what.to_string())
    } else {
        StoreError::Database(e)
    }
}

fn parent_or(e: sqlx::Error, parent: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::ParentNotFound(parent.to_string())
        }
        _ => StoreError::Database(e),
    }
}

fn fic_conflict(e: sqlx::Error, fc: &FederatedCredentialRecord) -> StoreError {
    if unique_violation(&e) {
        StoreError::Conflict(format!(
            "a federated identity credential with issuer '{}' and subject '{}' already exists on this identity",
            fc.issuer,
            fc.subject.as_deref().unwrap_or("")
        ))
    } else {
        StoreError::Database(e)
    }
}
