//! `keyless dev-cluster`: a stand-in Kubernetes service-account token issuer for local
//! use and CI. It serves OIDC discovery and a JWKS over HTTPS, signs RS256 tokens
//! with the kube-apiserver's key id convention and claim layout, projects them into
//! files like the kubelet, and rotates its signing key with overlap.
//!
//! Data directory (`--data-dir`):
//!
//! | file | what |
//! |---|---|
//! | `issuer-state.json` | signing keys (PKCS#8 PEM), uid seed, last issuer URL; mode 0600 ([`state`]) |
//! | `ca.pem`, `ca-key.pem` | the dev cluster's own local CA: trust `ca.pem` (key 0600) |
//! | `server.pem`, `server-key.pem` | its HTTPS certificate (key 0600) |
//!
//! Service-account and pod uids are derived, not stored: see
//! [`Issuer::object_uid`](issuer::Issuer::object_uid).

mod cluster;
mod issuer;
mod projector;
mod server;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::process::{absolute, private_data_dir, shutdown_signal};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use keyless_core::{Clock, SystemClock};

use crate::logging::{LogFormat, init_logging};
use cluster::DevCluster;
use issuer::{DEFAULT_AUDIENCE, MAX_TOKEN_EXPIRATION, MIN_TOKEN_EXPIRATION, TokenRequest};
use projector::Projector;

/// Options of `keyless dev-cluster`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevClusterArgs {
    #[command(subcommand)]
    command: Option<DevClusterCommand>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Subcommand)]
enum DevClusterCommand {
    /// Print a service-account token signed with the stored current key, without a
    /// running server (for scripts).
    Mint(MintArgs),
}

/// What the issued tokens are for; shared by the server's token files, its `/mint`
/// defaults, and `dev-cluster mint`.
#[derive(Debug, Args)]
struct TokenArgs {
    /// Namespace of the service account.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Service account name (`sub` is `system:serviceaccount:<namespace>:<name>`).
    #[arg(long, default_value = "workload-identity-sa")]
    service_account: String,
    /// Audience (`aud`); repeat for several.
    #[arg(long = "audience", value_name = "AUD", default_value = DEFAULT_AUDIENCE)]
    audiences: Vec<String>,
}

/// Token lifetime: at least 600 s, the kube-apiserver's minimum for a TokenRequest;
/// at most 86400 s, the azure-workload-identity webhook's maximum (which keeps tokens
/// within the 25 h lifetime Keyless and Entra ID accept for an assertion).
fn parse_expiration(s: &str) -> Result<i64, String> {
    let v: i64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number of seconds"))?;
    if (MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is out of range: Kubernetes refuses tokens shorter than {MIN_TOKEN_EXPIRATION} s, and the workload identity webhook allows at most {MAX_TOKEN_EXPIRATION} s (Keyless refuses assertions living over 25 h)"
        ))
    }
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Directory holding the signing keys and the CA and certificate; reused across
    /// restarts so the issuer's keys (and its CA) stay stable.
    #[arg(
        long,
        env = "KEYLESS_DEV_CLUSTER_DATA_DIR",
        default_value = "./keyless-dev-cluster"
    )]
    data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; the ready line tells which).
    /// POST /mint and /rotate exist only on a loopback address.
    #[arg(long, default_value = "127.0.0.1:8444")]
    listen: SocketAddr,
    /// Host name in the issuer URL (`https://HOST:PORT`); the certificate covers it.
    #[arg(long, default_value = "localhost")]
    public_host: String,
    /// Path suffix of the issuer URL, e.g. `/cluster1` for
    /// `https://HOST:PORT/cluster1` (several issuers on one host, like AKS).
    #[arg(long, value_name = "PATH")]
    issuer_path: Option<String>,
    /// Projected token file to write and keep fresh (atomically replaced at 80% of
    /// the token's lifetime, like the kubelet); repeat for several. Mode 0600.
    #[arg(long = "token-file", value_name = "PATH")]
    token_files: Vec<PathBuf>,
    #[command(flatten)]
    token: TokenArgs,
    /// Pod the token files' tokens are bound to (the `kubernetes.io.pod` claim).
    #[arg(long, default_value = "dev-pod")]
    pod_name: String,
    /// Lifetime of the token files' tokens and the /mint default, in seconds:
    /// 600 (the kube-apiserver's minimum) to 86400 (the workload identity webhook's
    /// maximum, below the 25 h Keyless accepts).
    #[arg(long, value_name = "SECONDS", default_value = "3600", value_parser = parse_expiration)]
    token_expiration: i64,
    /// Rotate the signing key every SECONDS (3600 to 31536000). The old key stays in
    /// the JWKS for 24 h (the longest token lifetime), so at most 25 keys are
    /// published. For tests, rotate on demand with POST /rotate or SIGHUP.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(3600..=31_536_000))]
    key_rotation: Option<i64>,
    /// Log format (logs go to stderr).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Args)]
struct MintArgs {
    /// The dev cluster's data directory (its current signing key is used; created
    /// with a new key if it does not exist yet).
    #[arg(
        long,
        env = "KEYLESS_DEV_CLUSTER_DATA_DIR",
        default_value = "./keyless-dev-cluster"
    )]
    data_dir: PathBuf,
    /// Issuer URL (`iss`); default: the URL the last `keyless dev-cluster` served
    /// from this data directory. Taken verbatim.
    #[arg(long)]
    issuer: Option<String>,
    #[command(flatten)]
    token: TokenArgs,
    /// Bind the token to this pod (`kubernetes.io.pod`); default: no pod claim.
    #[arg(long)]
    pod_name: Option<String>,
    /// Lifetime in seconds, 600 to 86400.
    #[arg(long, value_name = "SECONDS", default_value = "3600", value_parser = parse_expiration)]
    expiration: i64,
}

/// Runs `keyless dev-cluster` (the server, or `mint`).
pub async fn run(args: DevClusterArgs) -> Result<()> {
    match args.command {
        Some(DevClusterCommand::Mint(mint)) => run_mint(mint),
        None => run_server(args.server).await,
    }
}

fn run_mint(args: MintArgs) -> Result<()> {
    let now = SystemClock.now();
    let stored = match state::load(&args.data_dir)? {
        Some(stored) => stored,
        // Only create a key when the token can be issued, so a mistake leaves no trace.
        None if args.issuer.is_some() => {
            private_data_dir(&args.data_dir)?;
            cluster::load_or_create(&args.data_dir, now)?
        }
        None => bail!(
            "{} holds no dev cluster keys yet: pass --issuer URL to create them, or start `keyless dev-cluster --data-dir {}` first",
            args.data_dir.display(),
            args.data_dir.display()
        ),
    };
    let Some(url) = args.issuer.or(stored.issuer) else {
        bail!(
            "no issuer URL: pass --issuer, or start `keyless dev-cluster --data-dir {}` once so it records its URL",
            args.data_dir.display()
        );
    };
    let issuer = issuer::Issuer::new(url, stored.uid_seed, stored.keys)
        .with_context(|| state::path(&args.data_dir).display().to_string())?;
    let request = TokenRequest {
        namespace: args.token.namespace,
        service_account: args.token.service_account,
        pod_name: args.pod_name,
        audiences: args.token.audiences,
        expiration_seconds: args.expiration,
    };
    println!("{}", issuer.mint(&request, now)?);
    Ok(())
}

/// `""` for none, else `/a/b`: no trailing slash, no empty, `.` or `..` segments, and
/// only unreserved URL characters (so the URL needs no escaping and routes cleanly).
fn normalise_issuer_path(path: Option<&str>) -> Result<String> {
    let Some(path) = path else {
        return Ok(String::new());
    };
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let Some(rest) = trimmed.strip_prefix('/') else {
        bail!("--issuer-path '{path}' must start with '/', e.g. /cluster1");
    };
    let ok = rest.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    });
    if !ok {
        bail!(
            "--issuer-path '{path}' must be /-separated segments of letters, digits, '-', '.', '_' and '~'"
        );
    }
    Ok(trimmed.to_owned())
}

fn issuer_url(host: &str, port: u16, path: &str) -> String {
    if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    }
}

async fn run_server(args: ServerArgs) -> Result<()> {
    init_logging(args.log_format, "info,tower_http=warn");
    if args.public_host.is_empty() || args.public_host.contains(['/', ':', ' ']) {
        bail!(
            "--public-host '{}' must be a bare host name",
            args.public_host
        );
    }
    let issuer_path = normalise_issuer_path(args.issuer_path.as_deref())?;
    let token_request = TokenRequest {
        namespace: args.token.namespace.clone(),
        service_account: args.token.service_account.clone(),
        pod_name: Some(args.pod_name.clone()),
        audiences: args.token.audiences.clone(),
        expiration_seconds: args.token_expiration,
    };
    let mut projector = Projector::new(&args.token_files, token_request)?;
    private_data_dir(&args.data_dir)?;

    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let url = issuer_url(&args.public_host, local.port(), &issuer_path);

    let (pem, ca_file) = keyless_server::tls::ensure_generated(&args.data_dir, &args.public_host)?;
    let tls = keyless_tls::server_config(&pem)?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cluster = Arc::new(DevCluster::open(
        &args.data_dir,
        url.clone(),
        clock,
        args.key_rotation,
    )?);

    // Token files exist before the ready line.
    if !projector.is_empty() {
        let (_, failures) =
            projector.refresh_due(cluster.now(), |req, at| cluster.mint_at(req, at));
        if let Some((_, error)) = failures.into_iter().next() {
            return Err(error);
        }
        for path in projector.paths() {
            tracing::info!(path = %path.display(), "token file written");
        }
        tokio::spawn(projector.run(cluster.clone()));
    }
    tokio::spawn(cluster.clone().run_maintenance());
    spawn_sighup_rotation(cluster.clone());

    let local_api = local.ip().is_loopback();
    let defaults = server::MintDefaults {
        namespace: args.token.namespace,
        service_account: args.token.service_account,
        audiences: args.token.audiences,
        expiration_seconds: args.token_expiration,
    };
    let router = server::router(cluster.clone(), &issuer_path, defaults, local_api);

    let shutdown = shutdown_signal()?;
    println!("keyless dev-cluster: ready at {url}");
    tracing::info!(
        listen = %local,
        issuer = %url,
        ca = %absolute(&ca_file).display(),
        mint_api = local_api,
        "serving"
    );
    keyless_server::serve::serve_tls(
        listener,
        tls,
        router,
        keyless_server::limits::ConnectionLimits::default(),
        shutdown,
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

fn spawn_sighup_rotation(cluster: Arc<DevCluster>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; rotate with POST /rotate");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if let Err(e) = cluster.rotate("SIGHUP").await {
                tracing::error!(error = format!("{e:#}"), "rotation on SIGHUP failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issuer_paths_are_normalised_or_refused() {
        assert_eq!(normalise_issuer_path(None).unwrap(), "");
        assert_eq!(normalise_issuer_path(Some("/")).unwrap(), "");
        assert_eq!(normalise_issuer_path(Some("/c1")).unwrap(), "/c1");
        assert_eq!(normalise_issuer_path(Some("/a/b-2/")).unwrap(), "/a/b-2");
        for bad in ["c1", "/a//b", "/a/../b", "/{x}", "/:x", "/a b", "/*"] {
            assert!(normalise_issuer_path(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuer_url_omits_the_default_port() {
        assert_eq!(
            issuer_url("localhost", 8444, "/c1"),
            "https://localhost:8444/c1"
        );
        assert_eq!(issuer_url("h", 443, ""), "https://h");
    }

    #[test]
    fn expiration_bounds() {
        assert!(parse_expiration("599").is_err());
        assert_eq!(parse_expiration("600"), Ok(600));
        assert_eq!(parse_expiration("86400"), Ok(86_400));
        assert!(parse_expiration("86401").unwrap_err().contains("25 h"));
        assert!(parse_expiration("1h").is_err());
    }
}
