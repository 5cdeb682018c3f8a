//! `keyless jwks --public-key FILE...`: a JWKS with Kubernetes key ids.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use keyless_jose::JwkSet;
use keyless_tls::files::write_public;

/// Options of `keyless jwks`.
#[derive(Debug, Args)]
pub struct JwksArgs {
    /// PEM file with a public or private key (RSA, ECDSA P-256/384/521); repeat for
    /// several (e.g. the old and new keys during a rotation). Private keys are read for
    /// their public half only.
    #[arg(long = "public-key", value_name = "FILE", required = true)]
    public_keys: Vec<PathBuf>,
    /// Write the JWKS to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
}

/// Runs `keyless jwks`.
pub fn run(args: JwksArgs) -> Result<()> {
    let mut keys = Vec::new();
    for path in &args.public_keys {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let jwks = keyless_webhook::jwks::jwks_from_pem(&pem)
            .with_context(|| format!("{}", path.display()))?;
        for jwk in jwks {
            // The same key given twice (say, as private and public file) is listed once.
            if !keys.contains(&jwk) {
                keys.push(jwk);
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&JwkSet { keys })?;
    text.push('\n');
    match &args.output_file {
        Some(path) => write_public(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}
