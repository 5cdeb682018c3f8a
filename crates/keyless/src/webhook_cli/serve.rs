//! `keyless webhook`: the mutating admission webhook server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use keyless_tls::reload::TlsFiles;
use keyless_webhook::admission::{Admitter, Selection};
use keyless_webhook::kube::{ApiClient, CacheOptions, ClusterConfig, ServiceAccountCache};
use keyless_webhook::metrics::Metrics;
use keyless_webhook::server::{Listeners, run as run_server};
use keyless_webhook::{CaTrust, IdentityEndpoint, MutationConfig, TokenLayout};

use crate::logging::{LogFormat, init_logging};
use crate::process::shutdown_signal;

/// Token file layouts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Layout {
    /// `/var/run/secrets/azure/tokens/azure-identity-token` (azure-workload-identity
    /// v1.0–v1.5 and most documentation).
    Classic,
    /// `/var/run/secrets/azure/wi/token/azure-identity-token` (azure-workload-identity v1.6).
    Wi,
}

/// Options of `keyless webhook`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTPS address of `/mutate-v1-pod`, `/healthz` and `/readyz` (port 0 picks a free
    /// port; the ready line tells which).
    #[arg(long, env = "KEYLESS_WEBHOOK_LISTEN", default_value = "0.0.0.0:9443")]
    listen: SocketAddr,
    /// Plain-HTTP address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "KEYLESS_WEBHOOK_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    metrics_listen: SocketAddr,
    /// Directory holding `tls.crt` and `tls.key` (a mounted `kubernetes.io/tls` Secret).
    #[arg(long, env = "KEYLESS_WEBHOOK_CERT_DIR", conflicts_with_all = ["tls_cert_file", "tls_key_file"])]
    cert_dir: Option<PathBuf>,
    /// Serving certificate chain (PEM), reloaded when it changes.
    #[arg(long, requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// Serving private key (PEM), reloaded when it changes.
    #[arg(long, requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// How often the certificate files are checked for changes, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    tls_reload_interval: u64,
    /// Tenant id injected as AZURE_TENANT_ID (a ServiceAccount's
    /// `azure.workload.identity/tenant-id` annotation wins).
    /// Required.
    #[arg(long, env = "AZURE_TENANT_ID")]
    tenant_id: Option<String>,
    /// The Keyless token service URL, injected as AZURE_AUTHORITY_HOST exactly as given
    /// (e.g. `https://keyless.example.com/`; for Entra ID `https://login.microsoftonline.com/`).
    /// Required.
    #[arg(long, env = "KEYLESS_AUTHORITY_HOST")]
    authority_host: Option<String>,
    /// Audience of the projected service-account token.
    #[arg(long, env = "KEYLESS_WEBHOOK_AUDIENCE", default_value = keyless_webhook::keys::DEFAULT_AUDIENCE)]
    audience: String,
    /// Token file layout.
    #[arg(long, value_enum, default_value = "classic")]
    token_layout: Layout,
    /// Preferred name of the token volume (default: the layout's, `azure-identity-token`).
    #[arg(long)]
    token_volume_name: Option<String>,
    /// Preferred mount directory of the token volume (default: the layout's).
    #[arg(long)]
    token_mount_path: Option<String>,
    /// Kubeconfig to use (default: KUBECONFIG, then in-cluster, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current-context).
    #[arg(long)]
    context: Option<String>,
    /// Compatibility: also mutate unlabelled pods whose ServiceAccount carries the
    /// `azure.workload.identity/use` label or annotation (azure-workload-identity < v1.0).
    /// Needs a MutatingWebhookConfiguration without the objectSelector.
    #[arg(long)]
    select_by_service_account_label: bool,
    /// Opt-in CA trust: ConfigMap (in each workload namespace) holding the Keyless CA.
    /// Pods annotated `keyless.io/trust-ca: "true"` get it mounted and the SDKs' CA
    /// variables set.
    #[arg(long, value_name = "NAME")]
    ca_configmap: Option<String>,
    /// Key of the Keyless CA certificate in that ConfigMap.
    #[arg(
        long,
        value_name = "KEY",
        default_value = "ca.crt",
        requires = "ca_configmap"
    )]
    ca_configmap_key: String,
    /// Key of a bundle of the public roots plus the Keyless CA in that ConfigMap; when
    /// given, SSL_CERT_FILE and REQUESTS_CA_BUNDLE point at it.
    #[arg(long, value_name = "KEY", requires = "ca_configmap")]
    ca_bundle_key: Option<String>,
    /// Image of the managed-identity sidecar (`keyless imds`) injected into pods
    /// annotated `keyless.io/managed-identity-endpoint: "true"` or
    /// `azure.workload.identity/inject-proxy-sidecar`.
    #[arg(long, env = "KEYLESS_IMDS_IMAGE", default_value = "keyless:0.1.0")]
    imds_image: String,
    /// Image of the iptables init container of the proxy mode (reads PROXY_PORT,
    /// exempts uid 1501).
    #[arg(
        long,
        env = "KEYLESS_IMDS_PROXY_INIT_IMAGE",
        default_value = "mcr.microsoft.com/oss/azure/workload-identity/proxy-init:v1.6.0"
    )]
    imds_proxy_init_image: String,
    /// CPU request of the sidecar ("" for none).
    #[arg(long, default_value = "10m")]
    imds_cpu_request: String,
    /// Memory request of the sidecar ("" for none).
    #[arg(long, default_value = "16Mi")]
    imds_memory_request: String,
    /// CPU limit of the sidecar ("" for none).
    #[arg(long, default_value = "")]
    imds_cpu_limit: String,
    /// Memory limit of the sidecar ("" for none).
    #[arg(long, default_value = "64Mi")]
    imds_memory_limit: String,
    /// Log format (logs go to stderr).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// The sidecar's `resources`, leaving out the empty quantities.
fn imds_resources(args: &ServeArgs) -> serde_json::Value {
    let pick = |pairs: [(&str, &String); 2]| {
        pairs
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.trim().to_owned())))
            .collect::<serde_json::Map<_, _>>()
    };
    let mut resources = serde_json::Map::new();
    let requests = pick([
        ("cpu", &args.imds_cpu_request),
        ("memory", &args.imds_memory_request),
    ]);
    let limits = pick([
        ("cpu", &args.imds_cpu_limit),
        ("memory", &args.imds_memory_limit),
    ]);
    if !requests.is_empty() {
        resources.insert("requests".to_owned(), requests.into());
    }
    if !limits.is_empty() {
        resources.insert("limits".to_owned(), limits.into());
    }
    resources.into()
}

fn mutation_config(args: &ServeArgs) -> Result<MutationConfig> {
    let tenant_id = args.tenant_id.as_deref().unwrap_or_default().trim();
    if tenant_id.is_empty() {
        bail!(
            "--tenant-id (or AZURE_TENANT_ID) is required: the tenant injected as AZURE_TENANT_ID"
        );
    }
    let authority_host = args.authority_host.as_deref().unwrap_or_default();
    if !authority_host.starts_with("https://") {
        bail!(
            "--authority-host (or KEYLESS_AUTHORITY_HOST) must be the https:// URL of the Keyless token service (got '{authority_host}'): the Azure SDKs refuse anything else"
        );
    }
    if args.audience.is_empty() {
        bail!("--audience must not be empty");
    }
    let mut layout = match args.token_layout {
        Layout::Classic => TokenLayout::classic(),
        Layout::Wi => TokenLayout::wi(),
    };
    if let Some(name) = &args.token_volume_name {
        layout.volume_name.clone_from(name);
    }
    if let Some(path) = &args.token_mount_path {
        if !path.starts_with('/') {
            bail!("--token-mount-path '{path}' must be an absolute path");
        }
        layout.mount_path.clone_from(path);
    }
    let ca_trust = args.ca_configmap.as_ref().map(|name| {
        let mut ca = CaTrust::new(name.clone());
        ca.ca_key.clone_from(&args.ca_configmap_key);
        ca.bundle_key.clone_from(&args.ca_bundle_key);
        ca
    });
    let mut config = MutationConfig::new(tenant_id, authority_host);
    config.audience.clone_from(&args.audience);
    config.layout = layout;
    config.ca_trust = ca_trust;
    config.identity_endpoint = IdentityEndpoint {
        image: args.imds_image.clone(),
        proxy_init_image: args.imds_proxy_init_image.clone(),
        resources: imds_resources(args),
    };
    Ok(config)
}

/// Runs the webhook until SIGTERM or SIGINT.
pub async fn run(args: ServeArgs) -> Result<()> {
    init_logging(args.log_format, "info,tower_http=warn");
    let config = mutation_config(&args)?;
    let tls = match (&args.cert_dir, &args.tls_cert_file, &args.tls_key_file) {
        (Some(dir), _, _) => TlsFiles::in_dir(dir),
        (None, Some(cert), Some(key)) => TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => bail!(
            "no serving certificate: pass --cert-dir DIR (with tls.crt and tls.key) or --tls-cert-file and --tls-key-file"
        ),
    };
    let cluster = ClusterConfig::load(args.kubeconfig.as_deref(), args.context.as_deref())
        .context("finding the Kubernetes API server")?;
    tracing::info!(server = %cluster.server, source = %cluster.source, "Kubernetes API");
    let client = ApiClient::new(&cluster)?;
    let metrics = Arc::new(Metrics::default());
    let cache = ServiceAccountCache::new(client, metrics.clone(), CacheOptions::default());
    cache.spawn();
    let selection = if args.select_by_service_account_label {
        Selection::PodLabelOrServiceAccount
    } else {
        Selection::PodLabel
    };
    let admitter = Arc::new(Admitter {
        config,
        lookup: cache,
        metrics,
        selection,
    });

    let webhook = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics_listener = std::net::TcpListener::bind(args.metrics_listen)
        .with_context(|| format!("cannot listen on {}", args.metrics_listen))?;
    let listeners = Listeners {
        webhook,
        metrics: metrics_listener,
        tls,
        tls_poll: Duration::from_secs(args.tls_reload_interval),
        limits: keyless_http::ConnectionLimits::default(),
    };
    // Handlers before the ready line: a SIGTERM right after readiness is a clean stop.
    let shutdown = shutdown_signal()?;
    run_server(
        admitter,
        listeners,
        |https, http| {
            println!(
                "keyless webhook: ready at https://{https} (metrics at http://{http}/metrics)"
            );
            tracing::info!(%https, metrics = %http, "serving");
        },
        shutdown,
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}
