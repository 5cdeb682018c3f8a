//! The SQLite store passes the conformance suite (on disk, as served) and keeps its
//! data across a reopen.

use std::sync::Arc;

use keyless_store::Store;
use keyless_store_sql::sqlite::SqliteStore;

/// A fresh database file of its own, and the directory that must outlive it.
async fn fresh_store() -> anyhow::Result<Option<(Arc<dyn Store>, tempfile::TempDir)>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open_file(&dir.path().join("keyless.db")).await?;
    Ok(Some((Arc::new(store), dir)))
}

mod conformance {
    keyless_store::conformance_tests!(super::fresh_store().await?);
}

#[tokio::test]
async fn sqlite_reopen_keeps_data() -> anyhow::Result<()> {
    use keyless_store::TenantRecord;
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
