//! `keyless identity federated-credential ...`: the trust between an identity and an
//! external issuer's tokens.

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use super::args::CommonArgs;
use super::arm_client::path_segment;
use super::ci_presets::{self, Preset, Trigger};
use super::identity::{API_VERSION, identity_path};
use super::output::emit;
use super::session::Session;

/// The audience workload identity tokens carry by default.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Federated identity credential commands.
#[derive(Debug, clap::Subcommand)]
pub enum FederatedCredentialCommand {
    /// Create (or update) a federated identity credential.
    Create(Box<FederatedCredentialCreateArgs>),
    /// Show one federated identity credential.
    Show(FederatedCredentialNameArgs),
    /// List an identity's federated identity credentials.
    List(FederatedCredentialListArgs),
    /// Delete a federated identity credential.
    Delete(FederatedCredentialNameArgs),
}

/// The identity a credential belongs to.
#[derive(Debug, clap::Args)]
pub struct ParentIdentityArgs {
    /// Name of the identity.
    #[arg(long)]
    pub identity_name: String,
    /// Resource group of the identity.
    #[arg(long, short = 'g')]
    pub resource_group: String,
}

/// Arguments of `identity federated-credential create`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("match")
        .required(true)
        .args(["subject", "claims_matching_expression", "github_repo", "gitlab_project"])
))]
#[command(group(
    clap::ArgGroup::new("trigger").args(["branch", "tag", "environment", "pull_request"])
))]
pub struct FederatedCredentialCreateArgs {
    #[command(flatten)]
    pub parent: ParentIdentityArgs,
    /// Credential name.
    #[arg(long, short = 'n')]
    pub name: String,
    /// Issuer URL of the external tokens (exact match, https). With a CI preset it
    /// defaults to the CI's issuer (override for GitHub Enterprise Server or a
    /// self-managed GitLab).
    #[arg(long, required_unless_present_any = ["github_repo", "gitlab_project"])]
    pub issuer: Option<String>,
    /// Preset: trust GitHub Actions runs of OWNER/REPO (with --branch, --tag,
    /// --environment or --pull-request).
    #[arg(long, value_name = "OWNER/REPO", requires = "trigger")]
    pub github_repo: Option<String>,
    /// GitHub's numeric id of the repository (`gh api repos/OWNER/REPO --jq .id`):
    /// pins it, so a new repository under the same name is not trusted.
    #[arg(long, value_name = "ID", requires_all = ["github_repo", "github_owner_id"])]
    pub github_repo_id: Option<String>,
    /// GitHub's numeric id of the repository's owner (`--jq .owner.id`).
    #[arg(long, value_name = "ID", requires_all = ["github_repo", "github_repo_id"])]
    pub github_owner_id: Option<String>,
    /// Preset: trust GitLab CI jobs of GROUP/PROJECT (with --branch or --tag).
    #[arg(long, value_name = "GROUP/PROJECT", requires = "trigger")]
    pub gitlab_project: Option<String>,
    /// GitLab's numeric id of the project: pins it.
    #[arg(long, value_name = "ID", requires_all = ["gitlab_project", "gitlab_namespace_id"])]
    pub gitlab_project_id: Option<String>,
    /// GitLab's numeric id of the project's group (namespace).
    #[arg(long, value_name = "ID", requires_all = ["gitlab_project", "gitlab_project_id"])]
    pub gitlab_namespace_id: Option<String>,
    /// CI preset: jobs on this branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// CI preset: jobs on this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// CI preset (GitHub): jobs that deploy to this environment.
    #[arg(long)]
    pub environment: Option<String>,
    /// CI preset (GitHub): jobs of pull_request events.
    #[arg(long)]
    pub pull_request: bool,
    /// Subject the external token must carry, e.g. system:serviceaccount:NS:SA.
    #[arg(long)]
    pub subject: Option<String>,
    /// Instead of --subject: an expression over the token's claims, e.g.
    /// "claims['sub'] matches 'repo:org/*'".
    #[arg(
        long,
        visible_alias = "claims-matching-expression-value",
        value_name = "EXPR"
    )]
    pub claims_matching_expression: Option<String>,
    /// Language version of --claims-matching-expression.
    #[arg(
        long,
        default_value_t = 1,
        requires = "claims_matching_expression",
        value_name = "N"
    )]
    pub claims_matching_expression_version: u32,
    /// Audiences the external token must carry (ARM accepts exactly one).
    #[arg(long, num_args = 1.., default_value = DEFAULT_AUDIENCE, value_name = "AUDIENCE")]
    pub audiences: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments naming one credential.
#[derive(Debug, clap::Args)]
pub struct FederatedCredentialNameArgs {
    #[command(flatten)]
    pub parent: ParentIdentityArgs,
    /// Credential name.
    #[arg(long, short = 'n')]
    pub name: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `identity federated-credential list`.
#[derive(Debug, clap::Args)]
pub struct FederatedCredentialListArgs {
    #[command(flatten)]
    pub parent: ParentIdentityArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `{identity id}/federatedIdentityCredentials`.
pub fn credentials_path(subscription: &str, parent: &ParentIdentityArgs) -> Result<String> {
    Ok(format!(
        "{}/federatedIdentityCredentials",
        identity_path(subscription, &parent.resource_group, &parent.identity_name)?
    ))
}

/// The resource id of one credential.
pub fn credential_path(
    subscription: &str,
    parent: &ParentIdentityArgs,
    name: &str,
) -> Result<String> {
    Ok(format!(
        "{}/{}",
        credentials_path(subscription, parent)?,
        path_segment("federated credential", name)?
    ))
}

/// The CI preset the arguments ask for, if any.
fn preset(args: &FederatedCredentialCreateArgs) -> Result<Option<Preset>> {
    let trigger = match (
        &args.branch,
        &args.tag,
        &args.environment,
        args.pull_request,
    ) {
        (Some(b), _, _, _) => Trigger::Branch(b.clone()),
        (_, Some(t), _, _) => Trigger::Tag(t.clone()),
        (_, _, Some(e), _) => Trigger::Environment(e.clone()),
        (_, _, _, true) => Trigger::PullRequest,
        _ => {
            if args.github_repo.is_some() || args.gitlab_project.is_some() {
                bail!("a CI preset needs --branch, --tag, --environment or --pull-request");
            }
            return Ok(None);
        }
    };
    let issuer = args.issuer.as_deref();
    if let Some(repo) = &args.github_repo {
        let ids = args
            .github_repo_id
            .as_deref()
            .zip(args.github_owner_id.as_deref());
        return ci_presets::github(repo, &trigger, ids, issuer).map(Some);
    }
    if let Some(project) = &args.gitlab_project {
        let ids = args
            .gitlab_project_id
            .as_deref()
            .zip(args.gitlab_namespace_id.as_deref());
        return ci_presets::gitlab(project, &trigger, ids, issuer).map(Some);
    }
    bail!(
        "--branch, --tag, --environment and --pull-request go with --github-repo or --gitlab-project"
    )
}

/// The PUT body (a subject or a claims-matching expression), and a warning for the
/// user when a CI preset could not pin the repository's ids.
pub fn credential_body(args: &FederatedCredentialCreateArgs) -> Result<(Value, Option<String>)> {
    let preset = preset(args)?;
    let (issuer, subject, expression, warning) = match preset {
        Some(p) => (p.issuer, p.subject, p.expression, p.warning),
        None => (
            args.issuer.clone().unwrap_or_default(),
            args.subject.clone(),
            args.claims_matching_expression.clone(),
            None,
        ),
    };
    let mut properties = Map::new();
    properties.insert("issuer".into(), json!(issuer));
    if let Some(subject) = subject {
        properties.insert("subject".into(), json!(subject));
    }
    if let Some(expression) = expression {
        properties.insert(
            "claimsMatchingExpression".into(),
            json!({
                "value": expression,
                "languageVersion": args.claims_matching_expression_version,
            }),
        );
    }
    properties.insert("audiences".into(), json!(args.audiences));
    Ok((json!({ "properties": properties }), warning))
}

/// Runs a federated credential command.
pub async fn run(command: FederatedCredentialCommand) -> Result<()> {
    match command {
        FederatedCredentialCommand::Create(args) => {
            let session = Session::open(&args.common).await?;
            let (body, warning) = credential_body(&args)?;
            let path = credential_path(&session.subscription, &args.parent, &args.name)?;
            let credential = session.arm.put(&path, API_VERSION, &body).await?;
            if let Some(w) = warning {
                eprintln!("warning: {w}");
            }
            emit(&credential, &args.common)
        }
        FederatedCredentialCommand::Show(args) => {
            let session = Session::open(&args.common).await?;
            let path = credential_path(&session.subscription, &args.parent, &args.name)?;
            let credential = session.arm.get(&path, API_VERSION).await?;
            emit(&credential, &args.common)
        }
        FederatedCredentialCommand::List(args) => {
            let session = Session::open(&args.common).await?;
            let path = credentials_path(&session.subscription, &args.parent)?;
            let credentials = session.arm.list(&path, API_VERSION).await?;
            emit(&credentials.into(), &args.common)
        }
        FederatedCredentialCommand::Delete(args) => {
            let session = Session::open(&args.common).await?;
            let path = credential_path(&session.subscription, &args.parent, &args.name)?;
            session.arm.delete(&path, API_VERSION).await?;
            Ok(())
        }
    }
}
