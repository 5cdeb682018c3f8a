//! `keyless imds`: the managed-identity sidecar (see the `keyless-imds` crate).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use keyless_credential::{
    CredentialOptions, TokenCache, WorkloadIdentityCredential, WorkloadIdentityOptions,
};
use keyless_imds::{Limits, Sidecar, SidecarConfig, TokenSource};

use crate::logging::{LogFormat, init_logging};

/// `keyless imds` options. Identity settings come from the environment the workload
/// identity webhook injects, unless given.
#[derive(Debug, Args)]
pub struct ImdsArgs {
    /// Address to serve on. Keep it on loopback: anyone who can reach it gets the
    /// pod's tokens.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// The identity's client id.
    #[arg(long, env = "AZURE_CLIENT_ID")]
    client_id: String,
    /// The tenant id.
    #[arg(long, env = "AZURE_TENANT_ID")]
    tenant_id: String,
    /// The projected service-account token, re-read at each exchange.
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE")]
    token_file: PathBuf,
    /// Keyless' URL (the authority host).
    #[arg(long, env = "AZURE_AUTHORITY_HOST")]
    authority_host: Option<String>,
    /// Trust only this CA for Keyless (else the system roots, which honour SSL_CERT_FILE).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// The App Service secret clients must send as X-IDENTITY-HEADER. Without it
    /// /msi/token is off. Read from the environment only, so it is not visible in the
    /// process list.
    #[arg(skip)]
    identity_header: Option<String>,
    /// Turn the IMDS path off (only /msi/token is served). Do so for hostNetwork pods,
    /// whose loopback is shared with the node: IMDS' only guard is a fixed header.
    #[arg(long)]
    no_imds: bool,
    /// Connections served at once.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
    /// Seconds a failed exchange is remembered per resource (then retried).
    #[arg(long, default_value_t = 2)]
    failure_cache_seconds: u64,
    /// Log format (stderr; filter with KEYLESS_LOG).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// Runs the sidecar until SIGTERM/SIGINT.
pub async fn run(mut args: ImdsArgs) -> Result<()> {
    init_logging(args.log_format, "info");
    args.identity_header = std::env::var("IDENTITY_HEADER")
        .ok()
        .filter(|v| !v.is_empty());
    anyhow::ensure!(
        !args.no_imds || args.identity_header.is_some(),
        "--no-imds leaves nothing to serve without IDENTITY_HEADER"
    );
    if !args.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "listening beyond loopback: anyone who can reach this address can get the pod's tokens"
        );
    }
    let cache = TokenCache::new();
    let mut options = CredentialOptions::new().token_cache(cache.clone());
    if let Some(host) = &args.authority_host {
        options = options.authority_host(host);
    }
    if let Some(ca) = &args.ca_file {
        options = options.ca_file(ca);
    }
    let credential = WorkloadIdentityCredential::new(
        WorkloadIdentityOptions::new()
            .client_id(&args.client_id)
            .tenant_id(&args.tenant_id)
            .token_file_path(&args.token_file)
            .options(options),
    )
    .context("cannot set up the workload identity credential")?;
    let tokens = TokenSource::new(
        Arc::new(credential),
        Some(cache),
        Duration::from_secs(args.failure_cache_seconds),
    );
    let sidecar = Arc::new(Sidecar::new(
        SidecarConfig {
            client_id: args.client_id.trim().to_owned(),
            identity_header: args.identity_header.clone(),
            imds: !args.no_imds,
        },
        tokens,
    ));
    let shutdown = crate::process::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        %addr,
        imds = !args.no_imds,
        app_service = args.identity_header.is_some(),
        "managed-identity endpoints up"
    );
    println!("keyless imds: ready at http://{addr}");
    let limits = Limits {
        max_connections: args.max_connections,
        ..Limits::default()
    };
    keyless_imds::serve(listener, sidecar, limits, shutdown)
        .await
        .context("serving")?;
    Ok(())
}
