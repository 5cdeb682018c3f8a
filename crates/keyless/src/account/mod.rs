//! Token workflows of the CLI, as az has them: `keyless login` / `logout` /
//! `account show` / `account get-access-token`, and `keyless token get` / `token decode`.
//!
//! Layout: [`session`] (the signed-in account on disk, and the credential it makes),
//! [`login`], [`tokens`] (get-access-token, token get), [`decode`] (offline decoding and
//! `--verify`), [`times`] (dates and "expires in ..." text).
//!
//! The session lives in a per-user directory, `$KEYLESS_CONFIG_DIR` or `~/.keyless/`
//! (mode 0700): `profile.json` (who, where; no secrets) and `credentials.json` (the
//! secret or federated token given at login), both mode 0600. Access tokens are never
//! written to disk: each command gets a fresh one.

pub mod decode;
pub mod login;
pub mod session;
pub mod times;
pub mod tokens;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::manage::args::CommonArgs;
use crate::manage::output::{OutputFormat, emit};
use crate::manage::query::Query;

/// `--output` and `--query`, as on every az command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global Options")]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,
    /// Take one value out of the result, e.g. `accessToken` or `user.name` (a small
    /// JMESPath subset).
    #[arg(long, value_name = "PATH", value_parser = Query::parse)]
    pub query: Option<Query>,
}

impl OutputArgs {
    /// Prints `value` in the chosen format.
    pub fn emit(&self, value: &serde_json::Value) -> Result<()> {
        emit(
            value,
            &CommonArgs {
                admin_file: None,
                subscription: None,
                output: self.output,
                query: self.query.clone(),
            },
        )
    }
}

/// `keyless login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Sign in as a service principal or workload identity: the only kind of sign-in
    /// Keyless has (required, as with az).
    #[arg(long)]
    pub service_principal: bool,
    /// The identity's client (application) id.
    #[arg(short = 'u', long = "username", value_name = "CLIENT_ID")]
    pub username: String,
    /// The tenant (directory) id.
    #[arg(short = 't', long, value_name = "TENANT_ID")]
    pub tenant: String,
    /// A federated token (a JWT the identity's federated credential trusts), or @FILE
    /// to read it from FILE whenever a token is needed — so a rotated projected token
    /// file keeps the session working.
    #[arg(
        long,
        value_name = "TOKEN|@FILE",
        required_unless_present = "password",
        conflicts_with = "password"
    )]
    pub federated_token: Option<String>,
    /// The client secret, or @FILE to read it from FILE (keeps it out of the shell
    /// history and the process list).
    #[arg(short = 'p', long, value_name = "SECRET|@FILE")]
    pub password: Option<String>,
    /// Token service [default: $AZURE_AUTHORITY_HOST, else the admin file's
    /// authorityHost when there is one, else https://login.microsoftonline.com].
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
    /// PEM CA certificate the token service's certificate is checked against
    /// [default: the admin file's caFile when signing in to its server, else the
    /// system roots (which honour SSL_CERT_FILE)].
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Admin file of a local `keyless serve`, used only for the defaults above
    /// [default: $KEYLESS_DATA_DIR/admin.json, else ./keyless-data/admin.json, if present].
    #[arg(long, env = "KEYLESS_ADMIN_FILE", value_name = "PATH")]
    pub admin_file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `keyless logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {}

/// `keyless account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Show the signed-in account (never its secret).
    Show(ShowArgs),
    /// Get an access token for the signed-in account, as az prints it.
    GetAccessToken(GetAccessTokenArgs),
}

/// `keyless account show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Which resource a token is for.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The resource (audience), e.g. https://vault.azure.net; the scope asked for is
    /// RESOURCE/.default [default: the account's resource manager].
    #[arg(long, value_name = "URL", conflicts_with = "scope")]
    pub resource: Option<String>,
    /// The scope, e.g. https://vault.azure.net/.default.
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
}

/// `keyless account get-access-token`.
#[derive(Debug, Args)]
pub struct GetAccessTokenArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Subscription to report in the output [default: the account's].
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `keyless token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print an access token for the signed-in account, and nothing else (for scripts:
    /// `curl -H "Authorization: Bearer $(keyless token get --resource ...)"`).
    Get(TokenGetArgs),
    /// Decode a JWT offline: header and claims, times as dates with "expires in ...";
    /// nothing is sent anywhere unless --verify is given.
    Decode(decode::DecodeArgs),
}

/// `keyless token get`.
#[derive(Debug, Args)]
pub struct TokenGetArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Runs `keyless login`.
pub async fn run_login(args: LoginArgs) -> Result<()> {
    login::run(args).await
}

/// Runs `keyless logout`.
pub async fn run_logout(_args: LogoutArgs) -> Result<()> {
    session::logout()
}

/// Runs `keyless account ...`.
pub async fn run_account(command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::Show(args) => {
            let session = session::Session::load()?;
            args.output.emit(&session.account_json())
        }
        AccountCommand::GetAccessToken(args) => tokens::get_access_token(args).await,
    }
}

/// Runs `keyless token ...`.
pub async fn run_token(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Get(args) => tokens::token_get(args).await,
        TokenCommand::Decode(args) => decode::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    #[command(name = "keyless")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        Login(Box<LoginArgs>),
        Logout(LogoutArgs),
        #[command(subcommand)]
        Account(AccountCommand),
        #[command(subcommand)]
        Token(TokenCommand),
    }

    fn parse(args: &[&str]) -> Result<Command, String> {
        Cli::try_parse_from(std::iter::once("keyless").chain(args.iter().copied()))
            .map(|c| c.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn login_takes_az_flags_and_needs_exactly_one_credential() {
        let Ok(Command::Login(l)) = parse(&[
            "login",
            "--service-principal",
            "-u",
            "client",
            "-t",
            "tenant",
            "--federated-token",
            "@/var/run/token",
        ]) else {
            unreachable!()
        };
        assert!(l.service_principal);
        assert_eq!(
            (l.username.as_str(), l.tenant.as_str()),
            ("client", "tenant")
        );
        assert_eq!(l.federated_token.as_deref(), Some("@/var/run/token"));
        assert!(parse(&["login", "--service-principal", "-u", "c", "-t", "t"]).is_err());
        assert!(
            parse(&[
                "login",
                "--service-principal",
                "-u",
                "c",
                "-t",
                "t",
                "-p",
                "s",
                "--federated-token",
                "x"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "login",
                "--service-principal",
                "-u",
                "c",
                "-t",
                "t",
                "-p",
                "@s"
            ])
            .is_ok()
        );
    }

    #[test]
    fn token_commands_parse() {
        let Ok(Command::Account(AccountCommand::GetAccessToken(a))) = parse(&[
            "account",
            "get-access-token",
            "--resource",
            "https://vault.azure.net",
            "-o",
            "json",
        ]) else {
            unreachable!()
        };
        assert_eq!(
            a.target.resource.as_deref(),
            Some("https://vault.azure.net")
        );
        assert!(
            parse(&["token", "get", "--resource", "r", "--scope", "s"]).is_err(),
            "resource and scope are exclusive"
        );
        let Ok(Command::Token(TokenCommand::Decode(d))) =
            parse(&["token", "decode", "-", "--verify"])
        else {
            unreachable!()
        };
        assert!(d.verify);
        assert_eq!(d.token.as_deref(), Some("-"));
    }
}
