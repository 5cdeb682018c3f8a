//! PostgreSQL backend: one database shared by several `keyless serve` replicas.
//!
//! It is held to exactly the behaviour of the SQLite backend by the
//! [`conformance`](crate::conformance) suite. What differs is how that behaviour survives
//! concurrent writers in *different processes*, where SQLite relies on its single writer
//! connection:
//!
//! * **Transactions.** Every method is one transaction at READ COMMITTED (each statement
//!   sees what committed before it started). Races are excluded with explicit locks, not
//!   with SERIALIZABLE (which would push retry loops into every method):
//!   - a write under a parent first locks the parent row, which also proves the parent
//!     exists: identities lock their resource group, federated credentials their
//!     identity, secrets their vault, resource groups their subscription (`FOR NO KEY
//!     UPDATE`: it serialises the writers under one parent but not the foreign-key checks
//!     of other tables). So the credential count limit and the check-then-write of every
//!     upsert are race-free, and a concurrent upsert of the same name updates the row the
//!     first one created instead of failing;
//!   - the row an upsert updates or a delete removes is locked when it is read
//!     (`FOR NO KEY UPDATE` / `FOR UPDATE`), so it cannot vanish or change in between;
//!   - trusted issuers have no parent row: a transaction-scoped advisory lock on
//!     (tenant, name) serialises writers of one registration;
//!   - deletes that cascade into role assignments (resource group, identity, vault) take
//!     `SHARE ROW EXCLUSIVE` on `role_assignments`, so no assignment can be added at a
//!     scope (or for a principal) while it is being deleted: the cascade is atomic with
//!     respect to every other write, as with SQLite.
//!
//!   Uniqueness rules are enforced by unique indexes, never by a read: the locks above
//!   only decide *which* of two writers sees the other's row.
//! * **Names.** Case-insensitive names (SQLite `COLLATE NOCASE`) have a generated
//!   `*_key` column, `lower(name)` under the "C" collation (A-Z only, like NOCASE); keys,
//!   unique rules and foreign keys use it, and the column itself keeps the first casing.
//!   Queries bind `fold(name)`, which folds identically. Every text column is
//!   `COLLATE "C"`, so sorting and comparison are bytewise whatever the database locale.
//! * **Errors.** A unique violation is [`StoreError::Conflict`], a foreign-key violation
//!   [`StoreError::ParentNotFound`], anything else (including an unreachable database)
//!   [`StoreError::Database`].
//! * **Change feed.** Every write that changes something runs
//!   `pg_notify('keyless_changes', <table>)` inside its transaction, so the notification
//!   is delivered exactly when the write commits (never for a rolled-back write). See
//!   [`feed`] for the listener. Sign-in log appends do not notify: the log is not part of
//!   any replica's in-memory view, and notifying on it would make every replica reload
//!   after every batch of token requests.
//! * **Pool.** At most [`MAX_CONNECTIONS`] connections per process; acquiring one waits
//!   at most [`ACQUIRE_TIMEOUT`], so while the database is down every call fails within
//!   that time with [`StoreError::Database`] (connection attempts are retried inside that
//!   window). Connections are checked before use, so a restarted server is picked up by
//!   itself. A connection that dies silently *during* a query (no RST) is not bounded by
//!   the pool; callers that must answer quickly should put their own deadline around
//!   store calls.
//! * **Migrations** (`migrations/postgres`, numbered as SQLite's) run under sqlx's
//!   migrator, which holds a session advisory lock for the database while it works, so
//!   replicas starting at once apply each migration exactly once. The role needs to be
//!   able to create tables in the `public` schema (PostgreSQL ≥ 15 grants that only to
//!   the database owner by default). No extension or superuser right is needed.
//!
//! PostgreSQL 12 or newer (generated columns).

pub mod feed;
mod rows;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::StoreError;
use crate::records::*;
use crate::store::{Store, UpsertOutcome};
use rows::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Most connections one store (one process) opens.
pub const MAX_CONNECTIONS: u32 = 10;
/// Longest wait for a pooled connection, including connection attempts while the server
/// is unreachable: the bound on how long a call takes to fail when the database is down.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Class id of Keyless' transaction-scoped advisory locks (the two-key form, so it can
/// never collide with sqlx's single-key migration lock).
const ADVISORY_CLASS: i32 = 0x4b4c; // "KL"

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    options: PgConnectOptions,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=...`) and
    /// brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options and brings the schema up to date.
    pub async fn open_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let options = if options.get_application_name().is_none() {
            options.application_name("keyless")
        } else {
            options
        };
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await.map_err(StoreError::Migration)?;
        Ok(Self { pool, options })
    }

    /// Closes every pooled connection (a change feed keeps its own until its receiver is
    /// dropped).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// PostgreSQL text cannot hold U+0000 (SQLite's can). The sign-in log records what
/// callers sent (client id, assertion claims, error text), so one request with a NUL in
/// it would fail its whole batch, deterministically, on every retry: an audit-log hole
/// anyone could open. There, NUL is stored as U+FFFD. In any other write a NUL fails
/// the write with [`StoreError::Database`]: input validation should refuse control
/// characters before they reach the store.
fn storable(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Folds a name the way the generated `*_key` columns do (`lower()` under "C": A-Z only).
fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

type Tx = Transaction<'static, Postgres>;

/// Queues the change notification; PostgreSQL delivers it if and when `tx` commits.
async fn notify(tx: &mut Tx, what: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(feed::CHANNEL)
        .bind(what)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Maps a write's error: unique violation → `Conflict(conflict)`, foreign-key violation →
/// `ParentNotFound(parent)`, anything else → `Database`.
fn write_error(e: sqlx::Error, conflict: &str, parent: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(conflict.to_string())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::ParentNotFound(parent.to_string())
        }
        _ => StoreError::Database(e),
    }
}

fn fic_conflict(e: sqlx::Error, fc: &FederatedCredentialRecord) -> StoreError {
    write_error(
        e,
        &format!(
            "a federated identity credential with issuer '{}' and subject '{}' already exists on this identity",
            fc.issuer,
            fc.subject.as_deref().unwrap_or("")
        ),
        "identity",
    )
}

fn outcome(existed: bool) -> UpsertOutcome {
    if existed {
        UpsertOutcome::Updated
    } else {
        UpsertOutcome::Created
    }
}

/// A stable 32-bit hash (FNV-1a) for advisory lock keys: every replica computes the same.
fn lock_key(parts: &[&str]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    i32::from_ne_bytes(h.to_ne_bytes())
}

async fn advisory_lock(tx: &mut Tx, parts: &[&str]) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(ADVISORY_CLASS)
        .bind(lock_key(parts))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Blocks role-assignment inserts and deletes until `tx` ends (see the module docs).
async fn lock_role_assignments(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query("LOCK TABLE role_assignments IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn delete_assignments_at_or_below(tx: &mut Tx, scope: &str) -> Result<(), StoreError> {
    // A prefix compare on the folded scope, not LIKE: names may contain `_`.
    let key = fold(scope);
    sqlx::query("DELETE FROM role_assignments WHERE scope_key = $1 OR starts_with(scope_key, $2)")
        .bind(&key)
        .bind(format!("{key}/"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn meta_put_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A concurrent insert of the same key makes this wait for that transaction; if it
        // commits, nothing is inserted here and the SELECT (a new snapshot) sees its value.
        let inserted = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let stored: String = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
            .try_get("value")?;
        if inserted > 0 {
            notify(&mut tx, "meta").await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn insert_tenant(&self, t: &TenantRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO tenants (id, display_name, created_at) VALUES ($1, $2, $3)")
            .bind(&t.id)
            .bind(&t.display_name)
            .bind(t.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| write_error(e, "tenant exists", "tenant"))?;
        notify(&mut tx, "tenants").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn insert_subscription(&self, s: &SubscriptionRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO subscriptions (id, tenant_id, display_name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&s.id)
        .bind(&s.tenant_id)
        .bind(&s.display_name)
        .bind(s.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, "subscription exists", "tenant"))?;
        notify(&mut tx, "subscriptions").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    async fn upsert_resource_group(
        &self,
        rg: &ResourceGroupRecord,
    ) -> Result<(ResourceGroupRecord, UpsertOutcome), StoreError> {
        let key = fold(&rg.name);
        let mut tx = self.pool.begin().await?;
        // The subscription's lock serialises group upserts in it.
        if sqlx::query("SELECT 1 FROM subscriptions WHERE id = $1 FOR NO KEY UPDATE")
            .bind(&rg.subscription_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::ParentNotFound("subscription".into()));
        }
        let exists = sqlx::query(
            "SELECT 1 FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
        )
        .bind(&rg.subscription_id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        let tags = json_text(&rg.tags)?;
        if exists {
            sqlx::query(
                "UPDATE resource_groups SET location = $1, tags = $2 WHERE subscription_id = $3 AND name_key = $4",
            )
            .bind(&rg.location)
            .bind(&tags)
            .bind(&rg.subscription_id)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO resource_groups (subscription_id, name, location, tags, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&rg.subscription_id)
            .bind(&rg.name)
            .bind(&rg.location)
            .bind(&tags)
            .bind(rg.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| write_error(e, "resource group exists", "subscription"))?;
        }
        let row = sqlx::query(
            "SELECT * FROM resource_groups WHERE subscription_id = $1 AND name_key = $2",
        )
        .bind(&rg.subscription_id)
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
        let stored = resource_group_from_row(&row)?;
        notify(&mut tx, "resource_groups").await?;
        tx.commit().await?;
        Ok((stored, outcome(exists)))
    }

    async fn get_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
    ) -> Result<Option<ResourceGroupRecord>, StoreError> {
        sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
            .bind(subscription_id)
            .bind(fold(name))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(resource_group_from_row)
            .transpose()
    }

    async fn list_resource_groups(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<ResourceGroupRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM resource_groups WHERE subscription_id = $1 ORDER BY name_key",
        )
        .bind(subscription_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(resource_group_from_row).collect()
    }

    async fn delete_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let key = fold(name);
        let mut tx = self.pool.begin().await?;
        lock_role_assignments(&mut tx).await?;
        let Some(row) = sqlx::query(
            "SELECT name FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR UPDATE",
        )
        .bind(subscription_id)
        .bind(&key)
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
               (SELECT principal_id FROM identities WHERE subscription_id = $1 AND resource_group_key = $2)",
        )
        .bind(subscription_id)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        delete_assignments_at_or_below(&mut tx, &scope).await?;
        // Identities, their credentials, vaults and their secrets cascade through the
        // foreign keys.
        sqlx::query("DELETE FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
            .bind(subscription_id)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, "resource_groups").await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upsert_identity(
        &self,
        identity: &IdentityRecord,
    ) -> Result<(IdentityRecord, UpsertOutcome), StoreError> {
        let group_key = fold(&identity.resource_group);
        let mut tx = self.pool.begin().await?;
        // The group's lock serialises identity upserts in it (and keeps it from being
        // deleted until this commits).
        let group = sqlx::query(
            "SELECT name FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
        )
        .bind(&identity.subscription_id)
        .bind(&group_key)
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
            "SELECT principal_id FROM identities
             WHERE subscription_id = $1 AND resource_group_key = $2 AND name_key = $3
             FOR NO KEY UPDATE",
        )
        .bind(&identity.subscription_id)
        .bind(&group_key)
        .bind(fold(&identity.name))
        .fetch_optional(&mut *tx)
        .await?;
        let tags = json_text(&identity.tags)?;
        let (principal_id, outcome) = match existing {
            Some(row) => {
                let pid: String = row.try_get("principal_id")?;
                sqlx::query(
                    "UPDATE identities SET location = $1, tags = $2 WHERE principal_id = $3",
                )
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
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                .map_err(|e| write_error(e, "identity id collision", "resource group"))?;
                (identity.principal_id.clone(), UpsertOutcome::Created)
            }
        };
        let row = sqlx::query("SELECT * FROM identities WHERE principal_id = $1")
            .bind(&principal_id)
            .fetch_one(&mut *tx)
            .await?;
        let stored = identity_from_row(&row)?;
        notify(&mut tx, "identities").await?;
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
            "SELECT * FROM identities WHERE subscription_id = $1 AND resource_group_key = $2 AND name_key = $3",
        )
        .bind(subscription_id)
        .bind(fold(resource_group))
        .bind(fold(name))
        .fetch_optional(&self.pool)
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
                    "SELECT * FROM identities WHERE subscription_id = $1 AND resource_group_key = $2 ORDER BY name_key",
                )
                .bind(subscription_id)
                .bind(fold(rg))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT * FROM identities WHERE subscription_id = $1 ORDER BY resource_group_key, name_key",
                )
                .bind(subscription_id)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(identity_from_row).collect()
    }

    async fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM identities ORDER BY created_at, principal_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn delete_identity(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_role_assignments(&mut tx).await?;
        let Some(row) = sqlx::query(
            "SELECT principal_id FROM identities
             WHERE subscription_id = $1 AND resource_group_key = $2 AND name_key = $3
             FOR UPDATE",
        )
        .bind(subscription_id)
        .bind(fold(resource_group))
        .bind(fold(name))
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let pid: String = row.try_get("principal_id")?;
        sqlx::query("DELETE FROM role_assignments WHERE principal_id = $1")
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        // Credentials cascade through the foreign key.
        sqlx::query("DELETE FROM identities WHERE principal_id = $1")
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, "identities").await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upsert_federated_credential(
        &self,
        fc: &FederatedCredentialRecord,
        max_per_identity: Option<u32>,
    ) -> Result<(FederatedCredentialRecord, UpsertOutcome), StoreError> {
        let key = fold(&fc.name);
        let mut tx = self.pool.begin().await?;
        // Locking the identity serialises every credential write on it, across replicas:
        // the existence check, the count limit and the insert below see each other.
        let parent =
            sqlx::query("SELECT 1 FROM identities WHERE principal_id = $1 FOR NO KEY UPDATE")
                .bind(&fc.identity_principal_id)
                .fetch_optional(&mut *tx)
                .await?;
        if parent.is_none() {
            return Err(StoreError::ParentNotFound("identity".into()));
        }
        let exists = sqlx::query(
            "SELECT 1 FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
        )
        .bind(&fc.identity_principal_id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        let audiences =
            serde_json::to_string(&fc.audiences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if exists {
            sqlx::query(
                "UPDATE federated_credentials SET issuer = $1, subject = $2, audiences = $3, expression = $4, updated_at = $5
                 WHERE identity_principal_id = $6 AND name_key = $7",
            )
            .bind(&fc.issuer)
            .bind(&fc.subject)
            .bind(&audiences)
            .bind(&fc.expression)
            .bind(fc.updated_at)
            .bind(&fc.identity_principal_id)
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(|e| fic_conflict(e, fc))?;
        } else {
            if let Some(limit) = max_per_identity {
                let count: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM federated_credentials WHERE identity_principal_id = $1",
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        }
        let row = sqlx::query(
            "SELECT * FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
        )
        .bind(&fc.identity_principal_id)
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
        let stored = federated_credential_from_row(&row)?;
        notify(&mut tx, "federated_credentials").await?;
        tx.commit().await?;
        Ok((stored, outcome(exists)))
    }

    async fn get_federated_credential(
        &self,
        identity_principal_id: &str,
        name: &str,
    ) -> Result<Option<FederatedCredentialRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
        )
        .bind(identity_principal_id)
        .bind(fold(name))
        .fetch_optional(&self.pool)
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
            "SELECT * FROM federated_credentials WHERE identity_principal_id = $1 ORDER BY name_key",
        )
        .bind(identity_principal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(federated_credential_from_row).collect()
    }

    async fn all_federated_credentials(
        &self,
    ) -> Result<Vec<FederatedCredentialRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM federated_credentials ORDER BY identity_principal_id, name_key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(federated_credential_from_row).collect()
    }

    async fn delete_federated_credential(
        &self,
        identity_principal_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "DELETE FROM federated_credentials WHERE identity_principal_id = $1 AND name_key = $2",
        )
        .bind(identity_principal_id)
        .bind(fold(name))
        .execute(&mut *tx)
        .await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            notify(&mut tx, "federated_credentials").await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn insert_service_principal(
        &self,
        sp: &ServicePrincipalRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO service_principals (client_id, principal_id, tenant_id, display_name, secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&sp.client_id)
        .bind(&sp.principal_id)
        .bind(&sp.tenant_id)
        .bind(&sp.display_name)
        .bind(&sp.secret_hash)
        .bind(sp.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, "service principal exists", "tenant"))?;
        notify(&mut tx, "service_principals").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_service_principal_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE service_principals SET secret_hash = $1 WHERE client_id = $2")
                .bind(secret_hash)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() > 0 {
            notify(&mut tx, "service_principals").await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn all_service_principals(&self) -> Result<Vec<ServicePrincipalRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM service_principals ORDER BY created_at, client_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(service_principal_from_row).collect()
    }

    async fn insert_role_assignment(&self, ra: &RoleAssignmentRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO role_assignments (name, tenant_id, scope, role_definition_id, principal_id, principal_type, description, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&ra.name)
        .bind(&ra.tenant_id)
        .bind(&ra.scope)
        .bind(&ra.role_definition_id)
        .bind(&ra.principal_id)
        .bind(&ra.principal_type)
        .bind(&ra.description)
        .bind(ra.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, "the role assignment already exists", "scope"))?;
        notify(&mut tx, "role_assignments").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn all_role_assignments(&self) -> Result<Vec<RoleAssignmentRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM role_assignments ORDER BY created_at, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(role_assignment_from_row).collect()
    }

    async fn delete_role_assignment(
        &self,
        name: &str,
    ) -> Result<Option<RoleAssignmentRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("DELETE FROM role_assignments WHERE name = $1 RETURNING *")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let rec = role_assignment_from_row(&row)?;
        notify(&mut tx, "role_assignments").await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, tenant_id, alg, sealed_private_key, created_at, active_from, retired_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(&key.tenant_id)
        .bind(&key.alg)
        .bind(&key.sealed_private_key)
        .bind(key.created_at)
        .bind(key.active_from)
        .bind(key.retired_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, "key id exists", "tenant"))?;
        notify(&mut tx, "signing_keys").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND (retired_at IS NULL OR retired_at > $1)",
        )
        .bind(at)
        .bind(kid)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            notify(&mut tx, "signing_keys").await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_signing_keys_retired_before(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            notify(&mut tx, "signing_keys").await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn upsert_trusted_issuer(
        &self,
        rec: &TrustedIssuerRecord,
    ) -> Result<UpsertOutcome, StoreError> {
        let key = fold(&rec.name);
        let mut tx = self.pool.begin().await?;
        // No parent row to lock: serialise writers of this registration by name.
        advisory_lock(&mut tx, &["trusted_issuers", &rec.tenant_id, &key]).await?;
        let exists = sqlx::query(
            "SELECT 1 FROM trusted_issuers WHERE tenant_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
        )
        .bind(&rec.tenant_id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        let conflict = |e| {
            write_error(
                e,
                "another registration already trusts this issuer",
                "tenant",
            )
        };
        if exists {
            sqlx::query(
                "UPDATE trusted_issuers SET issuer = $1, jwks = $2, updated_at = $3 WHERE tenant_id = $4 AND name_key = $5",
            )
            .bind(&rec.issuer)
            .bind(&rec.jwks)
            .bind(rec.updated_at)
            .bind(&rec.tenant_id)
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
        } else {
            sqlx::query(
                "INSERT INTO trusted_issuers (tenant_id, name, issuer, jwks, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
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
        notify(&mut tx, "trusted_issuers").await?;
        tx.commit().await?;
        Ok(outcome(exists))
    }

    async fn all_trusted_issuers(&self) -> Result<Vec<TrustedIssuerRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM trusted_issuers ORDER BY tenant_id, name_key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trusted_issuer_from_row).collect()
    }

    async fn delete_trusted_issuer(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("DELETE FROM trusted_issuers WHERE tenant_id = $1 AND name_key = $2")
                .bind(tenant_id)
                .bind(fold(name))
                .execute(&mut *tx)
                .await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            notify(&mut tx, "trusted_issuers").await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn insert_signins(&self, records: &[SignInRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch (column arrays, unnested into rows). No
        // notification: see the module docs. Text is made storable first (see `storable`).
        let text = |f: fn(&SignInRecord) -> &str| {
            records.iter().map(|r| storable(f(r))).collect::<Vec<_>>()
        };
        let opt = |f: fn(&SignInRecord) -> Option<&str>| {
            records
                .iter()
                .map(|r| f(r).map(storable))
                .collect::<Vec<_>>()
        };
        sqlx::query(
            "INSERT INTO signin_log (at, tenant_id, client_id, principal_id, issuer, subject, resource, success, error_code, error, client_ip, correlation_id, latency_us)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                  $8::boolean[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::bigint[])",
        )
        .bind(records.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(text(|r| &r.tenant_id))
        .bind(text(|r| &r.client_id))
        .bind(opt(|r| r.principal_id.as_deref()))
        .bind(opt(|r| r.issuer.as_deref()))
        .bind(opt(|r| r.subject.as_deref()))
        .bind(opt(|r| r.resource.as_deref()))
        .bind(records.iter().map(|r| r.success).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.error_code.map(i64::from)).collect::<Vec<_>>())
        .bind(opt(|r| r.error.as_deref()))
        .bind(opt(|r| r.client_ip.as_deref()))
        .bind(text(|r| &r.correlation_id))
        .bind(records.iter().map(|r| r.latency_us).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn query_signins(&self, q: &SignInQuery) -> Result<Vec<SignInRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM signin_log
             WHERE tenant_id = $1
               AND ($2::text IS NULL OR client_id = $2)
               AND (NOT $3::boolean OR NOT success)
               AND ($4::bigint IS NULL OR at >= $4)
             ORDER BY id DESC LIMIT $5",
        )
        .bind(&q.tenant_id)
        .bind(&q.client_id)
        .bind(q.failed_only)
        .bind(q.since)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(signin_from_row).collect()
    }

    async fn upsert_vault(
        &self,
        v: &VaultRecord,
    ) -> Result<(VaultRecord, UpsertOutcome), StoreError> {
        let key = fold(&v.name);
        let group_key = fold(&v.resource_group);
        let mut tx = self.pool.begin().await?;
        // The group's lock serialises upserts of the same vault in the same group (and
        // keeps the group until this commits). The same name in two groups at once is
        // a conflict whichever wins, enforced by the primary key.
        let group = sqlx::query(
            "SELECT name FROM resource_groups WHERE subscription_id = $1 AND name_key = $2 FOR NO KEY UPDATE",
        )
        .bind(&v.subscription_id)
        .bind(&group_key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(group) = group else {
            return Err(StoreError::ParentNotFound(format!(
                "resource group '{}'",
                v.resource_group
            )));
        };
        let group_name: String = group.try_get("name")?;
        let in_use =
            || StoreError::Conflict(format!("the vault name '{}' is already in use", v.name));
        let existing = sqlx::query(
            "SELECT subscription_id, resource_group_key FROM vaults WHERE name_key = $1 FOR NO KEY UPDATE",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let tags = json_text(&v.tags)?;
        let exists = match existing {
            Some(row) => {
                let sub: String = row.try_get("subscription_id")?;
                let rg: String = row.try_get("resource_group_key")?;
                if sub != v.subscription_id || rg != group_key {
                    return Err(in_use());
                }
                sqlx::query("UPDATE vaults SET location = $1, tags = $2 WHERE name_key = $3")
                    .bind(&v.location)
                    .bind(&tags)
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
                true
            }
            None => {
                sqlx::query(
                    "INSERT INTO vaults (name, subscription_id, resource_group, tenant_id, location, tags, soft_delete_days, purge_protection, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                .map_err(|e| match write_error(e, "", "resource group") {
                    StoreError::Conflict(_) => in_use(),
                    other => other,
                })?;
                false
            }
        };
        let row = sqlx::query("SELECT * FROM vaults WHERE name_key = $1")
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?;
        let stored = vault_from_row(&row)?;
        notify(&mut tx, "vaults").await?;
        tx.commit().await?;
        Ok((stored, outcome(exists)))
    }

    async fn get_vault(&self, name: &str) -> Result<Option<VaultRecord>, StoreError> {
        sqlx::query("SELECT * FROM vaults WHERE name_key = $1")
            .bind(fold(name))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(vault_from_row)
            .transpose()
    }

    async fn all_vaults(&self) -> Result<Vec<VaultRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM vaults ORDER BY name_key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(vault_from_row).collect()
    }

    async fn delete_vault(&self, name: &str) -> Result<bool, StoreError> {
        let key = fold(name);
        let mut tx = self.pool.begin().await?;
        lock_role_assignments(&mut tx).await?;
        let Some(row) = sqlx::query("SELECT * FROM vaults WHERE name_key = $1 FOR UPDATE")
            .bind(&key)
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
        // Secrets and their versions cascade through the foreign keys.
        sqlx::query("DELETE FROM vaults WHERE name_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, "vaults").await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_secret_version(&self, v: &SecretVersionRecord) -> Result<(), StoreError> {
        let vault_key = fold(&v.vault);
        let name_key = fold(&v.name);
        let mut tx = self.pool.begin().await?;
        // The vault's lock serialises secret writes in it: creating the secret row and
        // numbering versions (seq) cannot race.
        if sqlx::query("SELECT 1 FROM vaults WHERE name_key = $1 FOR NO KEY UPDATE")
            .bind(&vault_key)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::ParentNotFound(format!("vault '{}'", v.vault)));
        }
        let state = sqlx::query(
            "SELECT deleted_at FROM secrets WHERE vault_key = $1 AND name_key = $2 FOR NO KEY UPDATE",
        )
        .bind(&vault_key)
        .bind(&name_key)
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
                sqlx::query("INSERT INTO secrets (vault, name) VALUES ($1, $2)")
                    .bind(&v.vault)
                    .bind(&v.name)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| write_error(e, "secret exists", "vault"))?;
            }
        }
        let seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM secret_versions WHERE vault_key = $1 AND name_key = $2",
        )
        .bind(&vault_key)
        .bind(&name_key)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        sqlx::query(
            "INSERT INTO secret_versions (vault, name, version, sealed_value, content_type, tags, enabled, nbf, exp, created_at, updated_at, seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        .map_err(|e| write_error(e, "version exists", "secret"))?;
        notify(&mut tx, "secrets").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_secret(
        &self,
        vault: &str,
        name: &str,
    ) -> Result<Option<SecretRecord>, StoreError> {
        // One snapshot for the secret and its versions.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let (vault_key, name_key) = (fold(vault), fold(name));
        let Some(row) = sqlx::query("SELECT * FROM secrets WHERE vault_key = $1 AND name_key = $2")
            .bind(&vault_key)
            .bind(&name_key)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let versions = sqlx::query(
            "SELECT * FROM secret_versions WHERE vault_key = $1 AND name_key = $2 ORDER BY seq",
        )
        .bind(&vault_key)
        .bind(&name_key)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let versions: Vec<&sqlx::postgres::PgRow> = versions.iter().collect();
        Ok(Some(secret_from_rows(&row, &versions)?))
    }

    async fn list_secrets(&self, vault: &str) -> Result<Vec<SecretRecord>, StoreError> {
        let vault_key = fold(vault);
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let rows = sqlx::query("SELECT * FROM secrets WHERE vault_key = $1 ORDER BY name_key")
            .bind(&vault_key)
            .fetch_all(&mut *tx)
            .await?;
        let versions = sqlx::query(
            "SELECT * FROM secret_versions WHERE vault_key = $1 ORDER BY name_key, seq",
        )
        .bind(&vault_key)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get("name_key")?;
            let mine: Vec<_> = versions
                .iter()
                .filter(|v| v.try_get::<String, _>("name_key").is_ok_and(|n| n == key))
                .collect();
            out.push(secret_from_rows(row, &mine)?);
        }
        Ok(out)
    }

    async fn update_secret_version(&self, v: &SecretVersionRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE secret_versions SET content_type = $1, tags = $2, enabled = $3, nbf = $4, exp = $5, updated_at = $6
             WHERE vault_key = $7 AND name_key = $8 AND version = $9",
        )
        .bind(&v.content_type)
        .bind(json_text(&v.tags)?)
        .bind(v.enabled)
        .bind(v.nbf)
        .bind(v.exp)
        .bind(v.updated_at)
        .bind(fold(&v.vault))
        .bind(fold(&v.name))
        .bind(&v.version)
        .execute(&mut *tx)
        .await?;
        let updated = done.rows_affected() > 0;
        if updated {
            notify(&mut tx, "secrets").await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    async fn soft_delete_secret(
        &self,
        vault: &str,
        name: &str,
        at: i64,
        purge_at: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE secrets SET deleted_at = $1, purge_at = $2
             WHERE vault_key = $3 AND name_key = $4 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(purge_at)
        .bind(fold(vault))
        .bind(fold(name))
        .execute(&mut *tx)
        .await?;
        let changed = done.rows_affected() > 0;
        if changed {
            notify(&mut tx, "secrets").await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn recover_secret(&self, vault: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE secrets SET deleted_at = NULL, purge_at = NULL
             WHERE vault_key = $1 AND name_key = $2 AND deleted_at IS NOT NULL",
        )
        .bind(fold(vault))
        .bind(fold(name))
        .execute(&mut *tx)
        .await?;
        let changed = done.rows_affected() > 0;
        if changed {
            notify(&mut tx, "secrets").await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn purge_secret(&self, vault: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM secrets WHERE vault_key = $1 AND name_key = $2")
            .bind(fold(vault))
            .bind(fold(name))
            .execute(&mut *tx)
            .await?;
        let changed = done.rows_affected() > 0;
        if changed {
            notify(&mut tx, "secrets").await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn purge_expired_secrets(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM secrets WHERE deleted_at IS NOT NULL AND purge_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            notify(&mut tx, "secrets").await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn change_feed(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        let options = self.options.clone().application_name("keyless-listener");
        Ok(Some(feed::spawn(options, ACQUIRE_TIMEOUT)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
