//! `keyless-credential` against the real `keyless serve` and `keyless dev-cluster`:
//! first token, caching (counted server-side), refresh ahead of expiry (injected
//! clock), token file rotation, single flight, and the error of every AADSTS refusal a
//! workload can meet. `cli` covers the token commands of the binary, `example` the
//! keyvault-reader example workload.

mod cli;
mod example;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use keyless_credential::{
    ClientSecretCredential, CredentialOptions, Error, ManualClock, RetryPolicy,
    WorkloadIdentityCredential, WorkloadIdentityOptions, scope_for_resource,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::testkit::{
    DevCluster, Identity, KEYLESS_API, Server, TestIssuer, credential, jwt_claims, now, poll,
};

/// Counter of tokens issued for federated assertions.
const ASSERTION_TOKENS: &str = "keyless_tokens_issued_total{grant=\"client_assertion\"}";
/// The service account the tests' workload runs as.
const NAMESPACE: &str = "apps";
const ACCOUNT: &str = "reader";

/// A dev cluster, a Keyless trusting it, and an identity whose federated credential
/// trusts `system:serviceaccount:apps:reader`.
struct Workload {
    cluster: DevCluster,
    server: Server,
    identity: Identity,
    dir: tempfile::TempDir,
}

impl Workload {
    /// Starts both with `extra` `keyless serve` flags (e.g. `--token-lifetime 300`).
    async fn start(extra: &[&str]) -> Result<Workload> {
        let cluster = DevCluster::start(&[]).await?;
        let ca = cluster.ca_path();
        let mut args = vec![
            "--allow-private-issuers",
            "--trust-ca",
            ca.to_str().context("path")?,
        ];
        args.extend_from_slice(extra);
        let server = Server::start(&args).await?;
        let identity = server
            .identity_with_credential(
                "rg-credential",
                "reader-app",
                credential(&cluster.issuer, &subject(ACCOUNT)),
            )
            .await?;
        Ok(Workload {
            cluster,
            server,
            identity,
            dir: tempfile::tempdir()?,
        })
    }

    /// Writes a fresh projected token for `account` to the token file, atomically
    /// (like the kubelet); returns the file.
    async fn project(&self, account: &str) -> Result<PathBuf> {
        let token = self.cluster.mint(NAMESPACE, account).await?;
        self.write_token(&token)
    }

    fn write_token(&self, content: &str) -> Result<PathBuf> {
        let path = self.dir.path().join("azure-identity-token");
        let tmp = self.dir.path().join(".token.tmp");
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    fn ca(&self) -> PathBuf {
        self.server.data_dir().join("ca.pem")
    }

    /// Options pointing at this Keyless and trusting its CA.
    fn options(&self) -> CredentialOptions {
        CredentialOptions::new()
            .authority_host(&self.server.url)
            .ca_file(self.ca())
    }

    fn credential(
        &self,
        token_file: &Path,
        options: CredentialOptions,
    ) -> Result<WorkloadIdentityCredential> {
        Ok(WorkloadIdentityCredential::new(
            WorkloadIdentityOptions::new()
                .tenant_id(&self.server.admin.tenant_id)
                .client_id(&self.identity.client_id)
                .token_file_path(token_file)
                .options(options),
        )?)
    }

    fn arm_scope(&self) -> String {
        scope_for_resource(self.server.admin.resource_manager_url.trim_end_matches('/'))
    }

    async fn issued(&self) -> Result<u64> {
        self.server.metric(ASSERTION_TOKENS).await
    }

    /// The successful sign-ins of `client_id`, once there are at least `count`.
    async fn sign_ins(&self, client_id: &str, count: usize) -> Result<Vec<Value>> {
        let found = poll(10, || async {
            let r = self
                .server
                .arm(
                    Method::GET,
                    &format!("/providers/Keyless/signInLogs?api-version={KEYLESS_API}"),
                    None,
                )
                .await?;
            let entries: Vec<Value> = r.body["value"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e["clientId"] == json!(client_id) && e["status"] == json!("success"))
                .collect();
            Ok((entries.len() >= count).then_some(entries))
        })
        .await?;
        found.with_context(|| format!("fewer than {count} sign-ins of {client_id} were logged"))
    }
}

fn subject(account: &str) -> String {
    format!("system:serviceaccount:{NAMESPACE}:{account}")
}

#[tokio::test]
async fn first_token_is_cached_then_refreshed_ahead_of_expiry() -> Result<()> {
    let w = Workload::start(&["--token-lifetime", "300"]).await?;
    let file = w.project(ACCOUNT).await?;
    let clock = Arc::new(ManualClock::starting_now());
    let cred = w.credential(&file, w.options().clock(clock.clone()))?;
    let scope = w.arm_scope();

    let first = cred.get_token(&scope).await?;
    let claims = jwt_claims(first.secret());
    assert_eq!(claims["appid"], json!(w.identity.client_id));
    assert_eq!(claims["oid"], json!(w.identity.principal_id));
    assert_eq!(claims["aud"], json!(w.server.admin.resource_manager_url));
    let lifetime = first.expires_on().duration_since(SystemTime::now())?;
    assert!(
        lifetime <= Duration::from_secs(300) && lifetime > Duration::from_secs(280),
        "{lifetime:?}"
    );
    assert_eq!(w.issued().await?, 1);

    // Cached: the same token, no request (counted by the server).
    for _ in 0..5 {
        assert_eq!(cred.get_token(&scope).await?.secret(), first.secret());
    }
    clock.advance(Duration::from_secs(149));
    assert_eq!(cred.get_token(&scope).await?.secret(), first.secret());
    assert_eq!(w.issued().await?, 1, "a cached token costs no request");

    // Half-way through a 300 s token (5 minutes before expiry is earlier than the
    // start), the next call refreshes — while the old token is still valid.
    clock.advance(Duration::from_secs(2));
    let second = cred.get_token(&scope).await?;
    assert_ne!(second.secret(), first.secret());
    assert_eq!(w.issued().await?, 2);
    assert!(
        jwt_claims(first.secret())["exp"]
            .as_i64()
            .unwrap_or_default()
            > now(),
        "refreshed before expiry"
    );
    assert_eq!(cred.get_token(&scope).await?.secret(), second.secret());
    assert_eq!(w.issued().await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_rotated_token_file_is_picked_up() -> Result<()> {
    let w = Workload::start(&[]).await?;
    // A second federated credential, for the service account the file rotates to.
    let r = w
        .server
        .put_fic(
            "rg-credential",
            "reader-app",
            "fic2",
            credential(&w.cluster.issuer, &subject("rotated")),
        )
        .await?;
    assert_eq!(r.code(), 201, "{}", r.body);
    let file = w.project(ACCOUNT).await?;
    let clock = Arc::new(ManualClock::starting_now());
    let cred = w.credential(&file, w.options().clock(clock.clone()))?;
    let scope = w.arm_scope();
    let first = cred.get_token(&scope).await?;
    let logged = w.sign_ins(&w.identity.client_id, 1).await?;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["subject"], json!(subject(ACCOUNT)));

    // The kubelet replaces the file; the next token request presents the new token.
    w.project("rotated").await?;
    clock.advance(Duration::from_secs(1801));
    let second = cred.get_token(&scope).await?;
    assert_ne!(second.secret(), first.secret());
    let mut subjects: Vec<String> = w
        .sign_ins(&w.identity.client_id, 2)
        .await?
        .iter()
        .filter_map(|e| e["subject"].as_str().map(str::to_owned))
        .collect();
    subjects.sort();
    assert_eq!(subjects, vec![subject(ACCOUNT), subject("rotated")]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_cause_one_token_request() -> Result<()> {
    let w = Workload::start(&[]).await?;
    let file = w.project(ACCOUNT).await?;
    let cred = Arc::new(w.credential(&file, w.options())?);
    let scope = Arc::new(w.arm_scope());
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cred, scope, barrier) = (cred.clone(), scope.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cred.get_token(&scope).await.map(|t| t.secret().to_owned())
            })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        tokens.insert(task.await??);
    }
    assert_eq!(tokens.len(), 1, "every caller got the same token");
    assert_eq!(
        w.issued().await?,
        1,
        "100 concurrent callers, one token request"
    );
    Ok(())
}

/// Asserts a refusal: status, OAuth error, AADSTS code, a description that starts with
/// the code and names the detail, a correlation id, no retries.
#[track_caller]
fn assert_refused(
    result: Result<keyless_credential::AccessToken, Error>,
    status: u16,
    error: &str,
    code: u64,
    detail: &str,
) {
    let e = match result {
        Ok(t) => panic!(
            "AADSTS{code}: expected a refusal, got a token expiring {:?}",
            t.expires_on()
        ),
        Err(e) => e,
    };
    let s = e
        .service_error()
        .unwrap_or_else(|| panic!("AADSTS{code}: expected a service error, got: {e}"));
    assert_eq!((s.status, s.error.as_deref()), (status, Some(error)), "{e}");
    assert_eq!(s.error_codes, vec![code], "{e}");
    let description = s.error_description.as_deref().unwrap_or_default();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{e}");
    assert!(
        description.contains(detail),
        "AADSTS{code} should mention {detail:?}: {e}"
    );
    assert!(
        s.correlation_id.as_deref().is_some_and(|c| !c.is_empty()),
        "{e}"
    );
    assert_eq!(s.attempts, 1, "refusals are not retried: {e}");
    let message = e.to_string();
    assert!(
        message.contains(&format!("HTTP {status} {error}: AADSTS{code}: ")),
        "{message}"
    );
}

#[tokio::test]
async fn every_refusal_is_a_clear_error() -> Result<()> {
    let w = Workload::start(&[]).await?;
    let scope = w.arm_scope();
    let tenant = w.server.admin.tenant_id.clone();
    let file = w.project(ACCOUNT).await?;
    let cred = |f: &Path, client: &str, tenant: &str| {
        WorkloadIdentityCredential::new(
            WorkloadIdentityOptions::new()
                .tenant_id(tenant)
                .client_id(client)
                .token_file_path(f)
                .options(w.options().retry_policy(RetryPolicy::none())),
        )
    };

    // Unknown client id.
    let unknown = "00000000-0000-4000-8000-00000000dead";
    assert_refused(
        cred(&file, unknown, &tenant)?.get_token(&scope).await,
        400,
        "unauthorized_client",
        700016,
        unknown,
    );
    // Unknown tenant.
    let other_tenant = "00000000-0000-4000-8000-0000000beef0";
    assert_refused(
        cred(&file, &w.identity.client_id, other_tenant)?
            .get_token(&scope)
            .await,
        400,
        "invalid_tenant",
        90002,
        other_tenant,
    );
    // Unknown resource.
    assert_refused(
        cred(&file, &w.identity.client_id, &tenant)?
            .get_token("https://unknown.example/.default")
            .await,
        400,
        "invalid_resource",
        500011,
        "https://unknown.example",
    );
    // Not a JWT in the token file.
    let bad = w.write_token("not-a-jwt")?;
    assert_refused(
        cred(&bad, &w.identity.client_id, &tenant)?
            .get_token(&scope)
            .await,
        400,
        "invalid_request",
        50027,
        "malformed",
    );
    // Another service account: subject mismatch.
    let other = w.project("intruder").await?;
    assert_refused(
        cred(&other, &w.identity.client_id, &tenant)?
            .get_token(&scope)
            .await,
        401,
        "invalid_client",
        700213,
        &subject("intruder"),
    );
    // Another audience.
    let token = w
        .cluster
        .mint_with(json!({"namespace": NAMESPACE, "serviceAccount": ACCOUNT, "audiences": ["api://other"], "expirationSeconds": 3600}))
        .await?;
    let f = w.write_token(&token)?;
    assert_refused(
        cred(&f, &w.identity.client_id, &tenant)?
            .get_token(&scope)
            .await,
        401,
        "invalid_client",
        700212,
        "api://other",
    );
    // An issuer no credential of the identity names.
    let foreign = TestIssuer::new("https://issuer.credential-test.example/c1")?;
    w.server
        .register_issuer("credential-test", &foreign.issuer, foreign.jwks())
        .await?;
    let f = w.write_token(&foreign.sign(&foreign.claims(&subject(ACCOUNT))))?;
    assert_refused(
        cred(&f, &w.identity.client_id, &tenant)?
            .get_token(&scope)
            .await,
        401,
        "invalid_client",
        700211,
        &foreign.issuer,
    );
    // An expired assertion from a trusted issuer.
    let expired_id = w
        .server
        .identity_with_credential(
            "rg-credential",
            "expired-app",
            credential(&foreign.issuer, &subject(ACCOUNT)),
        )
        .await?;
    let mut claims = foreign.claims(&subject(ACCOUNT));
    claims["iat"] = json!(now() - 7200);
    claims["nbf"] = json!(now() - 7200);
    claims["exp"] = json!(now() - 3600);
    let f = w.write_token(&foreign.sign(&claims))?;
    assert_refused(
        cred(&f, &expired_id.client_id, &tenant)?
            .get_token(&scope)
            .await,
        401,
        "invalid_client",
        700024,
        "",
    );

    // The federated token file itself missing: a local error naming the file.
    let missing = w.dir.path().join("missing-token");
    let e = cred(&missing, &w.identity.client_id, &tenant)?
        .get_token(&scope)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TokenFile { .. }), "{e}");
    assert!(e.to_string().contains("missing-token"), "{e}");
    Ok(())
}

#[tokio::test]
async fn client_secret_credential_signs_in_the_admin() -> Result<()> {
    let server = Server::start(&[]).await?;
    let a = &server.admin;
    let options = CredentialOptions::new()
        .authority_host(&a.authority_host)
        .ca_file(server.data_dir().join("ca.pem"));
    let cred = ClientSecretCredential::new(
        &a.tenant_id,
        &a.client_id,
        &a.client_secret,
        options.clone(),
    )?;
    let token = cred
        .get_token(&format!("{}.default", a.resource_manager_url))
        .await?;
    assert_eq!(jwt_claims(token.secret())["appid"], json!(a.client_id));
    let wrong = ClientSecretCredential::new(&a.tenant_id, &a.client_id, "not-the-secret", options)?;
    assert_refused(
        wrong
            .get_token(&format!("{}.default", a.resource_manager_url))
            .await,
        401,
        "invalid_client",
        7000215,
        "",
    );
    Ok(())
}
