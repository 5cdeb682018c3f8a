//! The az-like management commands of the `keyless` binary: `group`, `identity`
//! (with `federated-credential`) and `role`.
//!
//! Every command signs in with the admin credential `keyless serve` writes to
//! `{data-dir}/admin.json`, calls the ARM-compatible management API and prints the
//! result as JSON, a table or TSV, optionally narrowed with `--query`.
//!
//! Layout: [`args`] (shared options), [`session`] (admin file, TLS trust, token),
//! [`arm_client`] (HTTP and ARM conventions), [`output`] and [`query`] (printing), and
//! one module per resource.

pub mod args;
pub mod arm_client;
pub mod assignee_trust;
pub mod ci_presets;
pub mod federated_credential;
pub mod group;
pub mod identity;
pub mod output;
pub mod query;
pub mod role;
pub mod role_lookup;
pub mod session;
pub mod terminal;

/// The management subcommands, flattened into the binary's top-level command.
///
/// Variants are boxed so the binary's command enum stays small whatever its other
/// variants hold (clippy's `large_enum_variant`).
#[derive(Debug, clap::Subcommand)]
pub enum ManageCommand {
    /// Manage resource groups.
    #[command(subcommand)]
    Group(Box<group::GroupCommand>),
    /// Manage user-assigned identities and their federated credentials.
    #[command(subcommand)]
    Identity(Box<identity::IdentityCommand>),
    /// Manage role assignments and look up role definitions.
    #[command(subcommand)]
    Role(Box<role::RoleCommand>),
}

/// Runs one management command against the server named by the admin file.
pub async fn run(command: ManageCommand) -> anyhow::Result<()> {
    match command {
        ManageCommand::Group(command) => group::run(*command).await,
        ManageCommand::Identity(command) => identity::run(*command).await,
        ManageCommand::Role(command) => role::run(*command).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};
    use serde_json::json;

    use super::federated_credential::{FederatedCredentialCommand, credential_body};
    use super::group::GroupCommand;
    use super::identity::IdentityCommand;
    use super::output::OutputFormat;
    use super::role::{AssignmentCommand, PrincipalType, RoleCommand};
    use super::*;

    /// Stands in for the binary's top-level parser, which flattens `ManageCommand`.
    #[derive(Debug, Parser)]
    #[command(name = "keyless")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        Serve,
        #[command(flatten)]
        Manage(ManageCommand),
    }

    /// `ManageCommand` unboxed, so tests can match on nested variants.
    #[derive(Debug)]
    enum Parsed {
        Group(GroupCommand),
        Identity(IdentityCommand),
        Role(RoleCommand),
    }

    fn parse(args: &[&str]) -> Parsed {
        let argv = std::iter::once("keyless").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Manage(command),
            }) => match command {
                ManageCommand::Group(c) => Parsed::Group(*c),
                ManageCommand::Identity(c) => Parsed::Identity(*c),
                ManageCommand::Role(c) => Parsed::Role(*c),
            },
            Ok(other) => unreachable!("parsed as {other:?}"),
            Err(e) => unreachable!("{args:?}: {e}"),
        }
    }

    fn rejects(args: &[&str]) -> String {
        let argv = std::iter::once("keyless").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => unreachable!("{args:?} should not parse: {cli:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seed_flow_commands_parse() {
        let Parsed::Group(GroupCommand::Create(group)) = parse(&[
            "group", "create", "--name", "rg", "--tags", "env=dev", "team",
        ]) else {
            unreachable!()
        };
        assert_eq!(group.name, "rg");
        assert_eq!(group.location, "local");
        assert_eq!(group.tags.len(), 2);

        let Parsed::Identity(IdentityCommand::Show(show)) = parse(&[
            "identity",
            "show",
            "--name",
            "app",
            "--resource-group",
            "rg",
            "--query",
            "clientId",
            "-o",
            "tsv",
        ]) else {
            unreachable!()
        };
        assert_eq!(
            (show.name.as_str(), show.resource_group.as_str()),
            ("app", "rg")
        );
        assert_eq!(show.common.output, OutputFormat::Tsv);
        assert_eq!(
            show.common.query.map(|q| q.to_string()).as_deref(),
            Some("clientId")
        );

        let Parsed::Identity(IdentityCommand::List(list)) = parse(&["identity", "list"]) else {
            unreachable!()
        };
        assert_eq!(list.resource_group, None);
        assert_eq!(list.common.output, OutputFormat::Json);
    }

    #[test]
    fn az_short_flags_work() {
        let Parsed::Identity(IdentityCommand::Delete(args)) = parse(&[
            "identity",
            "delete",
            "-n",
            "app",
            "-g",
            "rg",
            "--admin-file",
            "/tmp/a.json",
        ]) else {
            unreachable!()
        };
        assert_eq!(args.name, "app");
        assert_eq!(
            args.common.admin_file.as_deref(),
            Some(std::path::Path::new("/tmp/a.json"))
        );

        let Parsed::Group(GroupCommand::Show(args)) = parse(&["group", "show", "-g", "rg"]) else {
            unreachable!()
        };
        assert_eq!(args.name, "rg");
        let Parsed::Group(GroupCommand::Delete(args)) =
            parse(&["group", "delete", "--resource-group", "rg", "--yes"])
        else {
            unreachable!()
        };
        assert_eq!(args.name, "rg");
    }

    #[test]
    fn federated_credential_with_subject_defaults_the_audience() {
        let Parsed::Identity(IdentityCommand::FederatedCredential(
            FederatedCredentialCommand::Create(args),
        )) = parse(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "app",
            "--resource-group",
            "rg",
            "--name",
            "k8s",
            "--issuer",
            "https://issuer.test",
            "--subject",
            "system:serviceaccount:default:app",
        ])
        else {
            unreachable!()
        };
        assert_eq!(
            credential_body(&args).unwrap().0,
            json!({"properties": {
                "issuer": "https://issuer.test",
                "subject": "system:serviceaccount:default:app",
                "audiences": ["api://AzureADTokenExchange"],
            }})
        );
    }

    #[test]
    fn federated_credential_with_an_expression() {
        let Parsed::Identity(IdentityCommand::FederatedCredential(
            FederatedCredentialCommand::Create(args),
        )) = parse(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "app",
            "-g",
            "rg",
            "-n",
            "gh",
            "--issuer",
            "https://token.actions.githubusercontent.com",
            "--claims-matching-expression",
            "claims['sub'] matches 'repo:org/*'",
            "--audiences",
            "api://custom",
        ])
        else {
            unreachable!()
        };
        assert_eq!(
            credential_body(&args).unwrap().0,
            json!({"properties": {
                "issuer": "https://token.actions.githubusercontent.com",
                "claimsMatchingExpression": {"value": "claims['sub'] matches 'repo:org/*'", "languageVersion": 1},
                "audiences": ["api://custom"],
            }})
        );
    }

    #[test]
    fn federated_credential_needs_exactly_one_of_subject_or_expression() {
        let base = [
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "app",
            "-g",
            "rg",
            "-n",
            "x",
            "--issuer",
            "https://i.test",
        ];
        rejects(&base);
        let mut both = base.to_vec();
        both.extend(["--subject", "s", "--claims-matching-expression", "e"]);
        rejects(&both);
    }

    #[test]
    fn federated_credential_show_list_delete_parse() {
        for verb in ["show", "delete"] {
            let cmd = parse(&[
                "identity",
                "federated-credential",
                verb,
                "--identity-name",
                "app",
                "-g",
                "rg",
                "--name",
                "k8s",
            ]);
            assert!(matches!(
                cmd,
                Parsed::Identity(IdentityCommand::FederatedCredential(_))
            ));
        }
        let cmd = parse(&[
            "identity",
            "federated-credential",
            "list",
            "--identity-name",
            "app",
            "-g",
            "rg",
        ]);
        assert!(matches!(
            cmd,
            Parsed::Identity(IdentityCommand::FederatedCredential(
                FederatedCredentialCommand::List(_)
            ))
        ));
    }

    #[test]
    fn role_assignment_create_parses() {
        let Parsed::Role(RoleCommand::Assignment(AssignmentCommand::Create(args))) = parse(&[
            "role",
            "assignment",
            "create",
            "--role",
            "Key Vault Secrets User",
            "--assignee-object-id",
            "4633458b-17de-408a-b874-0445c86b69e6",
            "--assignee-principal-type",
            "serviceprincipal",
            "--scope",
            "/subscriptions/s/resourceGroups/rg",
        ]) else {
            unreachable!()
        };
        assert_eq!(args.role, "Key Vault Secrets User");
        assert_eq!(
            args.assignee_principal_type,
            PrincipalType::ServicePrincipal
        );

        let msg = rejects(&[
            "role",
            "assignment",
            "create",
            "--role",
            "Reader",
            "--assignee-object-id",
            "app",
            "--scope",
            "/subscriptions/s",
        ]);
        assert!(msg.contains("not an object id"), "{msg}");
    }

    #[test]
    fn role_assignment_delete_needs_a_target() {
        rejects(&["role", "assignment", "delete"]);
        rejects(&[
            "role",
            "assignment",
            "delete",
            "--ids",
            "/x",
            "--scope",
            "/subscriptions/s",
        ]);
        let cmd = parse(&["role", "assignment", "delete", "--ids", "/a", "/b"]);
        let Parsed::Role(RoleCommand::Assignment(AssignmentCommand::Delete(args))) = cmd else {
            unreachable!()
        };
        assert_eq!(args.ids, vec!["/a".to_owned(), "/b".to_owned()]);
        parse(&[
            "role",
            "assignment",
            "delete",
            "--assignee",
            "4633458b-17de-408a-b874-0445c86b69e6",
            "--role",
            "Reader",
        ]);
    }

    #[test]
    fn bad_queries_and_outputs_are_rejected_at_parse_time() {
        let msg = rejects(&["group", "list", "--query", "[?name=='x']"]);
        assert!(msg.contains("not supported"), "{msg}");
        rejects(&["group", "list", "-o", "yaml"]);
    }
}
