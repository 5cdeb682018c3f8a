//! `keyless identity federated-credential ...`: the trust between an identity and an
//! external issuer's tokens.

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::args::CommonArgs;
use super::arm_client::path_segment;
use super::identity::{API_VERSION, identity_path};
use super::output::emit;
use super::session::Session;

/// The audience workload identity tokens carry by default.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Federated identity credential commands.
#[derive(Debug, clap::Subcommand)]
pub enum FederatedCredentialCommand {
    /// Create (or update) a federated identity credential.
    Create(FederatedCredentialCreateArgs),
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
    clap::ArgGroup::new("match").required(true).args(["subject", "claims_matching_expression"])
))]
pub struct FederatedCredentialCreateArgs {
    #[command(flatten)]
    pub parent: ParentIdentityArgs,
    /// Credential name.
    #[arg(long, short = 'n')]
    pub name: String,
    /// Issuer URL of the external tokens (exact match, https).
    #[arg(long)]
    pub issuer: String,
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

/// The PUT body: either a subject or a claims-matching expression.
pub fn credential_body(args: &FederatedCredentialCreateArgs) -> Value {
    let mut properties = Map::new();
    properties.insert("issuer".into(), json!(args.issuer));
    if let Some(subject) = &args.subject {
        properties.insert("subject".into(), json!(subject));
    }
    if let Some(expression) = &args.claims_matching_expression {
        properties.insert(
            "claimsMatchingExpression".into(),
            json!({
                "value": expression,
                "languageVersion": args.claims_matching_expression_version,
            }),
        );
    }
    properties.insert("audiences".into(), json!(args.audiences));
    json!({ "properties": properties })
}

/// Runs a federated credential command.
pub async fn run(command: FederatedCredentialCommand) -> Result<()> {
    match command {
        FederatedCredentialCommand::Create(args) => {
            let session = Session::open(&args.common).await?;
            let path = credential_path(&session.subscription, &args.parent, &args.name)?;
            let credential = session
                .arm
                .put(&path, API_VERSION, &credential_body(&args))
                .await?;
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
