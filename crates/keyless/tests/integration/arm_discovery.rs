//! What az and Terraform read before and right after sign-in: the anonymous cloud
//! metadata document (`/metadata/endpoints`), and the subscriptions and tenants an
//! identity sees (`az login` lists them), which must not grant anything else.

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{
    AUTHZ_API, DevCluster, RG_API, SUB_API, Server, credential, jwt_claims, role_id,
};

const KV_API: &str = "2023-07-01";

#[tokio::test]
async fn cloud_metadata_is_anonymous_and_shaped_per_api_version() -> Result<()> {
    let s = Server::start(&[]).await?;
    let origin = format!("https://localhost:{}", s.port);
    let check = |doc: &Value| {
        assert_eq!(doc["name"], json!("Keyless"), "{doc}");
        assert_eq!(doc["resourceManager"], json!(format!("{origin}/")), "{doc}");
        assert_eq!(
            doc["authentication"]["loginEndpoint"],
            json!(format!("{origin}/")),
            "{doc}"
        );
        assert_eq!(
            doc["authentication"]["audiences"],
            json!([s.admin.resource_manager_url]),
            "{doc}"
        );
        assert_eq!(
            doc["suffixes"]["keyVaultDns"],
            json!(format!("vault.localhost:{}", s.port)),
            "{doc}"
        );
        // The Go SDK (Terraform) refuses a document without it.
        assert!(
            doc["microsoftGraphResourceId"]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "{doc}"
        );
        // Nothing discovery does not already say: no tenant, subscription or vault.
        let text = doc.to_string();
        for secret in [
            &s.admin.tenant_id,
            &s.admin.subscription_id,
            &s.admin.client_id,
        ] {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
    };
    // The api-versions azure-cli (2022-09-01), go-azure-sdk (2022-09-01), older Go SDKs
    // (2019-05-01: a list of clouds) and Azure Stack tooling (2015-01-01, 1.0) send.
    for (query, list) in [
        ("?api-version=2022-09-01", false),
        ("?api-version=2019-05-01", true),
        ("?api-version=2020-06-01", true),
        ("?api-version=2015-01-01", false),
        ("?api-version=1.0", false),
        ("", false),
    ] {
        // Anonymous: no Authorization header.
        let r = s.get(&format!("/metadata/endpoints{query}")).await?;
        assert_eq!(r.code(), 200, "{query}: {}", r.body);
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{query}"
        );
        if list {
            let clouds = r.body.as_array().context("a list of clouds")?;
            assert_eq!(clouds.len(), 1, "{query}: {}", r.body);
            check(&clouds[0]);
        } else {
            check(&r.body);
        }
    }
    // az joins `https://HOST:PORT/` and `/metadata/endpoints`: a doubled slash.
    let r = s.get("//metadata/endpoints?api-version=2022-09-01").await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    check(&r.body);
    // The public URL, never the request's Host header, names the endpoints.
    let r = s
        .client
        .get(s.at("/metadata/endpoints?api-version=2022-09-01"))
        .header("host", "evil.example")
        .send()
        .await?;
    let body: Value = r.json().await?;
    assert!(!body.to_string().contains("evil.example"), "{body}");

    let r = s.get("/metadata/endpoints?api-version=latest").await?;
    let msg = r.arm_error(400, "InvalidApiVersionParameter");
    assert!(msg.contains("latest"), "{msg}");
    let r = s
        .client
        .post(s.at("/metadata/endpoints?api-version=2022-09-01"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 405);
    Ok(())
}

async fn token(s: &Server, cluster: &DevCluster, client_id: &str, sa: &str) -> Result<String> {
    let assertion = cluster.mint("apps", sa).await?;
    let r = s.exchange(client_id, &assertion).await?;
    anyhow::ensure!(r.code() == 200, "exchange: {}", r.body);
    r.body["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access_token")
}

async fn get(s: &Server, token: &str, path: &str, api: &str) -> Result<crate::testkit::Reply> {
    let sep = if path.contains('?') { '&' } else { '?' };
    s.arm_raw(
        Method::GET,
        &format!("{path}{sep}api-version={api}"),
        Some(&format!("Bearer {token}")),
        None,
    )
    .await
}

fn subscription_ids(r: &crate::testkit::Reply) -> Vec<String> {
    assert_eq!(r.code(), 200, "{}", r.body);
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["subscriptionId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_role_below_the_subscription_makes_it_visible_and_nothing_more() -> Result<()> {
    let cluster = DevCluster::start(&[]).await?;
    let s = Server::start_trusting(&cluster).await?;
    let sub = s.admin.subscription_id.clone();
    let reader = s
        .identity_with_credential(
            "apps",
            "reader",
            credential(&cluster.issuer, "system:serviceaccount:apps:reader"),
        )
        .await?;
    let nobody = s
        .identity_with_credential(
            "apps",
            "nobody",
            credential(&cluster.issuer, "system:serviceaccount:apps:nobody"),
        )
        .await?;
    let vault = format!(
        "{}/providers/Microsoft.KeyVault/vaults/discovery-kv",
        s.rg_path("apps")
    );
    let r = s
        .armv(
            Method::PUT,
            &vault,
            KV_API,
            Some(json!({"location": "westeurope"})),
        )
        .await?;
    assert!(r.code() == 201 || r.code() == 200, "{}", r.body);
    let name = uuid::Uuid::new_v4().to_string();
    let assignment = Server::assignment_path(&vault, &name);
    let r = s
        .put_assignment(
            &vault,
            &name,
            role_id("Key Vault Secrets User"),
            &reader.principal_id,
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);

    let reader_token = token(&s, &cluster, &reader.client_id, "reader").await?;
    let nobody_token = token(&s, &cluster, &nobody.client_id, "nobody").await?;
    assert_eq!(jwt_claims(&reader_token)["oid"], json!(reader.principal_id));

    // The data role on one vault makes its subscription visible (what `az login` lists)...
    let r = get(&s, &reader_token, "/subscriptions", SUB_API).await?;
    assert_eq!(subscription_ids(&r), vec![sub.clone()]);
    let r = get(&s, &reader_token, &s.sub_path(), SUB_API).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["subscriptionId"], json!(sub));
    assert_eq!(r.body["tenantId"], json!(s.admin.tenant_id));
    assert_eq!(r.body["state"], json!("Enabled"));
    let r = get(&s, &reader_token, "/tenants", SUB_API).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["value"][0]["tenantId"], json!(s.admin.tenant_id));

    // ...and grants nothing else: not its resource groups, the vault's management
    // resource, identities or role assignments.
    // The group list is filtered to what the caller may read: nothing, though the
    // admin sees the group.
    let groups = format!("{}/resourcegroups", s.sub_path());
    let r = get(&s, &reader_token, &groups, RG_API).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["value"], json!([]));
    let r = s.armv(Method::GET, &groups, RG_API, None).await?;
    assert_eq!(
        r.body["value"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body
    );
    for (path, api) in [
        (s.rg_path("apps"), RG_API),
        (vault.clone(), KV_API),
        (
            format!(
                "{}/providers/Microsoft.Authorization/roleAssignments",
                s.sub_path()
            ),
            AUTHZ_API,
        ),
    ] {
        let r = get(&s, &reader_token, &path, api).await?;
        r.arm_error(403, "AuthorizationFailed");
    }
    // Lists are filtered to what the caller may read: empty.
    for (path, api) in [
        (
            format!("{}/providers/Microsoft.KeyVault/vaults", s.sub_path()),
            KV_API,
        ),
        (
            format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                s.sub_path()
            ),
            "2023-01-31",
        ),
    ] {
        let r = get(&s, &reader_token, &path, api).await?;
        assert_eq!(r.code(), 200, "{path}: {}", r.body);
        assert_eq!(r.body["value"], json!([]), "{path}");
    }

    // An identity with no role sees no subscription, and is refused the one that exists.
    let r = get(&s, &nobody_token, "/subscriptions", SUB_API).await?;
    assert_eq!(subscription_ids(&r), Vec::<String>::new());
    let r = get(&s, &nobody_token, &s.sub_path(), SUB_API).await?;
    r.arm_error(403, "AuthorizationFailed");
    // Its own tenant is in its token already; listing it reveals nothing.
    let r = get(&s, &nobody_token, "/tenants", SUB_API).await?;
    assert_eq!(r.body["value"][0]["tenantId"], json!(s.admin.tenant_id));
    // An unknown subscription is not found, for either.
    let unknown = format!("/subscriptions/{}", uuid::Uuid::new_v4());
    let r = get(&s, &reader_token, &unknown, SUB_API).await?;
    r.arm_error(404, "SubscriptionNotFound");

    // Removing the role hides the subscription again, at once.
    let r = s
        .arm(
            Method::DELETE,
            &format!("{assignment}?api-version={AUTHZ_API}"),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = get(&s, &reader_token, "/subscriptions", SUB_API).await?;
    assert_eq!(subscription_ids(&r), Vec::<String>::new());
    let r = get(&s, &reader_token, &s.sub_path(), SUB_API).await?;
    r.arm_error(403, "AuthorizationFailed");
    Ok(())
}

#[tokio::test]
async fn az_config_prints_the_set_up_of_the_running_server() -> Result<()> {
    let s = Server::start(&[]).await?;
    let ca = s.data_dir().join("ca.pem");
    let out = s.cli(&["az-config"]).await?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines[..4],
        [
            format!("export REQUESTS_CA_BUNDLE={}", ca.display()).as_str(),
            format!(
                "az cloud register -n keyless --endpoint-resource-manager {}",
                s.admin.resource_manager_url
            )
            .as_str(),
            "az cloud set -n keyless",
            "az config set core.instance_discovery=false",
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "az login --service-principal -u \"$AZURE_CLIENT_ID\" -t {} --federated-token",
            s.admin.tenant_id
        )),
        "{stdout}"
    );
    // Never the secret.
    assert!(!stdout.contains(&s.admin.client_secret), "{stdout}");

    let out = s.cli(&["az-config", "-o", "json", "-n", "kl"]).await?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["setup"][0][4], json!("kl"), "{v}");
    assert_eq!(v["setup"][0][6], json!(s.admin.resource_manager_url), "{v}");
    assert_eq!(v["environment"]["REQUESTS_CA_BUNDLE"], json!(ca), "{v}");
    assert_eq!(v["tenantId"], json!(s.admin.tenant_id), "{v}");

    // Without the admin file or a session: --authority and --ca-file. The tenant is
    // then the workload's variable.
    let empty = tempfile::tempdir()?;
    let env = [("KEYLESS_CONFIG_DIR", empty.path())];
    let authority = s.url.clone();
    let ca_arg = ca.to_str().context("utf-8 path")?;
    let out = crate::testkit::run_cli(
        &["az-config", "--authority", &authority, "--ca-file", ca_arg],
        &env,
    )
    .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("-t \"$AZURE_TENANT_ID\""), "{stdout}");
    // Without the CA, the server's certificate is not trusted: said before az is run.
    let out = crate::testkit::run_cli(&["az-config", "--authority", &authority], &env).await?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(stderr.contains("--ca-file"), "{stderr}");
    // Nothing to go on: says how to name the server.
    let out = crate::testkit::run_cli(&["az-config"], &env).await?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(stderr.contains("--authority"), "{stderr}");
    Ok(())
}
