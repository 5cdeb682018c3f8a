//! The PostgreSQL store passes the conformance suite, and behaves under several
//! replicas (several pools on one database) as one store would: concurrent writers,
//! concurrent bootstraps and migrations, and the change feed.
//!
//! Needs a PostgreSQL server: `KEYLESS_TEST_POSTGRES_URL` (for example
//! `postgres://keyless@127.0.0.1:5432/postgres`, a role with CREATEDB); `scripts/test.sh`
//! starts one. Each test creates its own database and drops it afterwards. Without the
//! variable the tests fail when `CI` is set and are skipped (with a message) otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyless_store::*;
use keyless_store_sql::postgres::{ACQUIRE_TIMEOUT, PgStore};
use serde_json::Map;
use sqlx::Connection;
use tokio::sync::mpsc::Receiver;
use tokio::sync::mpsc::error::TryRecvError;

#[path = "support/test_db.rs"]
mod test_db;
use test_db::TestDb;

macro_rules! test_db {
    () => {
        match TestDb::create().await {
            Some(db) => db,
            None => return Ok(()),
        }
    };
}

const T: &str = "11111111-1111-1111-1111-111111111111";
const S: &str = "22222222-2222-2222-2222-222222222222";

/// Tenant, subscription, group `rg` and identity `n` (principal `...{n:012}`).
async fn seed(s: &dyn Store, identities: &[u32]) -> anyhow::Result<()> {
    s.insert_tenant(&TenantRecord {
        id: T.into(),
        display_name: "t".into(),
        created_at: 1,
    })
    .await?;
    s.insert_subscription(&SubscriptionRecord {
        id: S.into(),
        tenant_id: T.into(),
        display_name: "s".into(),
        created_at: 1,
    })
    .await?;
    s.upsert_resource_group(&ResourceGroupRecord {
        subscription_id: S.into(),
        name: "rg".into(),
        location: "westeurope".into(),
        tags: Map::new(),
        created_at: 1,
    })
    .await?;
    for &n in identities {
        s.upsert_identity(&IdentityRecord {
            subscription_id: S.into(),
            resource_group: "rg".into(),
            name: format!("id{n}"),
            location: "westeurope".into(),
            tags: Map::new(),
            tenant_id: T.into(),
            principal_id: pid(n),
            client_id: format!("00000000-0000-0000-0001-{n:012}"),
            created_at: 1,
        })
        .await?;
    }
    Ok(())
}

fn pid(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

fn fic(pid: &str, name: &str, subject: &str) -> FederatedCredentialRecord {
    FederatedCredentialRecord {
        identity_principal_id: pid.into(),
        name: name.into(),
        issuer: "https://issuer.example".into(),
        subject: Some(subject.into()),
        audiences: vec!["api://AzureADTokenExchange".into()],
        expression: None,
        created_at: 2,
        updated_at: 2,
    }
}

/// Waits up to `within` for a change.
async fn next_change(rx: &mut Receiver<Change>, within: Duration) -> Option<Change> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// Waits up to `within` for a change, of any kind.
async fn signalled(rx: &mut Receiver<Change>, within: Duration) -> bool {
    next_change(rx, within).await.is_some()
}

/// Waits `quiet` and reports whether any change arrived meanwhile.
async fn quiet_for(rx: &mut Receiver<Change>, quiet: Duration) -> bool {
    tokio::time::sleep(quiet).await;
    matches!(rx.try_recv(), Err(TryRecvError::Empty))
}

/// A database of its own (dropped with the returned guard), or `None` to skip.
async fn fresh_store() -> Option<(Arc<dyn Store>, TestDb)> {
    let db = TestDb::create().await?;
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    Some((store, db))
}

mod conformance {
    keyless_store::conformance_tests!(super::fresh_store().await);
}

#[tokio::test]
async fn reopen_keeps_data_and_names_keep_first_casing() -> anyhow::Result<()> {
    let db = test_db!();
    {
        let a = db.store().await;
        seed(&a, &[1]).await?;
        a.upsert_federated_credential(&fic(&pid(1), "Deploy-Main", "repo:x"), None)
            .await?;
        a.close().await;
    }
    let b = db.store().await;
    let got = b
        .get_federated_credential(&pid(1), "DEPLOY-MAIN")
        .await?
        .expect("credential survives a reopen");
    assert_eq!(got.name, "Deploy-Main");
    // NOCASE folds ASCII only, so must the keys: `ß` and `Ä` are not letters to fold.
    assert!(
        b.get_federated_credential(&pid(1), "deploy-maiN")
            .await?
            .is_some()
    );
    b.upsert_resource_group(&ResourceGroupRecord {
        subscription_id: S.into(),
        name: "Grüße-Ä".into(),
        location: "w".into(),
        tags: Map::new(),
        created_at: 1,
    })
    .await?;
    assert!(b.get_resource_group(S, "grüße-Ä").await?.is_some());
    assert!(b.get_resource_group(S, "grüße-ä").await?.is_none());
    b.close().await;
    Ok(())
}

/// Two replicas (two pools) add credentials to one identity at once: nothing lost or
/// duplicated, issuer+subject unique, the limit exact, concurrent PUTs of one name
/// update it.
#[tokio::test]
async fn two_replicas_race_on_one_identity() -> anyhow::Result<()> {
    let db = test_db!();
    let a: Arc<dyn Store> = Arc::new(db.store().await);
    let b: Arc<dyn Store> = Arc::new(db.store().await);
    seed(&*a, &[1, 2]).await?;
    let replicas = [a.clone(), b.clone()];

    // 40 distinct credentials and 10 writers of one contested issuer+subject.
    let p1 = pid(1);
    let mut tasks = Vec::new();
    for n in 0..40 {
        let s = replicas[n % 2].clone();
        let p = p1.clone();
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(&p, &format!("c{n:02}"), &format!("s{n}")), None)
                .await
        }));
    }
    for n in 0..10 {
        let s = replicas[n % 2].clone();
        let p = p1.clone();
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(&p, &format!("same{n}"), "contested"), None)
                .await
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => conflicts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(conflicts, 9, "exactly one contested writer wins");
    let list = b.list_federated_credentials(&p1).await?;
    assert_eq!(list.len(), 41, "no lost or duplicated credential");
    let mut subjects: Vec<_> = list.iter().filter_map(|c| c.subject.clone()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 41, "issuer+subject unique");

    // Racing a limit of 5 from both replicas: exactly 5 land, the rest are refused.
    let p2 = pid(2);
    let mut tasks = Vec::new();
    for n in 0..20 {
        let s = replicas[n % 2].clone();
        let p = p2.clone();
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(&p, &format!("l{n}"), &format!("s{n}")), Some(5))
                .await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        match t.await? {
            Ok(_) => ok += 1,
            Err(StoreError::LimitExceeded { limit: 5, .. }) => refused += 1,
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!((ok, refused), (5, 15));
    assert_eq!(
        a.list_federated_credentials(&p2).await?.len(),
        5,
        "limit holds"
    );

    // The same name PUT from both replicas at once, in different casings: one creates,
    // the others update it; no conflict, one row, the first casing.
    let mut tasks = Vec::new();
    for n in 0..10 {
        let s = replicas[n % 2].clone();
        let p = p2.clone();
        let name = if n.is_multiple_of(2) {
            "Shared"
        } else {
            "SHARED"
        };
        tasks.push(tokio::spawn(async move {
            s.upsert_federated_credential(&fic(&p, name, &format!("v{n}")), None)
                .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (_, o) = t.await??;
        created += usize::from(o == UpsertOutcome::Created);
    }
    assert_eq!(created, 1, "one PUT creates, the others update");
    let shared: Vec<_> = b
        .list_federated_credentials(&p2)
        .await?
        .into_iter()
        .filter(|c| c.name.eq_ignore_ascii_case("shared"))
        .collect();
    assert_eq!(shared.len(), 1);
    Ok(())
}

/// Runs `op` from `n` tasks spread over the replicas, released together; returns how
/// many reported `Created` (every call must succeed).
async fn race<F, Fut>(replicas: &[Arc<dyn Store>], n: usize, op: F) -> anyhow::Result<usize>
where
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<UpsertOutcome, StoreError>> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let fut = op(replicas[i % replicas.len()].clone(), i);
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            fut.await
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await?? == UpsertOutcome::Created);
    }
    Ok(created)
}

/// Upserts of one resource group, identity, vault and issuer registration from two
/// replicas at once (names in varying casing): one `Created`, the rest `Updated`, never a
/// spurious conflict.
#[tokio::test]
async fn concurrent_upserts_of_one_name_agree() -> anyhow::Result<()> {
    let db = test_db!();
    let a: Arc<dyn Store> = Arc::new(db.store().await);
    let b: Arc<dyn Store> = Arc::new(db.store().await);
    seed(&*a, &[]).await?;
    let replicas = [a.clone(), b.clone()];
    let casing = |name: String, i: usize| {
        if i.is_multiple_of(2) {
            name
        } else {
            name.to_uppercase()
        }
    };
    for round in 0..5 {
        let group = format!("team{round}");
        let created = race(&replicas, 12, |s, i| {
            let name = casing(group.clone(), i);
            async move {
                s.upsert_resource_group(&ResourceGroupRecord {
                    subscription_id: S.into(),
                    name,
                    location: "w".into(),
                    tags: Map::new(),
                    created_at: 1,
                })
                .await
                .map(|r| r.1)
            }
        })
        .await?;
        assert_eq!(created, 1, "resource group");

        let created = race(&replicas, 12, |s, i| {
            let group = casing(group.clone(), i + 1);
            async move {
                s.upsert_identity(&IdentityRecord {
                    subscription_id: S.into(),
                    resource_group: group,
                    name: "app".into(),
                    location: "w".into(),
                    tags: Map::new(),
                    tenant_id: T.into(),
                    principal_id: pid(1000 * round + i as u32),
                    client_id: format!("c{round}-{i}"),
                    created_at: 1,
                })
                .await
                .map(|r| r.1)
            }
        })
        .await?;
        assert_eq!(created, 1, "identity");

        let created = race(&replicas, 12, |s, i| {
            let (name, group) = (casing(format!("vault{round}"), i), group.clone());
            async move {
                s.upsert_vault(&VaultRecord {
                    name,
                    subscription_id: S.into(),
                    resource_group: group,
                    tenant_id: T.into(),
                    location: "w".into(),
                    tags: Map::new(),
                    soft_delete_days: 7,
                    purge_protection: false,
                    created_at: 1,
                })
                .await
                .map(|r| r.1)
            }
        })
        .await?;
        assert_eq!(created, 1, "vault");

        let created = race(&replicas, 12, |s, i| {
            let name = casing(format!("cluster{round}"), i);
            async move {
                s.upsert_trusted_issuer(&TrustedIssuerRecord {
                    tenant_id: T.into(),
                    name,
                    issuer: format!("https://cluster{round}.example"),
                    jwks: "{\"keys\":[]}".into(),
                    created_at: 1,
                    updated_at: 1,
                })
                .await
            }
        })
        .await?;
        assert_eq!(created, 1, "trusted issuer");

        let p = a
            .get_identity(S, &group, "APP")
            .await?
            .expect("identity")
            .principal_id;
        let created = race(&replicas, 12, |s, i| {
            let p = p.clone();
            async move {
                s.upsert_federated_credential(&fic(&p, &casing("ci".into(), i), "sub"), None)
                    .await
                    .map(|r| r.1)
            }
        })
        .await?;
        assert_eq!(created, 1, "federated credential");
    }
    assert_eq!(a.list_identities(S, None).await?.len(), 5);
    assert_eq!(b.all_vaults().await?.len(), 5);
    Ok(())
}

/// Versions of one secret added from two replicas at once: all kept, numbered once each.
#[tokio::test]
async fn concurrent_secret_versions() -> anyhow::Result<()> {
    let db = test_db!();
    let a: Arc<dyn Store> = Arc::new(db.store().await);
    let b: Arc<dyn Store> = Arc::new(db.store().await);
    seed(&*a, &[]).await?;
    a.upsert_vault(&VaultRecord {
        name: "kv".into(),
        subscription_id: S.into(),
        resource_group: "rg".into(),
        tenant_id: T.into(),
        location: "w".into(),
        tags: Map::new(),
        soft_delete_days: 7,
        purge_protection: false,
        created_at: 1,
    })
    .await?;
    let gate = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for n in 0..20u32 {
        let s = if n.is_multiple_of(2) {
            a.clone()
        } else {
            b.clone()
        };
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            s.add_secret_version(&SecretVersionRecord {
                vault: if n.is_multiple_of(2) {
                    "kv".into()
                } else {
                    "KV".into()
                },
                name: if n.is_multiple_of(3) {
                    "Db-Password".into()
                } else {
                    "db-password".into()
                },
                version: format!("{n:032x}"),
                sealed_value: vec![1],
                content_type: None,
                tags: Map::new(),
                enabled: true,
                nbf: None,
                exp: None,
                created_at: i64::from(n),
                updated_at: i64::from(n),
            })
            .await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secret = b.get_secret("kv", "DB-PASSWORD").await?.expect("secret");
    assert_eq!(secret.versions.len(), 20);
    let mut conn = db.connect().await;
    let distinct: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT seq) FROM secret_versions WHERE vault_key = 'kv' AND name_key = 'db-password'",
    )
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(distinct, 20, "every version has its own sequence number");
    Ok(())
}

/// Replicas bootstrapping at once agree on one value.
#[tokio::test]
async fn concurrent_meta_put_if_absent_agrees() -> anyhow::Result<()> {
    let db = test_db!();
    let a: Arc<dyn Store> = Arc::new(db.store().await);
    let b: Arc<dyn Store> = Arc::new(db.store().await);
    for round in 0..5 {
        let key = format!("kek-fingerprint-{round}");
        let mut tasks = Vec::new();
        for n in 0..16u32 {
            let s = if n.is_multiple_of(2) {
                a.clone()
            } else {
                b.clone()
            };
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                s.meta_put_if_absent(&key, &format!("value-{n}")).await
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await??);
        }
        let stored = a.meta_get(&key).await?.expect("stored");
        assert!(
            seen.iter().all(|v| *v == stored),
            "all agree on {stored}: {seen:?}"
        );
    }
    Ok(())
}

/// Replicas starting at once on an empty database both migrate without error, and each
/// migration is applied once.
#[tokio::test]
async fn concurrent_migrations() -> anyhow::Result<()> {
    let db = test_db!();
    let (a, b, c) = tokio::join!(db.store(), db.store(), db.store());
    let mut conn = db.connect().await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await?;
    let files =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))?.count();
    assert_eq!(applied, i64::try_from(files)?);
    for s in [&a, &b, &c] {
        s.ping().await?;
    }
    Ok(())
}

/// A write through one replica reaches another replica's feed, naming what changed, when
/// it commits, not before, and a rolled-back write never does. An unknown payload is
/// "everything".
#[tokio::test]
async fn change_feed_signals_on_commit() -> anyhow::Result<()> {
    let db = test_db!();
    let a = db.store().await;
    let b = db.store().await;
    seed(&a, &[1]).await?;
    let mut feed = b
        .change_feed()
        .await?
        .expect("PostgreSQL has a change feed");
    // The first change says the listener is in place, and anything may have changed.
    assert_eq!(
        next_change(&mut feed, Duration::from_secs(10)).await,
        Some(Change::Everything),
        "listening"
    );
    assert!(quiet_for(&mut feed, Duration::from_millis(200)).await);

    // A store write through replica A: on B well under a second, by key.
    let started = Instant::now();
    a.upsert_federated_credential(&fic(&pid(1), "f1", "s1"), None)
        .await?;
    let acknowledged = started.elapsed();
    assert_eq!(
        next_change(&mut feed, Duration::from_secs(1)).await,
        Some(Change::Credentials {
            identity_principal_id: pid(1)
        }),
        "signalled within 1 s"
    );
    eprintln!(
        "write acknowledged after {acknowledged:?}, signal after {:?}",
        started.elapsed()
    );

    // Nothing is delivered while the writing transaction is open; it is on commit.
    let mut conn = db.connect().await;
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE identities SET location = 'x'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify('keyless_changes', 'identities')")
        .execute(&mut *tx)
        .await?;
    assert!(
        quiet_for(&mut feed, Duration::from_millis(500)).await,
        "no signal before commit"
    );
    tx.commit().await?;
    assert_eq!(
        next_change(&mut feed, Duration::from_secs(1)).await,
        Some(Change::Everything),
        "signal on commit; an old-style payload means everything"
    );

    // A failed write rolls back its notification with it.
    let dup = a
        .upsert_federated_credential(&fic(&pid(1), "f2", "s1"), None)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let missing = a.delete_federated_credential(&pid(1), "nope").await?;
    assert!(!missing);
    assert!(
        quiet_for(&mut feed, Duration::from_millis(500)).await,
        "no signal for a failed or empty write"
    );

    // A burst of writes: one change each (the feed queues up to `feed::QUEUE`).
    for n in 0..20 {
        a.upsert_federated_credential(&fic(&pid(1), &format!("b{n}"), &format!("b{n}")), None)
            .await?;
    }
    for _ in 0..20 {
        assert_eq!(
            next_change(&mut feed, Duration::from_secs(5)).await,
            Some(Change::Credentials {
                identity_principal_id: pid(1)
            })
        );
    }
    assert!(quiet_for(&mut feed, Duration::from_millis(200)).await);
    Ok(())
}

/// A consumer that falls behind gets every change up to the feed's queue, then one
/// "everything" for what did not fit (and not the dropped changes themselves).
#[tokio::test]
async fn change_feed_overflow_becomes_everything() -> anyhow::Result<()> {
    use keyless_store_sql::postgres::feed::QUEUE;
    let db = test_db!();
    let b = db.store().await;
    let mut feed = b.change_feed().await?.expect("feed");
    assert_eq!(
        next_change(&mut feed, Duration::from_secs(10)).await,
        Some(Change::Everything),
        "listening"
    );
    // Distinct payloads (PostgreSQL folds identical ones within a transaction).
    let sent = QUEUE + 50;
    let mut conn = db.connect().await;
    sqlx::query(
        "SELECT pg_notify('keyless_changes', 'credentials:p' || g) FROM generate_series(1, $1) AS g",
    )
    .bind(i32::try_from(sent)?)
    .execute(&mut conn)
    .await?;
    // Nothing to await but the queue filling up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while feed.len() < QUEUE {
        assert!(Instant::now() < deadline, "queue filled: {}", feed.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And for the listener to read the rest while the queue is full (it is not
    // observable from here: give it a moment on this runtime).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(feed.len(), QUEUE);
    for n in 1..=QUEUE {
        assert_eq!(
            feed.recv().await,
            Some(Change::Credentials {
                identity_principal_id: format!("p{n}")
            })
        );
    }
    assert_eq!(
        next_change(&mut feed, Duration::from_secs(5)).await,
        Some(Change::Everything),
        "what did not fit is owed as one reload"
    );
    assert!(quiet_for(&mut feed, Duration::from_millis(300)).await);
    Ok(())
}

/// A listener whose connection is killed reconnects by itself and says so (changes may
/// have been missed), then delivers again.
#[tokio::test]
async fn change_feed_reconnects_after_losing_its_connection() -> anyhow::Result<()> {
    let db = test_db!();
    let a = db.store().await;
    let b = db.store().await;
    seed(&a, &[]).await?;
    let mut feed = b.change_feed().await?.expect("feed");
    assert!(
        signalled(&mut feed, Duration::from_secs(10)).await,
        "listening"
    );

    let mut admin = db.connect().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'keyless-listener'",
    )
    .fetch_all(&mut admin)
    .await?;
    assert_eq!(killed, vec![true], "one listener connection");
    assert!(
        signalled(&mut feed, Duration::from_secs(10)).await,
        "a signal after reconnecting"
    );
    a.insert_signing_key(&SigningKeyRecord {
        kid: "k1".into(),
        tenant_id: T.into(),
        alg: "ES256".into(),
        sealed_private_key: vec![1],
        created_at: 1,
        active_from: 1,
        retired_at: None,
    })
    .await?;
    assert!(
        signalled(&mut feed, Duration::from_secs(1)).await,
        "delivers again"
    );
    // Dropping the receiver ends the listener.
    drop(feed);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'keyless-listener'",
        )
        .fetch_one(&mut admin)
        .await?;
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the listener closes with its receiver"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// With the database unreachable, calls fail within the pool's acquire timeout (not
/// hang), and everything works again once it is back, without a restart.
#[tokio::test]
async fn unreachable_database_fails_fast_and_recovers() -> anyhow::Result<()> {
    let db = test_db!();
    // Reach the server through a TCP proxy the test can cut.
    let upstream = format!("{}:{}", db.options.get_host(), db.options.get_port());
    let proxy = proxy::Proxy::start(&upstream).await?;
    let through = db.options.clone().host("127.0.0.1").port(proxy.port());
    let store = PgStore::open_with(through).await?;
    seed(&store, &[1]).await?;
    let mut feed = store.change_feed().await?.expect("feed");
    assert!(
        signalled(&mut feed, Duration::from_secs(10)).await,
        "listening"
    );

    proxy.cut().await;
    let started = Instant::now();
    let write = store
        .upsert_federated_credential(&fic(&pid(1), "f", "s"), None)
        .await;
    let failed_after = started.elapsed();
    assert!(
        matches!(write, Err(StoreError::Database(_))),
        "write fails: {write:?}"
    );
    assert!(
        failed_after < ACQUIRE_TIMEOUT + Duration::from_secs(2),
        "failed after {failed_after:?}"
    );
    assert!(store.ping().await.is_err());
    eprintln!("write failed after {failed_after:?} with the database unreachable");

    proxy.restore().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "recovers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store
        .upsert_federated_credential(&fic(&pid(1), "f", "s"), None)
        .await?;
    // The feed reconnected too (and signals that it did, or the write above).
    assert!(
        signalled(&mut feed, Duration::from_secs(10)).await,
        "feed back"
    );
    Ok(())
}

#[path = "support/proxy.rs"]
mod proxy;

/// The periodic resync is skipped while the feed is told of every write, and asked for
/// (once, one check late) when a write was never notified: a hand edit, a `TRUNCATE`, a
/// transaction that changed a row and rolled back. Without a listening feed it is always
/// needed; the sign-in log is not counted.
#[tokio::test]
async fn resync_is_needed_only_when_a_write_was_never_notified() -> anyhow::Result<()> {
    let db = test_db!();
    let a = db.store().await;
    let b = db.store().await;
    seed(&a, &[1, 2]).await?;
    assert!(b.may_have_missed_changes().await?, "no feed yet");
    let mut feed = b.change_feed().await?.expect("feed");
    assert_eq!(
        next_change(&mut feed, Duration::from_secs(10)).await,
        Some(Change::Everything),
        "listening"
    );
    assert!(!b.may_have_missed_changes().await?);

    // Writes through A (and B itself), each told: no reload, however many checks.
    for i in 0..5 {
        let by: &PgStore = if i % 2 == 0 { &a } else { &b };
        by.upsert_federated_credential(&fic(&pid(1), &format!("f{i}"), &format!("s{i}")), None)
            .await?;
        assert_eq!(
            next_change(&mut feed, Duration::from_secs(5)).await,
            Some(Change::Credentials {
                identity_principal_id: pid(1)
            })
        );
        assert!(!b.may_have_missed_changes().await?, "write {i}");
    }
    a.insert_signins(&[signin(10)]).await?;
    assert!(!b.may_have_missed_changes().await?);
    assert!(
        !b.may_have_missed_changes().await?,
        "the sign-in log is not counted"
    );

    let mut admin = db.connect().await;
    let missed = async |b: &PgStore, what: &str| -> anyhow::Result<()> {
        // One check late: the write might still have been committing at the first.
        assert!(!b.may_have_missed_changes().await?, "{what}: first check");
        assert!(b.may_have_missed_changes().await?, "{what}: second check");
        assert!(!b.may_have_missed_changes().await?, "{what}: reloaded once");
        Ok(())
    };
    sqlx::query("UPDATE identities SET location = 'by hand' WHERE principal_id = $1")
        .bind(pid(2))
        .execute(&mut admin)
        .await?;
    missed(&b, "a hand edit").await?;
    sqlx::query("TRUNCATE trusted_issuers")
        .execute(&mut admin)
        .await?;
    missed(&b, "a truncate").await?;
    let mut rolled_back = admin.begin().await?;
    sqlx::query("DELETE FROM federated_credentials WHERE name = 'f0'")
        .execute(&mut *rolled_back)
        .await?;
    rolled_back.rollback().await?;
    missed(&b, "a rolled-back delete").await?;
    // A statement that changes no row takes no number.
    sqlx::query("DELETE FROM federated_credentials WHERE name = 'absent'")
        .execute(&mut admin)
        .await?;
    assert!(!b.may_have_missed_changes().await?);
    assert!(!b.may_have_missed_changes().await?);
    // Two hand edits around a notified write: the notified one does not hide them.
    sqlx::query("UPDATE identities SET location = 'again' WHERE principal_id = $1")
        .bind(pid(2))
        .execute(&mut admin)
        .await?;
    a.upsert_federated_credential(&fic(&pid(2), "g", "s"), None)
        .await?;
    assert!(signalled(&mut feed, Duration::from_secs(5)).await);
    missed(&b, "a hand edit before a notified write").await?;

    // The listener's connection lost: needed until it listens again.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'keyless-listener'",
    )
    .execute(&mut admin)
    .await?;
    assert_eq!(
        next_change(&mut feed, Duration::from_secs(10)).await,
        Some(Change::Everything),
        "listening again"
    );
    assert!(
        !b.may_have_missed_changes().await?,
        "counting from the reconnection"
    );
    drop(feed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.may_have_missed_changes().await? {
        assert!(Instant::now() < deadline, "a dropped feed stops counting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One successful sign-in record at `at`.
fn signin(at: i64) -> SignInRecord {
    SignInRecord {
        id: 0,
        at,
        tenant_id: T.into(),
        client_id: "c".into(),
        principal_id: None,
        issuer: None,
        subject: None,
        resource: None,
        success: true,
        error_code: None,
        error: None,
        client_ip: None,
        correlation_id: "x".into(),
        latency_us: 1,
        count: 1,
    }
}
