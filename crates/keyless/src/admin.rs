//! `keyless admin`: operator actions on a server's own data directory and database.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Subcommand;
use keyless_tls::files::write_private;

use crate::serve::{AdminFile, load_kek, open_store};

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Give the bootstrap admin a new client secret (when admin.json was lost or the
    /// secret leaked). Writes it to `{data-dir}/admin.json` (mode 0600), or prints it
    /// once when there is no admin.json to update. The old secret stops working at once
    /// on a PostgreSQL deployment and within the resync interval (30 s) on SQLite.
    ResetSecret {
        /// The server's data directory (its key-encryption key proves this is the
        /// database it belongs to).
        #[arg(long, env = "KEYLESS_DATA_DIR", default_value = "./keyless-data")]
        data_dir: PathBuf,
        /// The server's database URL, when not SQLite in the data directory.
        #[arg(long, env = "KEYLESS_DATABASE_URL")]
        database_url: Option<String>,
    },
}

/// Runs an admin command.
pub async fn run(cmd: AdminCommand) -> Result<()> {
    let AdminCommand::ResetSecret {
        data_dir,
        database_url,
    } = cmd;
    let kek = load_kek(&data_dir)?;
    let store = open_store(database_url.as_deref(), &data_dir).await?;
    match store.meta_get("kek_fingerprint").await? {
        Some(fp) if fp == kek.fingerprint() => {}
        Some(_) => bail!(
            "the key-encryption key in {} does not belong to this database",
            data_dir.display()
        ),
        None => bail!("this database was never started by keyless serve"),
    }
    let client_id = store
        .meta_get("bootstrap_admin_client")
        .await?
        .context("this database has no bootstrap admin")?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(keyless_jose::random_bytes::<32>()?);
    if !store
        .set_service_principal_secret(&client_id, &keyless_jose::hash_secret(&secret))
        .await?
    {
        bail!("the bootstrap admin {client_id} no longer exists");
    }
    let path = data_dir.join("admin.json");
    match std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<AdminFile>(&b).ok())
    {
        Some(mut file) if file.client_id == client_id => {
            file.client_secret = secret;
            write_private(&path, &serde_json::to_vec_pretty(&file)?)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("new admin secret written to {}", path.display());
        }
        _ => {
            // Nothing to update: show it once, as a new credential is shown.
            println!("{{\"clientId\": \"{client_id}\", \"clientSecret\": \"{secret}\"}}");
            eprintln!("store this secret now: it is not shown again");
        }
    }
    Ok(())
}
