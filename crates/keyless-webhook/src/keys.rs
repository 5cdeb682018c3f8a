//! Names on the wire: labels, annotations, environment variables and defaults. The
//! `azure.workload.identity/*` keys are those of Azure/azure-workload-identity v1.x, so
//! existing manifests work unchanged.

/// Pod label that selects a pod for mutation; the value must be exactly `"true"`.
pub const USE_LABEL: &str = "azure.workload.identity/use";
/// ServiceAccount annotation: the identity's client id (`AZURE_CLIENT_ID`).
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// ServiceAccount annotation: the tenant id (`AZURE_TENANT_ID`); the webhook's own
/// tenant when absent.
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
/// Pod (wins) or ServiceAccount annotation: lifetime of the projected token, seconds.
pub const TOKEN_EXPIRATION_ANNOTATION: &str =
    "azure.workload.identity/service-account-token-expiration";
/// Pod annotation: `;`-separated names of containers left untouched.
pub const SKIP_CONTAINERS_ANNOTATION: &str = "azure.workload.identity/skip-containers";
/// Pod annotation (Keyless): `"true"` asks for the Keyless CA to be mounted and the
/// SDKs' CA variables to be set (only when the webhook is configured with a CA).
pub const TRUST_CA_ANNOTATION: &str = "keyless.io/trust-ca";
/// Pod annotation (reference meaning, key presence): inject the managed-identity
/// sidecar (`keyless imds`) plus an init container redirecting `169.254.169.254:80` to
/// it with iptables (needs `NET_ADMIN`; refused for `hostNetwork` pods).
pub const INJECT_PROXY_SIDECAR_ANNOTATION: &str = "azure.workload.identity/inject-proxy-sidecar";
/// Pod annotation: the sidecar's loopback port (default 8000), in both modes.
pub const PROXY_SIDECAR_PORT_ANNOTATION: &str = "azure.workload.identity/proxy-sidecar-port";
/// Pod annotation (Keyless): `"true"` injects the managed-identity sidecar as a native
/// sidecar and gives the app containers `IDENTITY_ENDPOINT` and a per-pod
/// `IDENTITY_HEADER` (the App Service protocol): no address redirection, no `NET_ADMIN`.
pub const MANAGED_IDENTITY_ENDPOINT_ANNOTATION: &str = "keyless.io/managed-identity-endpoint";
/// Name of the sidecar in the Keyless mode.
pub const IDENTITY_ENDPOINT_CONTAINER: &str = "keyless-imds";
/// Name of the sidecar in the proxy mode (the reference's, so tooling that knows it
/// keeps working).
pub const PROXY_CONTAINER: &str = "azwi-proxy";
/// Name of the iptables init container in the proxy mode.
pub const PROXY_INIT_CONTAINER: &str = "azwi-proxy-init";
/// Default sidecar port.
pub const DEFAULT_PROXY_PORT: u16 = 8000;
/// The user the sidecar runs as: the reference's proxy-init exempts this uid from the
/// redirection, so the sidecar's own requests are not looped back to it.
pub const PROXY_UID: u64 = 1501;
/// `IDENTITY_ENDPOINT`.
pub const ENV_IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// `IDENTITY_HEADER`.
pub const ENV_IDENTITY_HEADER: &str = "IDENTITY_HEADER";

/// `AZURE_CLIENT_ID`.
pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// `AZURE_TENANT_ID`.
pub const ENV_TENANT_ID: &str = "AZURE_TENANT_ID";
/// `AZURE_FEDERATED_TOKEN_FILE`.
pub const ENV_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// `AZURE_AUTHORITY_HOST`.
pub const ENV_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// Keyless' own variable naming the Keyless CA file (for apps that configure trust
/// explicitly).
pub const ENV_KEYLESS_CA_FILE: &str = "KEYLESS_CA_FILE";
/// Node.js: extra roots, added to the built-in ones.
pub const ENV_NODE_EXTRA_CA_CERTS: &str = "NODE_EXTRA_CA_CERTS";
/// OpenSSL, Go, Rust (rustls-native-certs), .NET on Linux: the roots file (replaces the
/// system bundle, so it must point at a bundle that also holds the public roots).
pub const ENV_SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// Python `requests` (azure-identity): the roots file (replaces certifi's bundle).
pub const ENV_REQUESTS_CA_BUNDLE: &str = "REQUESTS_CA_BUNDLE";

/// Default token audience, what Entra ID (and Keyless) expect.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Default token lifetime, seconds.
pub const DEFAULT_TOKEN_EXPIRATION: u64 = 3600;
/// Shortest token lifetime accepted, seconds.
pub const MIN_TOKEN_EXPIRATION: u64 = 3600;
/// Longest token lifetime accepted, seconds.
pub const MAX_TOKEN_EXPIRATION: u64 = 86400;
/// ServiceAccount used when the pod names none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
