//! `keyless`: the Keyless server and command-line tool.

mod account;
mod admin;
mod az_config;
mod console;
mod demo;
mod dev_cluster;
mod imds;
mod keys;
mod keyvault;
mod logging;
mod manage;
mod process;
mod serve;
mod trust;
mod webhook_cli;

use clap::{Parser, Subcommand};

/// Keyless: self-hosted workload identity federation, compatible with Entra ID and
/// Azure Key Vault clients.
#[derive(Debug, Parser)]
#[command(name = "keyless", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the all-in-one server (token service, management API, vaults) over HTTPS.
    Serve(Box<serve::ServeArgs>),
    /// Run the whole story on this machine: cluster issuer, Keyless, identity,
    /// federated credential, vault, secret, role — and a workload reading the secret.
    Demo(demo::DemoArgs),
    /// Operator actions on the server's own data (e.g. a new admin secret).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Manage Keyless' own token signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Vaults and their secrets (like `az keyvault`).
    #[command(subcommand)]
    Keyvault(keyvault::KeyvaultCommand),
    /// Issuers trusted through a static JWKS (private and air-gapped clusters).
    #[command(subcommand)]
    Issuer(trust::IssuerCommand),
    /// The sign-in log of token requests.
    #[command(subcommand, name = "signin-log")]
    SigninLog(trust::SigninLogCommand),
    /// Explain, check by check, whether a token would be exchanged for an identity.
    Explain(Box<trust::ExplainArgs>),
    /// Run a stand-in Kubernetes service-account token issuer (discovery, JWKS, projected token files) for local use and tests.
    DevCluster(Box<dev_cluster::DevClusterArgs>),
    /// Run the Kubernetes mutating admission webhook (azure.workload.identity
    /// compatible), or generate its certificates (`webhook certs`).
    Webhook(Box<webhook_cli::WebhookArgs>),
    /// Serve managed-identity endpoints (Azure IMDS and App Service) in a pod, with
    /// tokens from the workload identity environment: for apps that use
    /// ManagedIdentityCredential, az login --identity and other IMDS clients.
    Imds(Box<imds::ImdsArgs>),
    /// Kubernetes ServiceAccounts for workload identity.
    #[command(subcommand, name = "serviceaccount")]
    Serviceaccount(webhook_cli::ServiceAccountCommand),
    /// Print a JWKS (Kubernetes key ids) for a cluster's service-account signing keys.
    Jwks(webhook_cli::JwksArgs),
    /// Sign in as a service principal or workload identity (like `az login
    /// --service-principal`, with --federated-token or --password).
    Login(Box<account::LoginArgs>),
    /// Forget the signed-in account.
    Logout(account::LogoutArgs),
    /// The signed-in account and its access tokens (like `az account`).
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Access tokens for scripts (`token get`), and decoding tokens offline
    /// (`token decode`, with `--verify` to check the signature).
    #[command(subcommand)]
    Token(account::TokenCommand),
    /// Print the Azure CLI set-up for a running server: CA trust, `az cloud register`,
    /// instance discovery off, and the sign-in command.
    AzConfig(Box<az_config::AzConfigArgs>),
    /// Open the web console: a local page (loopback only, per-launch secret) showing
    /// identities, credentials, roles, vaults and the sign-in log.
    Console(Box<console::ConsoleArgs>),
    #[command(flatten)]
    Manage(manage::ManageCommand),
}

fn main() -> std::process::ExitCode {
    // One crypto provider for the whole process: aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Admin(cmd) => admin::run(cmd).await,
            Command::Keys(cmd) => keys::run(cmd).await,
            Command::Demo(args) => demo::run(args).await,
            Command::DevCluster(args) => dev_cluster::run(*args).await,
            Command::Keyvault(cmd) => keyvault::run(cmd).await,
            Command::Issuer(cmd) => trust::run_issuer(cmd).await,
            Command::SigninLog(cmd) => trust::run_signin_log(cmd).await,
            Command::Explain(args) => trust::run_explain(*args).await,
            Command::Webhook(args) => webhook_cli::run(*args).await,
            Command::Imds(args) => imds::run(*args).await,
            Command::Serviceaccount(cmd) => webhook_cli::run_serviceaccount(cmd),
            Command::Jwks(args) => webhook_cli::run_jwks(args),
            Command::Login(args) => account::run_login(*args).await,
            Command::Logout(args) => account::run_logout(args).await,
            Command::Account(cmd) => account::run_account(cmd).await,
            Command::Token(cmd) => account::run_token(cmd).await,
            Command::AzConfig(args) => az_config::run(*args).await,
            Command::Console(args) => console::run(*args).await,
            Command::Manage(cmd) => manage::run(cmd).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
