//! Where the Kubernetes API server is and how to authenticate, from the standard client
//! configuration: an explicit kubeconfig, `KUBECONFIG`, the in-cluster service account,
//! or `~/.kube/config`, in that order (as client-go and controller-runtime resolve it).
//!
//! Supported kubeconfig fields: `current-context` (or an explicit context), the
//! cluster's `server` (`https://` or plain `http://`), `certificate-authority[-data]`,
//! `insecure-skip-tls-verify`; the user's `token`, `tokenFile`,
//! `client-certificate[-data]` + `client-key[-data]`, `username` + `password`. `exec`
//! and `auth-provider` plugins are refused with a clear error. When `KUBECONFIG` lists
//! several files, the first that exists is used (no merging).

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

/// In-cluster service account directory.
pub const IN_CLUSTER_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Errors finding or reading the client configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Nothing to go on.
    #[error(
        "no Kubernetes client configuration: set KUBECONFIG or --kubeconfig, run in a pod (KUBERNETES_SERVICE_HOST), or create ~/.kube/config"
    )]
    NotFound,
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig is not valid YAML of the expected shape.
    #[error("{path}: not a kubeconfig: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The kubeconfig is valid but unusable.
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum Auth {
    /// No credentials (e.g. a test API server).
    #[default]
    None,
    /// A fixed bearer token.
    Token(String),
    /// A bearer token read from this file before each request (in-cluster tokens rotate).
    TokenFile(PathBuf),
    /// HTTP basic.
    Basic {
        /// User.
        username: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(_) => f.write_str("Token(..)"),
            Auth::TokenFile(p) => write!(f, "TokenFile({})", p.display()),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ..)"),
        }
    }
}

/// A resolved API server connection.
#[derive(Clone, Default)]
pub struct ClusterConfig {
    /// Base URL, without a trailing slash.
    pub server: String,
    /// CA certificates (PEM) to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Skip server certificate verification (kubeconfig `insecure-skip-tls-verify`).
    pub insecure_skip_tls_verify: bool,
    /// Client certificate and key (PEM, concatenated).
    pub client_identity_pem: Option<Vec<u8>>,
    /// Request authentication.
    pub auth: Auth,
    /// Where this came from, for messages.
    pub source: String,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("server", &self.server)
            .field("auth", &self.auth)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ClusterConfig {
    /// Resolves the configuration: `explicit` kubeconfig, else `KUBECONFIG`, else
    /// in-cluster, else `~/.kube/config`.
    pub fn load(explicit: Option<&Path>, context: Option<&str>) -> Result<Self, ConfigError> {
        if let Some(path) = explicit {
            return Self::from_kubeconfig(path, context);
        }
        if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            let first = std::env::split_paths(&list).find(|p| p.is_file());
            return match first {
                Some(path) => Self::from_kubeconfig(&path, context),
                None => Err(ConfigError::Io {
                    path: PathBuf::from(list),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "KUBECONFIG names no existing file",
                    ),
                }),
            };
        }
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return Self::in_cluster(Path::new(IN_CLUSTER_DIR));
        }
        if let Some(home) = std::env::var_os("HOME") {
            let path = Path::new(&home).join(".kube").join("config");
            if path.is_file() {
                return Self::from_kubeconfig(&path, context);
            }
        }
        Err(ConfigError::NotFound)
    }

    /// The in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT`, and the token
    /// and CA in `dir`.
    pub fn in_cluster(dir: &Path) -> Result<Self, ConfigError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| ConfigError::NotFound)?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".to_owned());
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        let ca_path = dir.join("ca.crt");
        let ca = read(&ca_path)?;
        Ok(ClusterConfig {
            server: format!("https://{host}:{port}"),
            ca_pem: Some(ca),
            insecure_skip_tls_verify: false,
            client_identity_pem: None,
            auth: Auth::TokenFile(dir.join("token")),
            source: "in-cluster service account".to_owned(),
        })
    }

    /// Reads a kubeconfig file; `context` overrides its `current-context`.
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, ConfigError> {
        let text = read(path)?;
        Self::parse_kubeconfig(&text, path, context)
    }

    /// Parses the text of a kubeconfig read from `path` (files it names are relative to
    /// `path`'s directory and read now); `context` overrides its `current-context`.
    pub fn parse_kubeconfig(
        text: &[u8],
        path: &Path,
        context: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let kc: Kubeconfig = serde_yaml_ng::from_slice(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let invalid = |detail: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let ctx_name = context
            .map(str::to_owned)
            .or(kc.current_context.clone())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| invalid("no current-context (pass a context)".to_owned()))?;
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .map(|c| &c.context)
            .ok_or_else(|| invalid(format!("context {ctx_name:?} not found")))?;
        let cluster = kc
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .map(|c| &c.cluster)
            .ok_or_else(|| invalid(format!("cluster {:?} not found", ctx.cluster)))?;
        let empty = User::default();
        let user = match &ctx.user {
            Some(u) if !u.is_empty() => kc
                .users
                .iter()
                .find(|x| &x.name == u)
                .map(|x| &x.user)
                .ok_or_else(|| invalid(format!("user {u:?} not found")))?,
            _ => &empty,
        };
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err(invalid(format!(
                "user {:?} uses an exec or auth-provider plugin, which Keyless does not run; use a token, tokenFile or client certificate",
                ctx.user.as_deref().unwrap_or_default()
            )));
        }
        let server = cluster.server.trim_end_matches('/').to_owned();
        if !(server.starts_with("https://") || server.starts_with("http://")) {
            return Err(invalid(format!(
                "cluster server {server:?} is not an http(s) URL"
            )));
        }
        let ca_pem = inline_or_file(
            cluster.certificate_authority_data.as_deref(),
            cluster.certificate_authority.as_deref(),
            base,
            path,
        )?;
        let cert = inline_or_file(
            user.client_certificate_data.as_deref(),
            user.client_certificate.as_deref(),
            base,
            path,
        )?;
        let key = inline_or_file(
            user.client_key_data.as_deref(),
            user.client_key.as_deref(),
            base,
            path,
        )?;
        let client_identity_pem = match (cert, key) {
            (Some(mut c), Some(k)) => {
                c.push(b'\n');
                c.extend_from_slice(&k);
                Some(c)
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "a client certificate needs both client-certificate and client-key".to_owned(),
                ));
            }
        };
        let auth = if let Some(t) = user.token.as_ref().filter(|t| !t.is_empty()) {
            Auth::Token(t.clone())
        } else if let Some(f) = user.token_file.as_ref().filter(|t| !t.is_empty()) {
            Auth::TokenFile(base.join(f))
        } else if let (Some(u), Some(p)) = (&user.username, &user.password) {
            Auth::Basic {
                username: u.clone(),
                password: p.clone(),
            }
        } else {
            Auth::None
        };
        Ok(ClusterConfig {
            server,
            ca_pem,
            insecure_skip_tls_verify: cluster.insecure_skip_tls_verify,
            client_identity_pem,
            auth,
            source: format!("kubeconfig {} (context {ctx_name})", path.display()),
        })
    }
}

/// The largest kubeconfig, certificate, key or token file read. Real ones are a few KB;
/// the cap keeps a path naming a device or a runaway file (`/dev/zero`, a log) from
/// exhausting memory or hanging the start-up.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    read_capped(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole file of at most [`MAX_FILE_BYTES`]; a larger one is an error
/// (`InvalidData`), found after reading one byte past the cap, never more.
pub(crate) fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// `*-data` (base64) wins over the file path (relative to the kubeconfig's directory).
fn inline_or_file(
    data: Option<&str>,
    file: Option<&str>,
    base: &Path,
    kubeconfig: &Path,
) -> Result<Option<Vec<u8>>, ConfigError> {
    if let Some(data) = data.filter(|d| !d.is_empty()) {
        let clean: String = data.split_whitespace().collect();
        return base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                path: kubeconfig.to_path_buf(),
                detail: format!("a *-data field is not base64: {e}"),
            });
    }
    match file.filter(|f| !f.is_empty()) {
        Some(f) => read(&base.join(f)).map(Some),
        None => Ok(None),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    cluster: T,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    #[serde(default)]
    certificate_authority: Option<String>,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Debug, Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(default)]
    client_certificate: Option<String>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key: Option<String>,
    #[serde(default)]
    client_key_data: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    exec: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    auth_provider: Option<serde_yaml_ng::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_current_context_with_token_and_inline_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = base64::engine::general_purpose::STANDARD.encode("PEM");
        let p = write(
            dir.path(),
            "config",
            &format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: c1\n  cluster:\n    server: https://k.example:6443/\n    certificate-authority-data: {ca}\n- name: c2\n  cluster:\n    server: http://127.0.0.1:1234\ncontexts:\n- name: a\n  context: {{cluster: c2}}\n- name: b\n  context: {{cluster: c1, user: u, namespace: x}}\nusers:\n- name: u\n  user:\n    token: t0k\npreferences: {{}}\n"
            ),
        );
        let c = ClusterConfig::from_kubeconfig(&p, None).unwrap();
        assert_eq!(c.server, "https://k.example:6443");
        assert_eq!(c.ca_pem.as_deref(), Some(&b"PEM"[..]));
        assert!(matches!(c.auth, Auth::Token(ref t) if t == "t0k"));
        let c = ClusterConfig::from_kubeconfig(&p, Some("a")).unwrap();
        assert_eq!(c.server, "http://127.0.0.1:1234");
        assert!(matches!(c.auth, Auth::None));
    }

    #[test]
    fn relative_files_resolve_against_the_kubeconfig_dir() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.pem", "CA");
        write(dir.path(), "tok", "secret");
        let p = write(
            dir.path(),
            "config",
            "current-context: x\nclusters: [{name: c, cluster: {server: 'https://h', certificate-authority: ca.pem}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {tokenFile: tok}}]\n",
        );
        let c = ClusterConfig::from_kubeconfig(&p, None).unwrap();
        assert_eq!(c.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert!(matches!(c.auth, Auth::TokenFile(ref f) if f == &dir.path().join("tok")));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("clusters: []\n", "no current-context"),
            ("current-context: x\n", "context \"x\" not found"),
            (
                "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n",
                "exec",
            ),
            (
                "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: 'ftp://h'}}]\n",
                "not an http(s) URL",
            ),
            ("{{{", "not a kubeconfig"),
            (
                "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: 'https://h', certificate-authority: /dev/zero}}]\n",
                "larger than 1048576 bytes",
            ),
        ];
        for (text, needle) in cases {
            let p = write(dir.path(), "config", text);
            let err = ClusterConfig::from_kubeconfig(&p, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        // The kubeconfig itself is capped too.
        let big = write(dir.path(), "big", &format!("# {}\n", "x".repeat(1 << 20)));
        let err = ClusterConfig::from_kubeconfig(&big, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
