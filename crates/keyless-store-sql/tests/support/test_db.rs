//! A PostgreSQL database of its own per test, on the server `KEYLESS_TEST_POSTGRES_URL`
//! names, dropped (with its connections) when the test ends.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use keyless_store_sql::postgres::PgStore;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

const URL_VAR: &str = "KEYLESS_TEST_POSTGRES_URL";

/// A database of its own for one test, dropped (with its connections) at the end.
pub struct TestDb {
    admin: PgConnectOptions,
    name: String,
    /// Connects to this test's database.
    pub options: PgConnectOptions,
}

impl TestDb {
    /// `None` (after saying so) when no server is configured outside CI; panics in CI.
    pub async fn create() -> Option<TestDb> {
        // A skipped PostgreSQL test would look like a passing one: without a server
        // the tests fail and say why.
        let Ok(url) = std::env::var(URL_VAR) else {
            panic!(
                "{URL_VAR} is not set: the PostgreSQL store tests need a server \
                 (./scripts/test.sh starts one; or point the variable at a server where the role may CREATEDB)"
            );
        };
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "keyless_test_{}_{}_{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let admin = PgConnectOptions::from_str(&url).expect("KEYLESS_TEST_POSTGRES_URL parses");
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let options = admin.clone().database(&name);
        Some(TestDb {
            admin,
            name,
            options,
        })
    }

    pub async fn store(&self) -> PgStore {
        PgStore::open_with(self.options.clone())
            .await
            .expect("open the PostgreSQL store")
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&self.options)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on itself: a thread with
        // a runtime of its own drops the database (terminating any connection left).
        let admin = self.admin.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                    {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
