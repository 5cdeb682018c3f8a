//! The az-like CLI of the `keyless` binary against a running server.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{MI_API, Server, is_guid, role_id, run_cli};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must succeed; returns stdout.
async fn ok(server: &Server, args: &[&str]) -> Result<String> {
    let out = server.cli(args).await?;
    assert!(
        out.status.success(),
        "keyless {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    Ok(stdout(&out))
}

/// Runs a command that must succeed and print JSON.
async fn ok_json(server: &Server, args: &[&str]) -> Result<Value> {
    let text = ok(server, args).await?;
    Ok(serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("keyless {args:?} printed no JSON ({e}): {text}")))
}

#[tokio::test]
async fn seed_flow_through_the_cli() -> Result<()> {
    let server = Server::start(&[]).await?;

    let g = ok_json(
        &server,
        &[
            "group",
            "create",
            "--name",
            "rg1",
            "--location",
            "westeurope",
        ],
    )
    .await?;
    assert_eq!(g["name"], json!("rg1"));
    assert_eq!(g["location"], json!("westeurope"));
    assert_eq!(g["id"], json!(server.rg_path("rg1")));

    let i = ok_json(
        &server,
        &[
            "identity",
            "create",
            "--name",
            "id1",
            "--resource-group",
            "rg1",
        ],
    )
    .await?;
    assert_eq!(i["name"], json!("id1"));
    // The identity takes its group's location.
    assert_eq!(i["location"], json!("westeurope"));

    let client_id = ok(
        &server,
        &[
            "identity",
            "show",
            "--name",
            "id1",
            "--resource-group",
            "rg1",
            "--query",
            "clientId",
            "-o",
            "tsv",
        ],
    )
    .await?;
    assert!(client_id.ends_with('\n'), "{client_id:?}");
    let client_id = client_id.trim_end_matches('\n');
    assert!(is_guid(client_id), "not a bare GUID: {client_id:?}");
    assert_eq!(json!(client_id), i["properties"]["clientId"]);
    let principal_id = ok(
        &server,
        &[
            "identity",
            "show",
            "-n",
            "id1",
            "-g",
            "rg1",
            "--query",
            "principalId",
            "-o",
            "tsv",
        ],
    )
    .await?;
    let principal_id = principal_id.trim_end_matches('\n');
    assert_eq!(json!(principal_id), i["properties"]["principalId"]);

    // The server agrees.
    let r = server
        .armv(
            Method::GET,
            &server.identity_path("rg1", "id1"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.body["properties"]["clientId"], json!(client_id));

    let f = ok_json(
        &server,
        &[
            "identity",
            "federated-credential",
            "create",
            "--name",
            "kubernetes-federated-credential",
            "--identity-name",
            "id1",
            "--resource-group",
            "rg1",
            "--issuer",
            "https://oidc.example.com/cluster",
            "--subject",
            "system:serviceaccount:default:workload",
        ],
    )
    .await?;
    assert_eq!(f["name"], json!("kubernetes-federated-credential"));
    assert_eq!(
        f["properties"],
        json!({"issuer": "https://oidc.example.com/cluster", "subject": "system:serviceaccount:default:workload", "audiences": ["api://AzureADTokenExchange"]})
    );
    let r = server
        .armv(
            Method::GET,
            &server.fic_path("rg1", "id1", "kubernetes-federated-credential"),
            MI_API,
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let listed = ok_json(
        &server,
        &[
            "identity",
            "federated-credential",
            "list",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
        ],
    )
    .await?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    let scope = server.rg_path("rg1");
    let a = ok_json(
        &server,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "Key Vault Secrets User",
            "--assignee-object-id",
            principal_id,
            "--scope",
            &scope,
        ],
    )
    .await?;
    assert!(
        a["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .ends_with(role_id("Key Vault Secrets User")),
        "{a}"
    );
    assert_eq!(a["properties"]["principalId"], json!(principal_id));
    assert_eq!(a["properties"]["scope"], json!(scope));
    assert_eq!(server.assignments_of(&scope, principal_id).await?.len(), 1);

    let list = ok_json(
        &server,
        &["role", "assignment", "list", "--assignee", principal_id],
    )
    .await?;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], a["name"]);
    let all = ok_json(&server, &["role", "assignment", "list", "--scope", &scope]).await?;
    // The admin's inherited assignments and the new one.
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == a["name"]),
        "{all}"
    );

    let table = ok(&server, &["identity", "list", "-g", "rg1", "-o", "table"]).await?;
    assert!(
        table.contains("id1") && table.contains(client_id),
        "{table}"
    );

    let kids_before = server.jwks_kids().await?;
    let rotated = ok_json(&server, &["keys", "rotate"]).await?;
    let kid = rotated["kid"].as_str().unwrap();
    assert!(!kids_before.contains(&kid.to_string()));
    assert!(server.jwks_kids().await?.contains(&kid.to_string()));

    // Deleting through the CLI.
    ok(
        &server,
        &[
            "identity",
            "federated-credential",
            "delete",
            "--identity-name",
            "id1",
            "-g",
            "rg1",
            "-n",
            "kubernetes-federated-credential",
        ],
    )
    .await?;
    let r = server
        .armv(
            Method::GET,
            &server.fic_path("rg1", "id1", "kubernetes-federated-credential"),
            MI_API,
            None,
        )
        .await?;
    r.arm_error(404, "NotFound");
    ok(&server, &["group", "delete", "-n", "rg1", "--yes"]).await?;
    let groups = ok_json(&server, &["group", "list"]).await?;
    assert_eq!(groups, json!([]));
    Ok(())
}

#[tokio::test]
async fn cli_errors_are_clear_and_exit_non_zero() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("admin.json");
    let out = run_cli(&["group", "list"], &[("KEYLESS_ADMIN_FILE", &missing)]).await?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(
        err.contains("not found") && err.contains("keyless serve"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    let server = Server::start(&[]).await?;
    // A server-side error: the ARM code and message, non-zero exit, nothing on stdout.
    let out = server
        .cli(&["identity", "show", "-n", "nope", "-g", "nogroup"])
        .await?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ResourceGroupNotFound") && err.contains("nogroup"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());

    // A query that matches nothing fails instead of printing an empty line.
    ok(&server, &["group", "create", "-n", "rg1"]).await?;
    let out = server
        .cli(&[
            "group", "show", "-n", "rg1", "--query", "clientId", "-o", "tsv",
        ])
        .await?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("matched nothing"), "{}", stderr(&out));

    // A wrong secret in the admin file: the AADSTS error is shown, the secret is not.
    let mut admin: Value = serde_json::from_slice(&std::fs::read(server.admin_file())?)?;
    admin["clientSecret"] = json!("not-the-secret");
    let bad = dir.path().join("bad-admin.json");
    std::fs::write(&bad, admin.to_string())?;
    let out = run_cli(&["group", "list"], &[("KEYLESS_ADMIN_FILE", &bad)]).await?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("AADSTS7000215"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");

    // An unknown role name.
    let out = server
        .cli(&[
            "role",
            "assignment",
            "create",
            "--role",
            "No Such Role",
            "--assignee-object-id",
            &uuid::Uuid::new_v4().to_string(),
            "--scope",
            &server.sub_path(),
        ])
        .await?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("No Such Role"), "{}", stderr(&out));
    Ok(())
}

#[tokio::test]
async fn admin_reset_secret_replaces_the_admin_credential() -> Result<()> {
    let mut s = Server::start(&["--resync-interval", "1"]).await?;
    let old = s.admin.client_secret.clone();
    let dir = s.data_dir();
    let db: Vec<String> = s
        .database_url()
        .map(|u| vec!["--database-url".to_string(), u.to_string()])
        .unwrap_or_default();
    let db: Vec<&str> = db.iter().map(String::as_str).collect();
    let mut args = vec!["admin", "reset-secret", "--data-dir", dir.to_str().unwrap()];
    args.extend(&db);
    let out = s.cli(&args).await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(s.admin_file())?)?;
    let new = file["clientSecret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(file["clientId"], s.admin.client_id.as_str());
    // The secret is never printed when admin.json can be updated.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&new));
    // The running server (SQLite) picks the change up at its next resync.
    let started = std::time::Instant::now();
    loop {
        let r = s
            .post_form(
                &s.token_path_v2(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &s.admin.client_id),
                    ("client_secret", &new),
                    ("scope", &s.arm_scope()),
                ],
                &[],
            )
            .await?;
        if r.code() == 200 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "new secret refused: {}",
            r.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = s.request_token(&s.arm_scope()).await?;
    r.oauth_error(401, "invalid_client", 7000215);
    // A data directory whose key-encryption key does not match is refused.
    let stranger = tempfile::tempdir()?;
    std::fs::write(stranger.path().join("kek"), [9u8; 32])?;
    s.stop().await?;
    // The database with its write-ahead log, as a copied data directory would hold it.
    for f in ["keyless.db", "keyless.db-wal", "keyless.db-shm"] {
        if dir.join(f).exists() {
            std::fs::copy(dir.join(f), stranger.path().join(f))?;
        }
    }
    let mut args = vec![
        "admin",
        "reset-secret",
        "--data-dir",
        stranger.path().to_str().unwrap(),
    ];
    args.extend(&db);
    let out = s.cli(&args).await?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not belong"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn role_assignment_create_shows_who_can_act_as_the_identity_on_stderr() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg1").await?;
    let with = server.create_identity("rg1", "deployer").await?;
    let without = server.create_identity("rg1", "plain").await?;
    let r = server
        .put_fic(
            "rg1",
            "deployer",
            "pipeline",
            json!({"issuer": "https://oidc.cli.test/c1", "subject": "system:serviceaccount:ci:deploy", "audiences": ["api://AzureADTokenExchange"]}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let r = server
        .put_fic(
            "rg1",
            "deployer",
            "github",
            json!({"issuer": "https://token.actions.cli.test", "audiences": ["api://AzureADTokenExchange"], "claimsMatchingExpression": {"value": "claims['sub'] matches 'repo:org/*'", "languageVersion": 1}}),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let scope = server.sub_path();

    let principal = with["properties"]["principalId"].as_str().unwrap();
    let args = [
        "role",
        "assignment",
        "create",
        "--role",
        "Owner",
        "--assignee-object-id",
        principal,
        "--scope",
        &scope,
    ];
    let out = server.cli(&args).await?;
    assert!(out.status.success(), "{}", stderr(&out));
    // Standard output is the assignment JSON alone, for scripts.
    let a: Value = serde_json::from_str(&stdout(&out))?;
    assert_eq!(a["properties"]["principalId"], json!(principal));
    let err = stderr(&out);
    for needle in [
        "'deployer'",
        "'Owner'",
        &scope,
        "pipeline: issuer: https://oidc.cli.test/c1, subject: system:serviceaccount:ci:deploy",
        "github: issuer: https://token.actions.cli.test, claims matching expression: claims['sub'] matches 'repo:org/*'",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in stderr:\n{err}");
    }

    // An identity no workload can act as: nothing to point out.
    let principal = without["properties"]["principalId"].as_str().unwrap();
    let args = [
        "role",
        "assignment",
        "create",
        "--role",
        "Reader",
        "--assignee-object-id",
        principal,
        "--scope",
        &scope,
    ];
    let out = server.cli(&args).await?;
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out))?;
    assert!(!stderr(&out).contains("federated"), "{}", stderr(&out));
    Ok(())
}
