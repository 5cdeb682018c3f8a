//! `keyless keys`: Keyless' own token signing keys.

use anyhow::Result;
use clap::Subcommand;

use crate::manage::args::CommonArgs;
use crate::manage::session::Session;

/// Signing key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the tenant's token signing key: the new key is published in the JWKS at
    /// once and signs after the pre-publication window; the old key stays published
    /// until every token it signed has expired.
    Rotate {
        /// Seconds the new key is published before it signs (default: the server's
        /// setting).
        #[arg(long)]
        prepublish_seconds: Option<u32>,
        /// Switch the tenant's signing algorithm (ES256, ES384, RS256, PS256, EdDSA);
        /// later rotations keep it.
        #[arg(long)]
        alg: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Runs a keys command.
pub async fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Rotate {
            prepublish_seconds,
            alg,
            common,
        } => {
            let session = Session::open(&common).await?;
            let prepublish = prepublish_seconds.map(|p| p.to_string());
            let query: Vec<(&str, &str)> = prepublish
                .as_deref()
                .map(|p| ("prepublishSeconds", p))
                .into_iter()
                .chain(alg.as_deref().map(|a| ("alg", a)))
                .collect();
            let result = session
                .arm
                .send(
                    reqwest::Method::POST,
                    "/providers/Keyless/signingKeys/rotate",
                    "2024-01-01",
                    &query,
                    Some(&serde_json::json!({})),
                )
                .await?;
            crate::manage::output::emit(&result, &common)?;
            Ok(())
        }
    }
}
