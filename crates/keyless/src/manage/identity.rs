//! `keyless identity ...`: user-assigned managed identities.

use anyhow::Result;
use serde_json::{Value, json};

use super::args::{CommonArgs, parse_tag, tags_json};
use super::arm_client::path_segment;
use super::federated_credential::{self, FederatedCredentialCommand};
use super::group::{self, DEFAULT_LOCATION};
use super::output::emit;
use super::session::Session;

/// api-version sent for identities and their federated credentials.
pub const API_VERSION: &str = "2023-01-31";

/// Identity commands.
#[derive(Debug, clap::Subcommand)]
pub enum IdentityCommand {
    /// Create (or update) a user-assigned identity.
    Create(IdentityCreateArgs),
    /// Show one identity (clientId, principalId and tenantId are under `properties`;
    /// `--query clientId` finds them too).
    Show(IdentityNameArgs),
    /// List identities in a resource group, or in the whole subscription.
    List(IdentityListArgs),
    /// Delete an identity.
    Delete(IdentityNameArgs),
    /// Manage an identity's federated identity credentials.
    #[command(subcommand)]
    FederatedCredential(FederatedCredentialCommand),
}

/// Arguments of `identity create`.
#[derive(Debug, clap::Args)]
pub struct IdentityCreateArgs {
    /// Identity name.
    #[arg(long, short = 'n')]
    pub name: String,
    /// Resource group the identity lives in.
    #[arg(long, short = 'g')]
    pub resource_group: String,
    /// Location [default: the resource group's].
    #[arg(long, short = 'l')]
    pub location: Option<String>,
    /// Space-separated tags: key[=value] ...
    #[arg(long, num_args = 0.., value_parser = parse_tag, value_name = "KEY=VALUE")]
    pub tags: Vec<(String, String)>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments naming one identity.
#[derive(Debug, clap::Args)]
pub struct IdentityNameArgs {
    /// Identity name.
    #[arg(long, short = 'n')]
    pub name: String,
    /// Resource group the identity lives in.
    #[arg(long, short = 'g')]
    pub resource_group: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `identity list`.
#[derive(Debug, clap::Args)]
pub struct IdentityListArgs {
    /// Only this resource group [default: the whole subscription].
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`.
pub fn identities_path(subscription: &str, resource_group: &str) -> Result<String> {
    Ok(format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
        path_segment("subscription", subscription)?,
        path_segment("resource group", resource_group)?
    ))
}

/// The resource id of one identity.
pub fn identity_path(subscription: &str, resource_group: &str, name: &str) -> Result<String> {
    Ok(format!(
        "{}/{}",
        identities_path(subscription, resource_group)?,
        path_segment("identity", name)?
    ))
}

/// `/subscriptions/{s}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`.
pub fn subscription_identities_path(subscription: &str) -> Result<String> {
    Ok(format!(
        "/subscriptions/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
        path_segment("subscription", subscription)?
    ))
}

/// Runs an identity command.
pub async fn run(command: IdentityCommand) -> Result<()> {
    match command {
        IdentityCommand::Create(args) => create(args).await,
        IdentityCommand::Show(args) => {
            let session = Session::open(&args.common).await?;
            let path = identity_path(&session.subscription, &args.resource_group, &args.name)?;
            let identity = session.arm.get(&path, API_VERSION).await?;
            emit(&identity, &args.common)
        }
        IdentityCommand::List(args) => {
            let session = Session::open(&args.common).await?;
            let path = match &args.resource_group {
                Some(rg) => identities_path(&session.subscription, rg)?,
                None => subscription_identities_path(&session.subscription)?,
            };
            let identities = session.arm.list(&path, API_VERSION).await?;
            emit(&identities.into(), &args.common)
        }
        IdentityCommand::Delete(args) => {
            let session = Session::open(&args.common).await?;
            let path = identity_path(&session.subscription, &args.resource_group, &args.name)?;
            session.arm.delete(&path, API_VERSION).await?;
            Ok(())
        }
        IdentityCommand::FederatedCredential(command) => federated_credential::run(command).await,
    }
}

async fn create(args: IdentityCreateArgs) -> Result<()> {
    let session = Session::open(&args.common).await?;
    let location = match args.location {
        Some(location) => location,
        // As az does: an identity defaults to its group's location. Reading the group
        // also turns a missing group into the server's clear "group not found".
        None => {
            let group_path = group::group_path(&session.subscription, &args.resource_group)?;
            let group = session.arm.get(&group_path, group::API_VERSION).await?;
            group
                .get("location")
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_LOCATION)
                .to_owned()
        }
    };
    let path = identity_path(&session.subscription, &args.resource_group, &args.name)?;
    let body = json!({"location": location, "tags": tags_json(&args.tags)});
    let identity = session.arm.put(&path, API_VERSION, &body).await?;
    emit(&identity, &args.common)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            identity_path("s", "rg", "app").ok().as_deref(),
            Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app"
            )
        );
        assert_eq!(
            subscription_identities_path("s").ok().as_deref(),
            Some("/subscriptions/s/providers/Microsoft.ManagedIdentity/userAssignedIdentities")
        );
        assert!(identity_path("s", "rg", "a/../../x").is_ok_and(|p| !p.contains("/../")));
    }
}
