//! CLI wiring of the Kubernetes side: `keyless webhook` (the admission webhook server),
//! `keyless webhook certs`, `keyless serviceaccount manifest` and `keyless jwks`. The
//! logic lives in the `keyless-webhook` crate; this module turns flags into its types.

mod certs;
mod jwks;
mod serve;
mod serviceaccount;

use anyhow::Result;
use clap::{Args, Subcommand};

pub use jwks::JwksArgs;
pub use serviceaccount::ServiceAccountCommand;

/// Options of `keyless webhook`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
    #[command(flatten)]
    server: serve::ServeArgs,
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Generate a CA and a serving certificate for the webhook's Service, write them to
    /// a directory, and print the Secret and the MutatingWebhookConfiguration (with the
    /// CA bundle filled in) as YAML for `kubectl apply -f -`.
    Certs(certs::CertsArgs),
}

/// Runs `keyless webhook` (the server, or `certs`).
pub async fn run(args: WebhookArgs) -> Result<()> {
    match args.command {
        Some(WebhookCommand::Certs(a)) => certs::run(a),
        None => serve::run(args.server).await,
    }
}

/// Runs `keyless serviceaccount ...`.
pub fn run_serviceaccount(cmd: ServiceAccountCommand) -> Result<()> {
    serviceaccount::run(cmd)
}

/// Runs `keyless jwks`.
pub fn run_jwks(args: JwksArgs) -> Result<()> {
    jwks::run(args)
}
