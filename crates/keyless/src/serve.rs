//! `keyless serve`: the all-in-one server. Owns the data directory layout:
//!
//! | file | what |
//! |---|---|
//! | `keyless.db` | SQLite database (unless `--database-url`) |
//! | `kek` | key-encryption key, mode 0600 (unless `KEYLESS_KEK`) |
//! | `ca.pem`, `ca-key.pem` | the local CA clients trust (key 0600) |
//! | `server.pem`, `server-key.pem` | the HTTPS certificate (key 0600) |
//! | `admin.json` | the bootstrap admin credential, mode 0600 |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::logging::{LogFormat, init_logging};
use crate::process::{absolute, private_data_dir, shutdown_signal};
use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Args;
use keyless_core::{Keyless, PublicUrl, Settings, SystemClock};
use keyless_jose::{Alg, Kek};
use keyless_store_sql::sqlite::SqliteStore;
use keyless_tls::files::write_private;

/// Options of `keyless serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the database, keys, certificates and admin.json.
    #[arg(long, env = "KEYLESS_DATA_DIR", default_value = "./keyless-data")]
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; the ready line tells which).
    #[arg(long, env = "KEYLESS_LISTEN", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Host name in every URL Keyless publishes (`https://HOST:PORT`); vaults live at
    /// `https://{vault}.vault.HOST:PORT`.
    #[arg(long, env = "KEYLESS_PUBLIC_HOST", default_value = "localhost")]
    pub public_host: String,
    /// The one public address of several replicas behind a load balancer
    /// (`https://HOST[:PORT]`): overrides `--public-host` and the listen port in every
    /// published URL, token issuer and audience, and vault host.
    #[arg(long, env = "KEYLESS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds between checks that the in-memory state missed no write (a safety net
    /// behind PostgreSQL's change notifications): on PostgreSQL a full reload happens only
    /// when a write was never notified (e.g. a hand edit; caught within two intervals);
    /// on SQLite every check reloads.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub resync_interval: u64,
    /// Database URL: `sqlite://PATH`, or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` for
    /// several replicas sharing one database; default: `keyless.db` in the data directory.
    #[arg(long, env = "KEYLESS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Server certificate chain (PEM); default: generated from a local CA.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra root certificate (PEM) trusted when fetching issuer metadata; repeatable.
    #[arg(long)]
    pub trust_ca: Vec<PathBuf>,
    /// Allow issuers on loopback and private addresses (private clusters, tests).
    #[arg(long)]
    pub allow_private_issuers: bool,
    /// Also serve `/metrics` and `/healthz` over plain HTTP on this address, without
    /// authentication (for a Prometheus scraper; keep it on a private interface).
    #[arg(long, env = "KEYLESS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Lifetime of access tokens, seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(300..=86400))]
    pub token_lifetime: i64,
    /// Algorithm of new token signing keys.
    #[arg(long, default_value = "ES256", value_parser = parse_alg)]
    pub signing_alg: Alg,
    /// Seconds a rotated signing key is published before it signs.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..=2_592_000))]
    pub key_prepublish: i64,
    /// How long an issuer's keys keep being used while the issuer cannot be reached,
    /// seconds since they were last fetched; past it, exchanges for that issuer fail
    /// until a refresh succeeds (a key the issuer withdrew must stop working).
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(i64).range(60..=31_536_000))]
    pub issuer_keys_max_stale: i64,
    /// Least seconds between two fetches of an issuer's metadata caused by an unknown
    /// key id or by a failed fetch: how soon an issuer's rotated key is picked up, and
    /// how much a flood of unknown kids or a down issuer can cost.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub issuer_refresh_min_interval: i64,
    /// Most distinct fetched issuers one tenant keeps in the issuer cache; a new one
    /// beyond it fails (AADSTS50166) until one of that tenant's issuers goes idle.
    /// Other tenants are not affected.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub issuer_cache_per_tenant: u32,
    /// Seconds an issuer unused by a tenant stays in that tenant's issuer cache.
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(i64).range(60..=31_536_000))]
    pub issuer_cache_idle: i64,
    /// Seconds an issuer that was never fetched successfully stays cached unused.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(i64).range(10..=86_400))]
    pub issuer_cache_failed: i64,
    /// Most issuer metadata fetches under way at once; an exchange that finds every
    /// slot busy for a second fails (AADSTS50166) instead of queueing.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub issuer_max_concurrent_fetches: u32,
    /// Seconds a database call may take before it fails (503 with `Retry-After` for the
    /// request); housekeeping deletes get twelve times as long.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub store_timeout: u64,
    /// Cap on federated credentials per identity (Entra caps at 20; default: none).
    #[arg(long)]
    pub max_federated_credentials: Option<u32>,
    /// Seconds a TLS handshake may take.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub tls_handshake_timeout: u64,
    /// Seconds from the first byte of an HTTP/1 request head to its end (0: no limit).
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Seconds from the end of a request head to the end of its body; a slower body
    /// gets 408 (0: no limit).
    #[arg(long, default_value_t = 10)]
    pub body_read_timeout: u64,
    /// Seconds a connection stays open with no request in flight (0: no limit); keep it
    /// above the idle timeout of any load balancer in front.
    #[arg(long, default_value_t = 120)]
    pub idle_timeout: u64,
    /// Connections served at once per listener; more wait in the accept backlog
    /// (0: no limit).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Connections held at once from one peer address (IPv6: one /64); more are closed
    /// when accepted, before the TLS handshake (0: no limit). Counts TCP peers: behind
    /// a proxy, the proxy.
    #[arg(long, default_value_t = 4_000)]
    pub max_connections_per_address: usize,
    /// Requests in flight at once on one HTTP/2 connection (its
    /// SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_http2_streams: u32,
    /// How long sign-in log rows are kept: seconds, or days with a `d` suffix (`30d`).
    /// Older rows are deleted by housekeeping.
    #[arg(long, default_value = "30d", value_parser = parse_retention)]
    pub signin_log_retention: i64,
    /// Most sign-in log rows kept (all tenants); housekeeping deletes the oldest beyond
    /// it.
    #[arg(long, default_value_t = 1_000_000)]
    pub signin_log_max_rows: u64,
    /// Seconds between housekeeping runs (sign-in log retention and cap, signing keys,
    /// purges of deleted secrets).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub housekeeping_interval: u64,
    /// Token requests per second per tenant and client id, with a burst of five
    /// seconds' worth; more get 429 with `Retry-After` (0: no limit). Per replica.
    #[arg(long, default_value_t = 200)]
    pub rate_limit_per_client: u32,
    /// Failed requests per second per client address (IPv6: per /64), with a burst of
    /// five seconds' worth: refused token requests, and management or vault requests
    /// whose bearer token was refused. Past it, every request from the address gets
    /// 429 until the bucket refills; successes are never counted (0: no limit).
    #[arg(long, default_value_t = 50)]
    pub rate_limit_failures_per_address: u32,
    /// Management and vault requests per second per authenticated principal, with a
    /// burst of five seconds' worth (0: no limit). Per replica.
    #[arg(long, default_value_t = 1_000)]
    pub rate_limit_per_principal: u32,
    /// Proxies (address or CIDR block; repeatable or comma-separated) whose
    /// `X-Forwarded-For` names the client, for the address limit and the sign-in log.
    /// Without it the peer address is the client.
    #[arg(long, value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<keyless_server::throttle::Cidr>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// The connection limits of both listeners.
    fn limits(&self) -> keyless_server::limits::ConnectionLimits {
        let secs = |s: u64| (s > 0).then(|| std::time::Duration::from_secs(s));
        keyless_server::limits::ConnectionLimits {
            tls_handshake: std::time::Duration::from_secs(self.tls_handshake_timeout),
            header_read: secs(self.header_read_timeout),
            body_read: secs(self.body_read_timeout),
            idle: secs(self.idle_timeout),
            max_connections: (self.max_connections > 0).then_some(self.max_connections),
            max_connections_per_address: (self.max_connections_per_address > 0)
                .then_some(self.max_connections_per_address),
            max_http2_streams: self.max_http2_streams,
        }
    }

    /// The request rate limits.
    fn rate_limits(&self) -> keyless_server::throttle::RateLimits {
        keyless_server::throttle::RateLimits {
            per_client: self.rate_limit_per_client,
            failures_per_address: self.rate_limit_failures_per_address,
            per_principal: self.rate_limit_per_principal,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

fn parse_cidr(s: &str) -> Result<keyless_server::throttle::Cidr, String> {
    s.parse()
}

/// `SECONDS` or `DAYSd`, at least one second and at most ten years.
fn parse_retention(s: &str) -> Result<i64, String> {
    let (digits, unit) = match s.strip_suffix('d') {
        Some(days) => (days, 86_400),
        None => (s, 1),
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|secs| (1..=10 * 365 * 86_400).contains(secs))
        .ok_or_else(|| {
            format!("invalid retention '{s}': use seconds (e.g. 86400) or days (e.g. 30d), at most 3650d")
        })
}

fn parse_alg(s: &str) -> Result<Alg, String> {
    match Alg::from_name(s) {
        Some(a @ (Alg::ES256 | Alg::ES384 | Alg::RS256 | Alg::PS256 | Alg::EdDSA)) => Ok(a),
        _ => Err(format!(
            "unsupported signing algorithm '{s}': use ES256, ES384, RS256, PS256 or EdDSA"
        )),
    }
}

/// The key-encryption key: `KEYLESS_KEK` (base64 of 32 bytes) or `{data}/kek`,
/// generated on first start.
pub(crate) fn load_kek(data_dir: &Path) -> Result<Kek> {
    if let Ok(b64) = std::env::var("KEYLESS_KEK") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .context("KEYLESS_KEK is not base64")?;
        return Kek::from_bytes(&bytes).context("KEYLESS_KEK must be 32 bytes");
    }
    let path = data_dir.join("kek");
    if path.exists() {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        return Kek::from_bytes(&bytes)
            .with_context(|| format!("{} is not a 32-byte key", path.display()));
    }
    let kek = Kek::generate()?;
    write_private(&path, &kek.to_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(kek)
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdminFile {
    pub(crate) tenant_id: String,
    pub(crate) subscription_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) authority_host: String,
    pub(crate) resource_manager_url: String,
    pub(crate) ca_file: Option<String>,
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(args: ServeArgs) -> Result<()> {
    init_logging(args.log_format, "info,tower_http=warn,sqlx=warn");
    if args.public_host.is_empty() || args.public_host.contains(['/', ':', ' ']) {
        bail!(
            "--public-host '{}' must be a bare host name",
            args.public_host
        );
    }
    private_data_dir(&args.data_dir)?;
    // Replicas may share one data directory and start at the same instant: whoever
    // creates the key-encryption key and the TLS material does it under this lock, the
    // others then read what it wrote (never two different KEKs or a mixed key pair).
    // A read-only directory (a mounted Secret) was bootstrapped already: no lock needed.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(args.data_dir.join(".init.lock"))
        .ok();
    if let Some(l) = &lock {
        l.lock().context("cannot lock the data directory")?;
    }
    let kek = load_kek(&args.data_dir)?;

    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let port = listener.local_addr()?.port();

    let public = match &args.public_url {
        Some(url) => parse_public_url(url)?,
        None => PublicUrl {
            host: args.public_host.clone(),
            port,
        },
    };
    let (pem, ca_file) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (keyless_tls::load_files(cert, key)?, None),
        _ => {
            let (pem, ca) = keyless_server::tls::ensure_generated(&args.data_dir, &public.host)?;
            (pem, Some(ca))
        }
    };
    let tls = keyless_tls::server_config(&pem)?;
    drop(lock);

    let store = open_store(args.database_url.as_deref(), &args.data_dir).await?;
    let store: Arc<dyn keyless_store::Store> =
        Arc::new(keyless_store::deadline::WithDeadline::new(
            store,
            keyless_store::deadline::Deadlines {
                call: std::time::Duration::from_secs(args.store_timeout),
                housekeeping: std::time::Duration::from_secs(args.store_timeout * 12),
            },
        ));
    let mut settings = Settings::new(public.clone());
    settings.token_lifetime_secs = args.token_lifetime;
    settings.signing_alg = args.signing_alg;
    settings.key_prepublish_secs = args.key_prepublish;
    settings.issuer_cache.unknown_kid_min_interval_secs = args.issuer_refresh_min_interval;
    settings.max_federated_credentials = args.max_federated_credentials;
    settings.issuer_cache.max_stale_secs = args.issuer_keys_max_stale;
    settings.issuer_cache.max_issuers_per_tenant = args.issuer_cache_per_tenant as usize;
    settings.issuer_cache.idle_ttl_secs = args.issuer_cache_idle;
    settings.issuer_cache.failed_ttl_secs = args.issuer_cache_failed;
    settings.issuer_cache.max_concurrent_fetches = args.issuer_max_concurrent_fetches as usize;
    settings.signin_log.retention_secs = args.signin_log_retention;
    settings.signin_log.max_rows = args.signin_log_max_rows;
    settings.housekeeping_interval = std::time::Duration::from_secs(args.housekeeping_interval);
    let fetcher = keyless_server::issuer_fetch::HttpFetcher::new(
        &keyless_server::issuer_fetch::FetchOptions {
            allow_private: args.allow_private_issuers,
            trust_ca: args.trust_ca.clone(),
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot set up the issuer metadata client: {e}"))?;
    let keyless = Arc::new(
        Keyless::open(
            store,
            Arc::new(SystemClock),
            settings,
            kek,
            Arc::new(fetcher),
        )
        .await?,
    );
    let admin_path = args.data_dir.join("admin.json");
    let ca_string = ca_file.as_ref().map(|p| absolute(p).display().to_string());
    match keyless.bootstrap().await? {
        Some(admin) => {
            let file = AdminFile {
                tenant_id: admin.tenant_id,
                subscription_id: admin.subscription_id,
                client_id: admin.client_id,
                client_secret: admin.client_secret,
                authority_host: public.authority(),
                resource_manager_url: public.resource_manager(),
                ca_file: ca_string,
            };
            write_private(&admin_path, &serde_json::to_vec_pretty(&file)?)?;
            tracing::info!(path = %admin_path.display(), "first start: created tenant, subscription and admin credential");
        }
        None => {
            if let Err(e) = refresh_admin_file(&admin_path, &public, ca_string) {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "admin.json was not updated (read-only data directory?)"
                );
            }
        }
    }

    keyless.start_background(std::time::Duration::from_secs(args.resync_interval));

    let state = keyless_server::AppState::new(keyless, &args.rate_limits());
    let limits = args.limits();
    if let Some(addr) = args.metrics_listen {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        let metrics = keyless_server::router::metrics_router(state.clone());
        tracing::info!(listen = %addr, "serving metrics over plain HTTP");
        tokio::spawn(async move {
            if let Err(e) = keyless_server::serve::serve_plain(listener, metrics, limits).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }
    let router = keyless_server::build_router(state);
    // Handlers are installed before the ready line, so a supervisor's SIGTERM right
    // after readiness is a clean shutdown, not a kill.
    let shutdown = shutdown_signal()?;
    // With --public-url the published origin is the balancer's; say where this replica
    // itself listens first.
    println!("keyless serve: listening on {}", listener.local_addr()?);
    println!("keyless serve: ready at {}", public.authority());
    tracing::info!(listen = %listener.local_addr()?, public = %public.authority(), "serving");
    keyless_server::serve::serve_tls(listener, tls, router, limits, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the database: `--database-url`, else SQLite in the data directory.
pub(crate) async fn open_store(
    url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn keyless_store::Store>> {
    Ok(match url {
        Some(url) if url.starts_with("sqlite:") => Arc::new(SqliteStore::open(url).await?),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(
                keyless_store_sql::postgres::PgStore::open(url)
                    .await
                    .context("cannot open the PostgreSQL database")?,
            )
        }
        Some(url) => bail!(
            "unsupported --database-url '{}': use sqlite://PATH or postgres://...",
            redact_url(url)
        ),
        None => Arc::new(SqliteStore::open_file(&data_dir.join("keyless.db")).await?),
    })
}

/// A database URL with any password replaced, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// `https://HOST[:PORT][/]` → the public origin.
fn parse_public_url(url: &str) -> Result<PublicUrl> {
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("--public-url '{url}' must start with https://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        bail!("--public-url '{url}' must be https://HOST[:PORT] with no path");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .with_context(|| format!("--public-url '{url}' has an invalid port"))?,
        ),
        None => (authority, 443),
    };
    if host.is_empty() {
        bail!("--public-url '{url}' has no host");
    }
    Ok(PublicUrl {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// Later starts keep the credential but point the URLs at this start's port.
fn refresh_admin_file(path: &Path, public: &PublicUrl, ca: Option<String>) -> Result<()> {
    let Ok(bytes) = std::fs::read(path) else {
        tracing::warn!(path = %path.display(), "admin.json is missing; the admin secret cannot be recovered");
        return Ok(());
    };
    let mut file: AdminFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid", path.display()))?;
    let (authority, rm) = (public.authority(), public.resource_manager());
    if file.authority_host != authority
        || file.resource_manager_url != rm
        || (ca.is_some() && file.ca_file != ca)
    {
        file.authority_host = authority;
        file.resource_manager_url = rm;
        if ca.is_some() {
            file.ca_file = ca;
        }
        write_private(path, &serde_json::to_vec_pretty(&file)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_retention;

    #[test]
    fn retention_is_seconds_or_days() {
        assert_eq!(parse_retention("86400").unwrap(), 86_400);
        assert_eq!(parse_retention("30d").unwrap(), 30 * 86_400);
        for bad in ["", "0", "-5", "d", "3651d", "1h", "99999999999999999999"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }
}
