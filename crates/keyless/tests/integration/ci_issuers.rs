//! CI issuer presets (`--github-repo`, `--gitlab-project`) end to end: credentials made
//! with the CLI, and tokens shaped exactly like GitHub Actions' and GitLab CI's, in
//! both of GitHub's subject forms; a repository recreated under the same name is
//! refused when the ids are pinned.

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use crate::testkit::{Server, TestIssuer, now};

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const GITLAB: &str = "https://gitlab.com";

/// Every claim GitHub documents for a job token.
fn github_claims(sub: &str, repo_id: &str, owner_id: &str, r#ref: &str) -> Value {
    let t = now();
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": sub,
        "aud": "api://AzureADTokenExchange",
        "ref": r#ref,
        "sha": "d6ea4f3ba1e9e8c2a0c5b0c9e2b1f4a7c3d8e9f0",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "repository_owner_id": owner_id,
        "repository_id": repo_id,
        "repository_visibility": "private",
        "actor_id": "1234567",
        "actor": "octocat",
        "run_id": "9876543210",
        "run_number": "42",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "workflow": "deploy",
        "workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
        "workflow_sha": "d6ea4f3ba1e9e8c2a0c5b0c9e2b1f4a7c3d8e9f0",
        "job_workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_sha": "d6ea4f3ba1e9e8c2a0c5b0c9e2b1f4a7c3d8e9f0",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "branch",
        "ref_protected": "true",
        "enterprise": "octo-enterprise",
        "enterprise_id": "55",
        "iss": GITHUB,
        "nbf": t - 5,
        "iat": t,
        "exp": t + 300,
    })
}

/// Every claim GitLab documents for a CI/CD ID token.
fn gitlab_claims(project_id: &str) -> Value {
    let t = now();
    json!({
        "namespace_id": "72",
        "namespace_path": "grp",
        "project_id": project_id,
        "project_path": "grp/proj",
        "user_id": "42",
        "user_login": "ci-user",
        "user_email": "ci-user@example.com",
        "user_access_level": "maintainer",
        "user_identities": [],
        "pipeline_id": "1212",
        "pipeline_source": "push",
        "job_id": "1212",
        "ref": "main",
        "ref_type": "branch",
        "ref_path": "refs/heads/main",
        "ref_protected": "true",
        "environment": "production",
        "environment_protected": "true",
        "deployment_tier": "production",
        "environment_action": "start",
        "runner_id": 1,
        "runner_environment": "gitlab-hosted",
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "project_visibility": "private",
        "ci_config_ref_uri": "gitlab.com/grp/proj//.gitlab-ci.yml@refs/heads/main",
        "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "jti": uuid::Uuid::new_v4().to_string(),
        "iss": GITLAB,
        "iat": t,
        "nbf": t - 5,
        "exp": t + 300,
        "sub": "project_path:grp/proj:ref_type:branch:ref:main",
        "aud": "api://AzureADTokenExchange",
    })
}

/// An identity with a credential made by `keyless identity federated-credential create
/// ARGS`; returns its client id and the CLI's stderr.
async fn identity_with(server: &Server, name: &str, args: &[&str]) -> Result<(String, String)> {
    let rg = format!("rg-{name}");
    server.create_rg(&rg).await?;
    let id = server.create_identity(&rg, name).await?;
    let mut cli = vec![
        "identity",
        "federated-credential",
        "create",
        "--identity-name",
        name,
        "-g",
        &rg,
        "-n",
        "ci-preset",
        "-o",
        "json",
    ];
    cli.extend_from_slice(args);
    let out = server.cli(&cli).await?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(out.status.success(), "create failed: {stderr}");
    let client = id["properties"]["clientId"].as_str().unwrap().to_string();
    Ok((client, stderr))
}

#[tokio::test]
async fn github_presets_match_githubs_tokens_and_pin_the_ids() -> Result<()> {
    let server = Server::start(&[]).await?;
    let github = TestIssuer::new(GITHUB)?;
    server
        .register_issuer("github", GITHUB, github.jwks())
        .await?;

    // By name: GitHub's classic subject, with a warning about what is not pinned.
    let (by_name, stderr) = identity_with(
        &server,
        "gh-name",
        &["--github-repo", "octo-org/octo-repo", "--branch", "main"],
    )
    .await?;
    assert!(
        stderr.contains("warning:") && stderr.contains("--github-repo-id"),
        "{stderr}"
    );
    let main = "repo:octo-org/octo-repo:ref:refs/heads/main";
    let r = server
        .exchange(
            &by_name,
            &github.sign(&github_claims(main, "74", "65", "refs/heads/main")),
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let dev = "repo:octo-org/octo-repo:ref:refs/heads/dev";
    let r = server
        .exchange(
            &by_name,
            &github.sign(&github_claims(dev, "74", "65", "refs/heads/dev")),
        )
        .await?;
    assert!(
        r.code() == 400 || r.code() == 401,
        "another branch: {}",
        r.body
    );

    // Pinned: both subject forms of the same repository, never a recreated one.
    let (pinned, stderr) = identity_with(
        &server,
        "gh-ids",
        &[
            "--github-repo",
            "octo-org/octo-repo",
            "--branch",
            "main",
            "--github-repo-id",
            "74",
            "--github-owner-id",
            "65",
        ],
    )
    .await?;
    assert!(!stderr.contains("warning:"), "{stderr}");
    let immutable = "repo:octo-org@65/octo-repo@74:ref:refs/heads/main";
    for sub in [main, immutable] {
        let r = server
            .exchange(
                &pinned,
                &github.sign(&github_claims(sub, "74", "65", "refs/heads/main")),
            )
            .await?;
        assert_eq!(r.code(), 200, "{sub}: {}", r.body);
    }
    let r = server
        .exchange(
            &pinned,
            &github.sign(&github_claims(main, "75", "65", "refs/heads/main")),
        )
        .await?;
    assert!(
        r.code() == 400 || r.code() == 401,
        "a recreated repository: {}",
        r.body
    );

    // Environments and pull requests: GitHub's subject formats.
    let (env, _) = identity_with(
        &server,
        "gh-env",
        &[
            "--github-repo",
            "octo-org/octo-repo",
            "--environment",
            "prod",
        ],
    )
    .await?;
    let mut claims = github_claims(
        "repo:octo-org/octo-repo:environment:prod",
        "74",
        "65",
        "refs/heads/main",
    );
    claims["environment"] = json!("prod");
    let r = server.exchange(&env, &github.sign(&claims)).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let (pr, _) = identity_with(
        &server,
        "gh-pr",
        &["--github-repo", "octo-org/octo-repo", "--pull-request"],
    )
    .await?;
    let mut claims = github_claims(
        "repo:octo-org/octo-repo:pull_request",
        "74",
        "65",
        "refs/pull/7/merge",
    );
    claims["event_name"] = json!("pull_request");
    let r = server.exchange(&pr, &github.sign(&claims)).await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn gitlab_presets_match_gitlabs_tokens_and_pin_the_ids() -> Result<()> {
    let server = Server::start(&[]).await?;
    let gitlab = TestIssuer::new(GITLAB)?;
    server
        .register_issuer("gitlab", GITLAB, gitlab.jwks())
        .await?;
    let (client, stderr) = identity_with(
        &server,
        "gl-ids",
        &[
            "--gitlab-project",
            "grp/proj",
            "--branch",
            "main",
            "--gitlab-project-id",
            "1001",
            "--gitlab-namespace-id",
            "72",
        ],
    )
    .await?;
    assert!(!stderr.contains("warning:"), "{stderr}");
    let r = server
        .exchange(&client, &gitlab.sign(&gitlab_claims("1001")))
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    let r = server
        .exchange(&client, &gitlab.sign(&gitlab_claims("1002")))
        .await?;
    assert!(
        r.code() == 400 || r.code() == 401,
        "another project under the path: {}",
        r.body
    );

    // Misuse is refused by the CLI before anything is written.
    let out = server
        .cli(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "gl-ids",
            "-g",
            "rg-gl-ids",
            "-n",
            "bad",
            "--gitlab-project",
            "grp/proj",
            "--pull-request",
        ])
        .await?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--branch or --tag"));
    Ok(())
}
