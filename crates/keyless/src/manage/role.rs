//! `keyless role ...`: role definitions and role assignments.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use uuid::Uuid;

use super::args::CommonArgs;
use super::arm_client::{normalize_scope, subscription_of_scope};
use super::assignee_trust::warn_about_federated_trust;
use super::output::emit;
use super::role_lookup::{
    AssignmentFilter, ROLE_ASSIGNMENTS, ROLE_DEFINITIONS, RoleRef, definition_guid,
    definition_matches, find_definition, guid_of_id, role_definition_id,
};
use super::session::Session;

/// api-version sent for role definitions and assignments.
pub const API_VERSION: &str = "2022-04-01";

/// Role commands.
#[derive(Debug, clap::Subcommand)]
pub enum RoleCommand {
    /// Grant, list and revoke roles.
    #[command(subcommand)]
    Assignment(AssignmentCommand),
    /// Look up role definitions.
    #[command(subcommand)]
    Definition(DefinitionCommand),
}

/// Role assignment commands.
#[derive(Debug, clap::Subcommand)]
pub enum AssignmentCommand {
    /// Grant a role to a principal at a scope.
    Create(AssignmentCreateArgs),
    /// List role assignments at a scope.
    List(AssignmentListArgs),
    /// Revoke role assignments.
    Delete(AssignmentDeleteArgs),
}

/// Role definition commands.
#[derive(Debug, clap::Subcommand)]
pub enum DefinitionCommand {
    /// List role definitions.
    List(DefinitionListArgs),
}

/// The kinds of principal a role can be assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrincipalType {
    /// An application or managed identity.
    #[value(name = "ServicePrincipal")]
    ServicePrincipal,
    /// A user.
    #[value(name = "User")]
    User,
    /// A group.
    #[value(name = "Group")]
    Group,
}

impl PrincipalType {
    /// The ARM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServicePrincipal => "ServicePrincipal",
            Self::User => "User",
            Self::Group => "Group",
        }
    }
}

/// Arguments of `role assignment create`.
#[derive(Debug, clap::Args)]
pub struct AssignmentCreateArgs {
    /// Role name (e.g. "Key Vault Secrets User"), role GUID or full role definition id.
    #[arg(long)]
    pub role: String,
    /// Object id (principalId) of the identity or principal to grant the role to.
    #[arg(long, value_parser = parse_object_id, value_name = "OBJECT_ID")]
    pub assignee_object_id: String,
    /// Kind of principal.
    #[arg(long, value_enum, ignore_case = true, default_value_t = PrincipalType::ServicePrincipal)]
    pub assignee_principal_type: PrincipalType,
    /// Where the role applies, and everything below it: /subscriptions/ID[/resourceGroups/RG[/providers/...]].
    #[arg(long)]
    pub scope: String,
    /// Name (GUID) of the new assignment [default: a random GUID].
    #[arg(long)]
    pub name: Option<Uuid>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `role assignment list`.
#[derive(Debug, clap::Args)]
pub struct AssignmentListArgs {
    /// Scope to list at [default: the subscription].
    #[arg(long)]
    pub scope: Option<String>,
    /// Only assignments of this principal (object id).
    #[arg(long, value_parser = parse_object_id, value_name = "OBJECT_ID")]
    pub assignee: Option<String>,
    /// Only assignments of this role (name, GUID or id).
    #[arg(long)]
    pub role: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `role assignment delete`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "name", "assignee"])))]
pub struct AssignmentDeleteArgs {
    /// Full ids of the assignments to delete.
    #[arg(long, num_args = 1.., conflicts_with_all = ["scope", "name", "assignee", "role"])]
    pub ids: Vec<String>,
    /// Name (GUID) of the assignment, at --scope.
    #[arg(long, conflicts_with = "assignee")]
    pub name: Option<Uuid>,
    /// Delete this principal's assignments made exactly at --scope.
    #[arg(long, value_parser = parse_object_id, value_name = "OBJECT_ID")]
    pub assignee: Option<String>,
    /// With --assignee: only assignments of this role.
    #[arg(long, requires = "assignee")]
    pub role: Option<String>,
    /// Scope of the assignments [default: the subscription].
    #[arg(long)]
    pub scope: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `role definition list`.
#[derive(Debug, clap::Args)]
pub struct DefinitionListArgs {
    /// Scope to list at [default: the subscription].
    #[arg(long)]
    pub scope: Option<String>,
    /// Only the role with this name or GUID.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Object ids are GUIDs; saying so here beats a 400 from the server, and tells users
/// that names are not looked up.
fn parse_object_id(raw: &str) -> Result<String, String> {
    Uuid::parse_str(raw.trim())
        .map(|_| raw.trim().to_owned())
        .map_err(|_| {
            format!(
                "'{raw}' is not an object id (a GUID); use the identity's principalId, \
                 e.g. from `keyless identity show ... --query principalId -o tsv`"
            )
        })
}

/// Runs a role command.
pub async fn run(command: RoleCommand) -> Result<()> {
    match command {
        RoleCommand::Assignment(AssignmentCommand::Create(args)) => create_assignment(args).await,
        RoleCommand::Assignment(AssignmentCommand::List(args)) => list_assignments(args).await,
        RoleCommand::Assignment(AssignmentCommand::Delete(args)) => delete_assignments(args).await,
        RoleCommand::Definition(DefinitionCommand::List(args)) => list_definitions(args).await,
    }
}

/// `--scope`, or the session's subscription.
fn scope_or_subscription(scope: Option<&str>, session: &Session) -> Result<String> {
    match scope {
        Some(scope) => normalize_scope(scope),
        None => normalize_scope(&format!("/subscriptions/{}", session.subscription)),
    }
}

/// Turns `--role` into the `roleDefinitionId` to send: ids as is, GUIDs under the
/// scope's subscription, names looked up among the definitions visible at the scope.
async fn resolve_role(session: &Session, scope: &str, role: &str) -> Result<String> {
    let subscription = subscription_of_scope(scope).unwrap_or(&session.subscription);
    match RoleRef::parse(role) {
        RoleRef::Id(id) => Ok(id),
        RoleRef::Guid(guid) => Ok(role_definition_id(subscription, &guid.to_string())),
        RoleRef::Name(name) => {
            let definitions = session
                .arm
                .list(&format!("{scope}{ROLE_DEFINITIONS}"), API_VERSION)
                .await
                .context("listing role definitions to resolve --role")?;
            let definition = find_definition(&definitions, &name)?;
            let Some(guid) = definition_guid(definition) else {
                bail!("the server's definition of role '{name}' has no name or id");
            };
            Ok(role_definition_id(subscription, guid))
        }
    }
}

async fn create_assignment(args: AssignmentCreateArgs) -> Result<()> {
    let scope = normalize_scope(&args.scope)?;
    let session = Session::open(&args.common).await?;
    let role_definition_id = resolve_role(&session, &scope, &args.role).await?;
    let name = args.name.unwrap_or_else(Uuid::new_v4);
    let body = json!({
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": args.assignee_object_id,
            "principalType": args.assignee_principal_type.as_str(),
        }
    });
    let path = format!("{scope}{ROLE_ASSIGNMENTS}/{name}");
    let assignment = session.arm.put(&path, API_VERSION, &body).await?;
    warn_about_federated_trust(&session, &args.assignee_object_id, &args.role, &scope).await;
    emit(&assignment, &args.common)
}

async fn list_assignments(args: AssignmentListArgs) -> Result<()> {
    let session = Session::open(&args.common).await?;
    let scope = scope_or_subscription(args.scope.as_deref(), &session)?;
    let role_id = match &args.role {
        Some(role) => Some(resolve_role(&session, &scope, role).await?),
        None => None,
    };
    let filter = AssignmentFilter {
        principal: args.assignee.as_deref(),
        role_guid: role_id.as_deref().and_then(guid_of_id),
        exact_scope: None,
    };
    // Filtered here rather than with $filter so any server's answer is narrowed the
    // same way.
    let assignments: Vec<Value> = session
        .arm
        .list(&format!("{scope}{ROLE_ASSIGNMENTS}"), API_VERSION)
        .await?
        .into_iter()
        .filter(|a| filter.accepts(a))
        .collect();
    emit(&assignments.into(), &args.common)
}

async fn delete_assignments(args: AssignmentDeleteArgs) -> Result<()> {
    let session = Session::open(&args.common).await?;
    let ids: Vec<String> = if !args.ids.is_empty() {
        args.ids
            .iter()
            .map(|id| normalize_scope(id))
            .collect::<Result<_>>()?
    } else {
        let scope = scope_or_subscription(args.scope.as_deref(), &session)?;
        match (args.name, &args.assignee) {
            (Some(name), _) => vec![format!("{scope}{ROLE_ASSIGNMENTS}/{name}")],
            (None, Some(assignee)) => {
                let role_id = match &args.role {
                    Some(role) => Some(resolve_role(&session, &scope, role).await?),
                    None => None,
                };
                let filter = AssignmentFilter {
                    principal: Some(assignee),
                    role_guid: role_id.as_deref().and_then(guid_of_id),
                    // Like az: revoke what was granted here, not what is inherited.
                    exact_scope: Some(&scope),
                };
                let ids: Vec<String> = session
                    .arm
                    .list(&format!("{scope}{ROLE_ASSIGNMENTS}"), API_VERSION)
                    .await?
                    .iter()
                    .filter(|a| filter.accepts(a))
                    .filter_map(|a| a.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                if ids.is_empty() {
                    eprintln!("No matching role assignments at {scope}; nothing deleted.");
                }
                ids
            }
            (None, None) => bail!("give --ids, --name (with --scope) or --assignee"),
        }
    };
    for id in ids {
        session.arm.delete(&id, API_VERSION).await?;
    }
    Ok(())
}

async fn list_definitions(args: DefinitionListArgs) -> Result<()> {
    let session = Session::open(&args.common).await?;
    let scope = scope_or_subscription(args.scope.as_deref(), &session)?;
    let definitions: Vec<Value> = session
        .arm
        .list(&format!("{scope}{ROLE_DEFINITIONS}"), API_VERSION)
        .await?
        .into_iter()
        .filter(|d| {
            args.name
                .as_deref()
                .is_none_or(|name| definition_matches(d, name))
        })
        .collect();
    emit(&definitions.into(), &args.common)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_must_be_guids() {
        assert!(parse_object_id("4633458b-17de-408a-b874-0445c86b69e6").is_ok());
        let Err(msg) = parse_object_id("my-app") else {
            unreachable!("should fail")
        };
        assert!(msg.contains("principalId"), "{msg}");
    }

    #[test]
    fn principal_types_use_arm_spelling() {
        assert_eq!(PrincipalType::ServicePrincipal.as_str(), "ServicePrincipal");
        assert_eq!(PrincipalType::User.as_str(), "User");
        assert_eq!(PrincipalType::Group.as_str(), "Group");
    }
}
