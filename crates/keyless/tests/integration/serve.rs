//! `keyless serve`: first start, files it writes, health, restart, shutdown.

use std::os::unix::fs::PermissionsExt;

use anyhow::Result;
use reqwest::Method;
use serde_json::json;

use crate::testkit::{
    AUTHZ_API, MI_API, SUB_API, Server, client_trusting, is_guid, jwt_claims, jwt_header, role_id,
};

#[tokio::test]
async fn first_start_writes_admin_file_and_ca() -> Result<()> {
    let server = Server::start(&[]).await?;
    let dir = server.data_dir();

    let mode = std::fs::metadata(dir.join("admin.json"))?
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "admin.json mode is {mode:o}");

    let a = &server.admin;
    assert!(is_guid(&a.tenant_id), "tenantId {}", a.tenant_id);
    assert!(
        is_guid(&a.subscription_id),
        "subscriptionId {}",
        a.subscription_id
    );
    assert!(is_guid(&a.client_id), "clientId {}", a.client_id);
    assert!(a.client_secret.len() >= 32, "secret too short");
    assert_ne!(a.tenant_id, a.subscription_id);
    assert_eq!(a.authority_host, server.url);
    assert_eq!(
        a.authority_host,
        format!("https://localhost:{}", server.port)
    );
    assert_eq!(a.resource_manager_url, format!("{}/", server.url));
    let ca = a.ca_file.as_deref().expect("caFile is set");
    assert_eq!(std::path::Path::new(ca), dir.join("ca.pem"));
    let pem = std::fs::read_to_string(dir.join("ca.pem"))?;
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(!pem.contains("PRIVATE KEY"), "ca.pem must not hold a key");

    // The secret is shown once (in admin.json), never on stdout or in the log.
    assert!(!server.stdout().contains(&a.client_secret));
    assert!(!server.stderr().contains(&a.client_secret));

    let r = server.get("/healthz").await?;
    assert_eq!(r.code(), 200);
    assert_eq!(r.body, json!("ok"));

    // The certificate also covers 127.0.0.1, and a client without the CA refuses it.
    let r = server
        .client
        .get(format!("https://127.0.0.1:{}/healthz", server.port))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::new())
        .build()?;
    let err = untrusting
        .get(server.at("/healthz"))
        .send()
        .await
        .expect_err("an untrusted client must fail the TLS handshake");
    assert!(err.is_connect(), "{err:?}");

    // Plain HTTP is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP answered: {plain:?}"
    );

    // The bootstrap admin holds Owner and Key Vault Administrator on the subscription
    // and Owner at the root, visible as role assignments.
    let oid = server.admin_object_id().await?;
    let at_sub = server.assignments_of(&server.sub_path(), &oid).await?;
    let mut roles: Vec<(String, String)> = at_sub
        .iter()
        .map(|a| {
            let p = &a["properties"];
            let rd = p["roleDefinitionId"].as_str().unwrap();
            (
                p["scope"].as_str().unwrap().to_string(),
                rd.rsplit('/').next().unwrap().to_string(),
            )
        })
        .collect();
    roles.sort();
    let mut want = vec![
        ("/".to_string(), role_id("Owner").to_string()),
        (server.sub_path(), role_id("Owner").to_string()),
        (
            server.sub_path(),
            role_id("Key Vault Administrator").to_string(),
        ),
    ];
    want.sort();
    assert_eq!(roles, want);
    Ok(())
}

#[tokio::test]
async fn restart_keeps_tenant_credentials_objects_and_keys() -> Result<()> {
    let mut server = Server::start(&[]).await?;
    let before_admin = server.admin.clone();
    let token = server.admin_token().await?;
    let kid = jwt_header(&token)["kid"].as_str().unwrap().to_string();

    server.create_rg("rg1").await?;
    let identity = server.create_identity("rg1", "id1").await?;
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    let r = server
        .put_fic(
            "rg1",
            "id1",
            "fic1",
            json!({"issuer": "https://issuer.example", "subject": "sub-1", "audiences": ["api://AzureADTokenExchange"]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let assignment = "7d1a1a7e-0000-4000-8000-000000000001";
    let r = server
        .put_assignment(
            &server.rg_path("rg1"),
            assignment,
            role_id("Key Vault Secrets User"),
            principal,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let kids_before = server.jwks_kids().await?;
    assert!(kids_before.contains(&kid));

    server.restart().await?;

    assert_eq!(server.admin, before_admin, "admin.json changed on restart");
    assert_eq!(server.jwks_kids().await?, kids_before, "JWKS changed");

    // The token minted before the restart is still accepted.
    let r = server
        .arm_raw(
            Method::GET,
            &format!("{}?api-version={SUB_API}", server.sub_path()),
            Some(&format!("Bearer {token}")),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["tenantId"], json!(before_admin.tenant_id));

    // The same secret still works, and new tokens are signed by the same key.
    let fresh = server.token_for(&server.arm_scope()).await?;
    assert_eq!(jwt_header(&fresh)["kid"], json!(kid));
    assert_eq!(jwt_claims(&fresh)["tid"], json!(before_admin.tenant_id));

    // Every object survived with its server-generated ids.
    let r = server
        .armv(
            Method::GET,
            &server.identity_path("rg1", "id1"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"], identity["properties"]);
    let r = server
        .armv(
            Method::GET,
            &server.fic_path("rg1", "id1", "fic1"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"]["subject"], json!("sub-1"));
    let r = server
        .armv(
            Method::GET,
            &Server::assignment_path(&server.rg_path("rg1"), assignment),
            AUTHZ_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["properties"]["principalId"], json!(principal));
    Ok(())
}

#[tokio::test]
async fn restart_on_another_port_points_admin_file_at_it() -> Result<()> {
    let mut server = Server::start(&[]).await?;
    let before = server.admin.clone();
    let old_port = server.port;
    // Served once: see `sigterm_right_after_ready_exits_cleanly` for why.
    server.assert_healthy().await?;
    server.restart_on_new_port().await?;
    if server.port == old_port {
        // The kernel handed out the same port again; nothing to check.
        return Ok(());
    }
    let a = &server.admin;
    assert_eq!(
        a.authority_host,
        format!("https://localhost:{}", server.port)
    );
    assert_eq!(
        a.resource_manager_url,
        format!("https://localhost:{}/", server.port)
    );
    assert_eq!(
        (
            &a.tenant_id,
            &a.subscription_id,
            &a.client_id,
            &a.client_secret
        ),
        (
            &before.tenant_id,
            &before.subscription_id,
            &before.client_id,
            &before.client_secret
        )
    );
    let mode = std::fs::metadata(server.admin_file())?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The credential works against the new address.
    server.admin_token().await?;
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() -> Result<()> {
    let mut server = Server::start(&[]).await?;
    server.assert_healthy().await?;
    // stop() asserts exit status 0 within 10 s.
    server.stop().await?;
    let client = client_trusting(&server.data_dir().join("ca.pem"))?;
    let r = client.get(server.at("/healthz")).send().await;
    assert!(r.is_err(), "still serving after SIGTERM: {r:?}");
    assert!(server.stderr().contains("SIGTERM"), "{}", server.stderr());

    let mut server = Server::start(&[]).await?;
    server.assert_healthy().await?;
    server.stop_with("-INT").await?;
    assert!(server.stderr().contains("SIGINT"), "{}", server.stderr());
    Ok(())
}

#[tokio::test]
async fn sigterm_right_after_ready_exits_cleanly() -> Result<()> {
    for _ in 0..10 {
        let mut server = Server::start(&[]).await?;
        // A supervisor may stop the server as soon as it says it is ready.
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn refuses_a_bad_public_host_and_a_busy_port() -> Result<()> {
    let server = Server::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("d");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyless"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{}", server.port)])
        .env_remove("KEYLESS_DATA_DIR")
        .output()
        .await?;
    assert!(!out.status.success(), "started on a busy port");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", server.port)),
        "{stderr}"
    );

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyless"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--public-host", "http://x/"])
        .env_remove("KEYLESS_DATA_DIR")
        .output()
        .await?;
    assert!(!out.status.success(), "accepted a URL as public host");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--public-host"), "{stderr}");
    Ok(())
}

fn mode_of(p: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Issue 11 §4: the data directory is 0700, the database and its companions 0600, and a
/// directory or database left more open (by an operator, an older version or a
/// restore) is tightened on the next start.
#[tokio::test]
async fn the_data_directory_and_database_files_are_private_and_tightened() -> Result<()> {
    let mut server = Server::start(&[]).await?;
    let dir = server.data_dir();
    // Something to write, so the write-ahead log exists.
    server.create_rg("rg-files").await?;
    assert_eq!(mode_of(&dir), 0o700, "data directory");
    for private in ["admin.json", "ca-key.pem", "server-key.pem"] {
        assert_eq!(mode_of(&dir.join(private)), 0o600, "{private}");
    }
    let sqlite = server.database_url().is_none();
    let db_files: Vec<std::path::PathBuf> = ["keyless.db", "keyless.db-wal", "keyless.db-shm"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect();
    if sqlite {
        assert!(
            db_files.iter().any(|p| p.ends_with("keyless.db")),
            "no database file in {}",
            dir.display()
        );
        assert_eq!(mode_of(&dir.join("kek")), 0o600, "kek");
    }
    for f in &db_files {
        assert_eq!(mode_of(f), 0o600, "{}", f.display());
    }

    // Opened up while it runs; `restart` stops it and starts it again.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    for f in &db_files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644))?;
    }
    server.restart().await?;
    assert_eq!(mode_of(&dir), 0o700, "data directory after restart");
    for f in &db_files {
        assert_eq!(mode_of(f), 0o600, "{} after restart", f.display());
    }
    assert!(
        server.stderr().contains("tightened to 0700"),
        "the operator is told: {}",
        server.stderr()
    );
    Ok(())
}

/// A symbolic link planted in place of the database is refused, not followed.
#[tokio::test]
async fn a_symlinked_database_file_is_refused() -> Result<()> {
    let mut server = Server::start(&[]).await?;
    let dir = server.data_dir();
    if server.database_url().is_some() {
        // On PostgreSQL there is no database file to plant a link for.
        assert!(!dir.join("keyless.db").exists());
        return Ok(());
    }
    // Swapped for a link while the server runs (it keeps its open file); the next
    // start must refuse the link rather than open whatever it points to.
    let elsewhere = dir.join("elsewhere.db");
    std::fs::rename(dir.join("keyless.db"), &elsewhere)?;
    std::os::unix::fs::symlink(&elsewhere, dir.join("keyless.db"))?;
    let refused = server
        .restart()
        .await
        .expect_err("a symlinked database must not be opened");
    assert!(
        format!("{refused:#}").contains("symbolic link"),
        "{refused:#}"
    );
    Ok(())
}
