//! What the operator configures about the mutation.

use crate::keys::DEFAULT_AUDIENCE;

/// Where the projected token lives in the container.
///
/// The volume name and mount path are *preferred* values: when a pod already uses
/// either for something else, the mutation picks the first free alternative
/// (`NAME-1`, `NAME-2`, ... and `PATH-1`, `PATH-2`, ..., each independently) and points
/// `AZURE_FEDERATED_TOKEN_FILE` at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLayout {
    /// Preferred name of the projected volume.
    pub volume_name: String,
    /// Preferred directory the volume is mounted at (read-only, whole directory so the
    /// kubelet's token rotation is seen).
    pub mount_path: String,
    /// Path of the token file inside the volume (the projection's `path`).
    pub token_path: String,
}

impl TokenLayout {
    /// The classic layout (azure-workload-identity v1.0–v1.5, what most docs show):
    /// volume `azure-identity-token` at `/var/run/secrets/azure/tokens`, token file
    /// `/var/run/secrets/azure/tokens/azure-identity-token`.
    pub fn classic() -> TokenLayout {
        TokenLayout {
            volume_name: "azure-identity-token".to_owned(),
            mount_path: "/var/run/secrets/azure/tokens".to_owned(),
            token_path: "azure-identity-token".to_owned(),
        }
    }

    /// The layout of azure-workload-identity v1.6: mounted at `/var/run/secrets/azure/wi`,
    /// token file `/var/run/secrets/azure/wi/token/azure-identity-token` (the volume
    /// name is Keyless' fixed `azure-identity-token`, not v1.6's per-pod hash).
    pub fn wi() -> TokenLayout {
        TokenLayout {
            volume_name: "azure-identity-token".to_owned(),
            mount_path: "/var/run/secrets/azure/wi".to_owned(),
            token_path: "token/azure-identity-token".to_owned(),
        }
    }
}

impl Default for TokenLayout {
    fn default() -> Self {
        TokenLayout::classic()
    }
}

/// Opt-in trust of a self-hosted Keyless' CA by workloads: pods annotated
/// `keyless.io/trust-ca: "true"` get a ConfigMap holding the CA projected into them and
/// the SDKs' CA variables set.
///
/// `ca_key` holds the Keyless CA alone; it is *added* to the public roots where a
/// runtime allows that (`NODE_EXTRA_CA_CERTS`) and named by `KEYLESS_CA_FILE`. Most
/// runtimes only offer a *replacing* variable (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`):
/// those are set only when `bundle_key` names a key holding the public roots *and* the
/// Keyless CA, so apps keep reaching public endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaTrust {
    /// Name of the ConfigMap (it must exist in every namespace whose pods opt in, e.g.
    /// distributed by trust-manager).
    pub config_map: String,
    /// Key holding the Keyless CA certificate (PEM).
    pub ca_key: String,
    /// Key holding a combined bundle (public roots + Keyless CA), if the ConfigMap has one.
    pub bundle_key: Option<String>,
    /// Preferred volume name.
    pub volume_name: String,
    /// Preferred mount directory.
    pub mount_path: String,
}

impl CaTrust {
    /// File name of the CA inside the mount.
    pub const CA_FILE: &'static str = "ca.crt";
    /// File name of the combined bundle inside the mount.
    pub const BUNDLE_FILE: &'static str = "ca-bundle.crt";

    /// A CA trust configuration with the default key, volume name and mount path.
    pub fn new(config_map: impl Into<String>) -> CaTrust {
        CaTrust {
            config_map: config_map.into(),
            ca_key: "ca.crt".to_owned(),
            bundle_key: None,
            volume_name: "keyless-ca".to_owned(),
            mount_path: "/var/run/secrets/keyless/ca".to_owned(),
        }
    }
}

/// The managed-identity sidecar (`keyless imds`) the webhook injects on request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityEndpoint {
    /// Image holding the `keyless` binary.
    pub image: String,
    /// Image of the iptables init container of the proxy mode (the reference's
    /// `proxy-init`, whose script reads `PROXY_PORT` and exempts uid 1501).
    pub proxy_init_image: String,
    /// The sidecar's `resources` (requests and limits), as Kubernetes JSON.
    pub resources: serde_json::Value,
}

impl Default for IdentityEndpoint {
    fn default() -> Self {
        IdentityEndpoint {
            image: "keyless:0.1.0".to_owned(),
            proxy_init_image: "mcr.microsoft.com/oss/azure/workload-identity/proxy-init:v1.6.0"
                .to_owned(),
            resources: serde_json::json!({
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"memory": "64Mi"},
            }),
        }
    }
}

/// Everything the mutation needs besides the pod and its ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationConfig {
    /// Tenant id injected when the ServiceAccount has no `tenant-id` annotation; empty
    /// means none.
    pub tenant_id: String,
    /// `AZURE_AUTHORITY_HOST`, injected exactly as configured; empty means none.
    pub authority_host: String,
    /// Audience of the projected token.
    pub audience: String,
    /// Token volume layout.
    pub layout: TokenLayout,
    /// Opt-in CA trust, if configured.
    pub ca_trust: Option<CaTrust>,
    /// The managed-identity sidecar injected on request.
    pub identity_endpoint: IdentityEndpoint,
}

impl MutationConfig {
    /// A configuration with the default audience, the classic layout and no CA trust.
    pub fn new(tenant_id: impl Into<String>, authority_host: impl Into<String>) -> Self {
        MutationConfig {
            tenant_id: tenant_id.into(),
            authority_host: authority_host.into(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            layout: TokenLayout::classic(),
            ca_trust: None,
            identity_endpoint: IdentityEndpoint::default(),
        }
    }
}
