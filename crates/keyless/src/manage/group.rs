//! `keyless group ...`: resource groups.

use anyhow::Result;
use serde_json::json;

use super::args::{CommonArgs, parse_tag, tags_json};
use super::arm_client::path_segment;
use super::output::emit;
use super::session::Session;

/// api-version sent for resource groups.
pub const API_VERSION: &str = "2021-04-01";

/// Location used when none is given: Keyless has a single location, and ARM wants one.
pub const DEFAULT_LOCATION: &str = "local";

/// Resource group commands.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create (or update) a resource group.
    Create(GroupCreateArgs),
    /// Show one resource group.
    Show(GroupNameArgs),
    /// List the subscription's resource groups.
    List(GroupListArgs),
    /// Delete a resource group and everything in it.
    Delete(GroupDeleteArgs),
}

/// Arguments of `group create`.
#[derive(Debug, clap::Args)]
pub struct GroupCreateArgs {
    /// Resource group name.
    #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
    pub name: String,
    /// Location.
    #[arg(long, short = 'l', default_value = DEFAULT_LOCATION)]
    pub location: String,
    /// Space-separated tags: key[=value] ...
    #[arg(long, num_args = 0.., value_parser = parse_tag, value_name = "KEY=VALUE")]
    pub tags: Vec<(String, String)>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments naming one resource group.
#[derive(Debug, clap::Args)]
pub struct GroupNameArgs {
    /// Resource group name.
    #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
    pub name: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `group list`.
#[derive(Debug, clap::Args)]
pub struct GroupListArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `group delete`.
#[derive(Debug, clap::Args)]
pub struct GroupDeleteArgs {
    /// Resource group name.
    #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
    pub name: String,
    /// Accepted for az compatibility; Keyless never prompts.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `/subscriptions/{s}/resourcegroups/{rg}`.
pub fn group_path(subscription: &str, name: &str) -> Result<String> {
    Ok(format!(
        "{}/{}",
        groups_path(subscription)?,
        path_segment("resource group", name)?
    ))
}

/// `/subscriptions/{s}/resourcegroups`.
pub fn groups_path(subscription: &str) -> Result<String> {
    Ok(format!(
        "/subscriptions/{}/resourcegroups",
        path_segment("subscription", subscription)?
    ))
}

/// Runs a resource group command.
pub async fn run(command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::Create(args) => {
            let session = Session::open(&args.common).await?;
            let path = group_path(&session.subscription, &args.name)?;
            let body = json!({"location": args.location, "tags": tags_json(&args.tags)});
            let created = session.arm.put(&path, API_VERSION, &body).await?;
            emit(&created, &args.common)
        }
        GroupCommand::Show(args) => {
            let session = Session::open(&args.common).await?;
            let path = group_path(&session.subscription, &args.name)?;
            let group = session.arm.get(&path, API_VERSION).await?;
            emit(&group, &args.common)
        }
        GroupCommand::List(args) => {
            let session = Session::open(&args.common).await?;
            let path = groups_path(&session.subscription)?;
            let groups = session.arm.list(&path, API_VERSION).await?;
            emit(&groups.into(), &args.common)
        }
        GroupCommand::Delete(args) => {
            let session = Session::open(&args.common).await?;
            let path = group_path(&session.subscription, &args.name)?;
            session.arm.delete(&path, API_VERSION).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            group_path("sub", "rg-1").ok().as_deref(),
            Some("/subscriptions/sub/resourcegroups/rg-1")
        );
        assert_eq!(
            groups_path("sub").ok().as_deref(),
            Some("/subscriptions/sub/resourcegroups")
        );
        assert!(group_path("sub", "..").is_err());
    }
}
