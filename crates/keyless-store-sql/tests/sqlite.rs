//! The SQLite store passes the conformance suite, in memory and on disk.

use std::sync::Arc;

use keyless_store_sql::sqlite::SqliteStore;

#[tokio::test]
async fn sqlite_file_store_conforms() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open_file(&dir.path().join("keyless.db")).await?;
    keyless_store::conformance::run(Arc::new(store)).await?;
    Ok(())
}

#[tokio::test]
async fn sqlite_reopen_keeps_data() -> anyhow::Result<()> {
    use keyless_store::{Store, TenantRecord};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keyless.db");
    {
        let store = SqliteStore::open_file(&path).await?;
        store
            .insert_tenant(&TenantRecord {
                id: "t".into(),
                display_name: "d".into(),
                created_at: 1,
            })
            .await?;
    }
    let store = SqliteStore::open_file(&path).await?;
    assert_eq!(store.list_tenants().await?.len(), 1);
    Ok(())
}
